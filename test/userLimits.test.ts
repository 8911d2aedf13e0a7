import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, gitLocal, makeKey, makeWorkTree, slowGit, ssh, sshArgs, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { TestServer } from './helpers/server.js';

/** An OpenSSH client holding a connection: with a command, an upload-pack session that waits for input; without, `-N`. */
function held(key: ClientKey, port: number, command: string[]): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn('ssh', [...sshArgs(key, port, command.length === 0 ? ['-N'] : []), 'git@127.0.0.1', ...command], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.resume();
  return { child, stderr: () => stderr, exited: new Promise((resolve) => child.once('exit', resolve)) };
}

/** Processes whose command line names the repository. */
function gitProcessesOn(repoDir: string): number {
  let count = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(repoDir)) count += 1;
    } catch {
      // Gone already.
    }
  }
  return count;
}

describe('per-user caps on connections and sessions', () => {
  const alice = makeKey();
  const bob = makeKey();
  let server: TestServer;

  before(async () => {
    server = await TestServer.start({
      users: [
        { name: 'alice', keys: [alice.publicLine], access: { '*': 'admin' } },
        { name: 'bob', keys: [bob.publicLine], access: { '*': 'admin' } },
      ],
      config: { sshd: { max_connections_per_user: 3, max_sessions_per_user: 2 } },
    });
    const push = await git(alice, server.port, ['push', '-q', url(server.port, 'team/app.git'), 'HEAD:main'], makeWorkTree());
    assert.equal(push.code, 0, push.stderr);
  });
  after(() => server.dispose());

  test('a user over a cap reads why on stderr, other users are not affected, and the places come back', async () => {
    const running: Array<ReturnType<typeof held>> = [];
    try {
      const mark = server.mark();
      for (let i = 0; i < 2; i += 1) running.push(held(alice, server.port, ['git-upload-pack', 'team/app.git']));
      for (let seen = 0; seen < 2; seen = server.logs.slice(mark).filter((line) => line.msg === 'running git').length) {
        await server.nextLog((line) => line.msg === 'running git');
      }
      // Two git processes running: a third session, on a connection of its own, is refused.
      const third = await ssh(alice, server.port, ['git-upload-pack', 'team/app.git']);
      assert.equal(third.code, 1);
      assert.match(third.stderr, /git-sshd: alice already has 2 sessions running open \(the most one user may have at once\)/);

      // A third connection without a session is within the cap of three; a fourth is over it.
      const idle = held(alice, server.port, []);
      running.push(idle);
      await server.nextLog((line) => line.msg === 'authenticated' && line.user === 'alice');
      const fourth = await ssh(alice, server.port, ['git-upload-pack', 'team/app.git']);
      assert.equal(fourth.code, 1);
      assert.match(fourth.stderr, /git-sshd: alice already has 3 connections open/);

      const other = await git(bob, server.port, ['clone', '-q', url(server.port, 'team/app.git'), join(temporaryDir('git-sshd-bob-'), 'clone')]);
      assert.equal(other.code, 0, `another user is not limited: ${other.stderr}`);
      assert.equal(await server.metric('git_sshd_user_limit_refusals_total', '{limit="sessions"}'), 1);
      assert.equal(await server.metric('git_sshd_user_limit_refusals_total', '{limit="connections"}'), 1);
      assert.equal(server.logs.filter((line) => line.msg === 'user limit reached; session refused').length, 2);
    } finally {
      for (const connection of running) {
        connection.child.stdin!.end('0000');
        connection.child.kill();
      }
      await Promise.all(running.map((connection) => connection.exited));
    }
    // Every place is released with its connection.
    for (let attempt = 0; attempt < 100 && ((await server.metric('gitlab_shell_sshd_in_flight_connections')) ?? 0) > 0; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const clone = await git(alice, server.port, ['clone', '-q', url(server.port, 'team/app.git'), join(temporaryDir('git-sshd-alice-'), 'clone')]);
    assert.equal(clone.code, 0, clone.stderr);
  });
});

describe('sessions silent both ways', () => {
  const key = makeKey();
  let server: TestServer;
  let work: string;

  before(async () => {
    server = await TestServer.start({
      users: [{ name: 'alice', keys: [key.publicLine], access: { '*': 'admin' } }],
      config: { sshd: { session_idle_timeout: '2s' } },
    });
    work = makeWorkTree();
    writeFileSync(join(work, 'data.bin'), randomBytes(6 * 1024 * 1024));
    gitLocal(['add', '.'], work);
    gitLocal(['-c', 'user.name=T', '-c', 'user.email=t@e', 'commit', '-q', '-m', 'data'], work);
    const push = await git(key, server.port, ['push', '-q', url(server.port, 'team/app.git'), 'HEAD:main'], work);
    assert.equal(push.code, 0, push.stderr);
  });
  after(() => server.dispose());

  test('a git waiting for a client that sends nothing is closed with a message, and git does not stay running', async () => {
    const waiting = held(key, server.port, ['git-upload-pack', 'team/app.git']);
    const code = await waiting.exited;
    assert.notEqual(code, 0);
    assert.match(waiting.stderr(), /git-sshd: this session was idle for 2 s \(nothing sent or received\) and has been closed/);
    await server.waitForLog((line) => line.msg === 'idle session closed');
    assert.equal(await server.metric('git_sshd_sessions_idle_timeout_total'), 1);
    const repoDir = join(server.reposDir, 'team', 'app.git');
    for (let attempt = 0; attempt < 100 && gitProcessesOn(repoDir) > 0; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(gitProcessesOn(repoDir), 0, 'git is gone');
  });

  test('a slow clone that keeps reading is not idle, however long it takes', async () => {
    const target = join(temporaryDir('git-sshd-slow-'), 'clone');
    // About 3 s at 2 MB/s: longer than the idle timeout, never silent for that long.
    const clone = await slowGit(key, server.port, 2 * 1024 * 1024, ['clone', '-q', url(server.port, 'team/app.git'), target]);
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(gitLocal(['rev-parse', 'HEAD'], target), gitLocal(['rev-parse', 'HEAD'], work));
    assert.equal(await server.metric('git_sshd_sessions_idle_timeout_total'), 1);
  });
});
