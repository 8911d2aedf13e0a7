import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, gitLocal, makeKey, ssh, sshCommand, url, type ClientKey } from './helpers/client.js';
import { TestServer } from './helpers/server.js';

/** Connects, optionally writes, and resolves with how long the server took to close. */
async function closedAfter(port: number, payload?: Buffer): Promise<number> {
  const started = performance.now();
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.resume();
  await once(socket, 'connect');
  if (payload) socket.write(payload);
  await once(socket, 'close');
  return performance.now() - started;
}

describe('one bad client never harms another', () => {
  let server: TestServer;
  let key: ClientKey;
  const scratch = mkdtempSync(join(tmpdir(), 'git-sshd-robust-'));

  before(async () => {
    key = makeKey();
    server = await TestServer.start({
      users: [{ name: 'alice', keys: [key.publicLine], access: { '*': 'admin' } }],
      config: { sshd: { listen: '127.0.0.1:0', web_listen: '', login_grace_time: '1s' } },
    });
    const work = join(scratch, 'work');
    gitLocal(['init', '-q', '-b', 'main', work]);
    writeFileSync(join(work, 'big.bin'), randomBytes(20 * 1024 * 1024));
    gitLocal(['add', '.'], work);
    gitLocal(['-c', 'user.name=T', '-c', 'user.email=t@e', 'commit', '-qm', 'big'], work);
    const pushed = await git(key, server.port, ['push', url(server.port, 'big'), 'main'], work);
    assert.equal(pushed.code, 0, pushed.stderr);
  });

  after(async () => {
    await server.dispose();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('garbage, an HTTP request and a truncated banner on the SSH port are closed and logged, not fatal', async () => {
    await closedAfter(server.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await closedAfter(server.port, randomBytes(64 * 1024));
    await closedAfter(server.port, Buffer.from('SSH-2.0-broken\r\n\0\0\0\xff\xff\xff'));
    const welcome = await ssh(key, server.port);
    assert.equal(welcome.stdout, 'Welcome to git-sshd, @alice!\n');
  });

  test('a connection that never authenticates is closed at login_grace_time', async () => {
    const silent = await closedAfter(server.port);
    assert.ok(silent >= 900 && silent < 5000, `closed after ${silent} ms`);
    await server.waitForLog((line) => line.msg === 'closing connection not authenticated in time');
  });

  test('a client killed in the middle of a clone leaves no git process behind', async () => {
    const target = join(scratch, 'aborted');
    const authenticated = server.nextLog((line) => line.msg === 'authenticated');
    const clone = spawn('git', ['clone', '-q', url(server.port, 'big'), target], {
      env: { ...process.env, GIT_SSH_COMMAND: sshCommand(key, server.port) },
      stdio: 'ignore',
    });
    await authenticated;
    const repoDir = join(server.reposDir, 'big.git');
    const running = (): boolean => {
      try {
        return execFileSync('pgrep', ['-f', `upload-pack.* ${repoDir}`], { encoding: 'utf8' }) !== '';
      } catch {
        return false;
      }
    };
    for (let attempt = 0; attempt < 200 && !running(); attempt++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(running(), 'upload-pack never started');
    clone.kill('SIGKILL');
    await once(clone, 'exit');
    for (let attempt = 0; attempt < 100 && running(); attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(running(), false, 'git upload-pack is still running');
    const again = await git(key, server.port, ['clone', '-q', url(server.port, 'big'), join(scratch, 'after')]);
    assert.equal(again.code, 0, again.stderr);
  });

  test('eight clones at once all succeed with identical content', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => git(key, server.port, ['clone', '-q', '--bare', url(server.port, 'big'), join(scratch, `parallel-${i}`)])),
    );
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    const heads = new Set(results.map((_, i) => gitLocal(['rev-parse', 'HEAD'], join(scratch, `parallel-${i}`))));
    assert.equal(heads.size, 1);
  });
});
