import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { git, makeKey, makeWorkTree, run, ssh, sshArgs, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { killGroup, spawnGroup } from './helpers/processes.js';
import { adminUsers, TestServer, type LogLine } from './helpers/server.js';
import { waitUntil, within } from './helpers/wait.js';

const { Client } = ssh2;

/**
 * A raw TCP connection to the SSH port, kept open; resolves once the server's banner arrived
 * (admitted) or the socket closed or a refusal line such as "Exceeded MaxStartups" came instead.
 */
async function rawConnection(port: number, localAddress = '127.0.0.1'): Promise<{ socket: Socket; admitted: boolean }> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => undefined);
  const admitted = await within(
    'a banner or a close from the server',
    new Promise<boolean>((resolve) => {
      // A refusal may send a line before closing: only the SSH banner means admitted.
      socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1').startsWith('SSH-')));
      socket.once('close', () => resolve(false));
    }),
  );
  return { socket, admitted };
}

/** Resolves (bounded) with how long the socket stayed open after `from`. */
async function closedAfter(socket: Socket, from: number): Promise<number> {
  if (!socket.closed) await within('the server closing the connection', once(socket, 'close'));
  return performance.now() - from;
}

function pushSomething(key: ClientKey, port: number, repo: string): Promise<void> {
  return git(key, port, ['push', '-q', url(port, repo), 'main'], makeWorkTree()).then((result) => assert.equal(result.code, 0, result.stderr));
}

describe('login grace time covers every phase before authentication', () => {
  let server: TestServer;

  before(async () => {
    server = await TestServer.start({ config: { sshd: { login_grace_time: '1s' } } });
  });
  after(() => server.dispose());

  // Lower bounds only, which a slow machine cannot break: the server's timer starts after
  // `started` (less the few ms its event loop's cached clock may lag). How late the close
  // comes is not asserted; the dropped-connection metric says why it came.
  test('a client that sends its banner and then nothing is dropped at login_grace_time', async () => {
    const started = performance.now();
    const { socket } = await rawConnection(server.port);
    socket.write('SSH-2.0-SlowClient_1.0\r\n');
    const lived = await closedAfter(socket, started);
    assert.ok(lived >= 900, `closed after ${lived.toFixed(0)} ms, before login_grace_time`);
    await waitUntil('the drop counted', async () => (await server.metric('git_sshd_connections_dropped_total', '{reason="login_grace_time"}')) === 1);
  });

  test('a client stuck half-way through key exchange is dropped at login_grace_time', async () => {
    const started = performance.now();
    const { socket } = await rawConnection(server.port);
    // The banner, then the first bytes of a KEXINIT packet that never completes.
    socket.write('SSH-2.0-SlowClient_1.0\r\n');
    socket.write(Buffer.from([0, 0, 0, 252, 4, 20]));
    const lived = await closedAfter(socket, started);
    assert.ok(lived >= 900, `closed after ${lived.toFixed(0)} ms, before login_grace_time`);
    await waitUntil('the drop counted', async () => (await server.metric('git_sshd_connections_dropped_total', '{reason="login_grace_time"}')) === 2);
  });
});

describe('keepalives', () => {
  let server: TestServer;
  let key: ClientKey;

  before(async () => {
    key = makeKey();
    server = await TestServer.start({
      users: adminUsers(key),
      // Three unanswered probes: an OpenSSH client on a busy machine has seconds to answer.
      config: { sshd: { client_alive_interval: '1s', client_alive_count_max: 3 } },
    });
    await pushSomething(key, server.port, 'team/app');
  });
  after(() => server.dispose());

  test('a client that stops answering is dropped after count-max unanswered keepalives, and the reason is logged', async () => {
    const client = new Client();
    client.on('error', () => undefined);
    const ready = once(client, 'ready');
    const mark = server.mark();
    client.connect({ host: '127.0.0.1', port: server.port, username: 'git', privateKey: readFileSync(key.path), readyTimeout: 60_000 });
    await within('ssh2 client login', ready);
    // From here the client reads nothing, so it answers nothing: a peer that has vanished.
    const socket = (client as unknown as { _sock: Socket })._sock;
    socket.pause();
    const dropped = await server.waitForLogSince(mark, (line) => line.msg === 'client stopped answering keepalives; closing the connection');
    // This connection's lines (a connection of the push before may still be logging its end).
    const ours = (line: LogLine): boolean => line.correlation_id === dropped.correlation_id;
    const authenticated = await server.waitForLogSince(mark, (line) => line.msg === 'authenticated' && ours(line));
    // Probes go out at 1, 2 and 3 s of silence; at 4 s the third is still unanswered. By the
    // server's own clock, so a slow test process cannot skew it; a lower bound only (a
    // busy server may be late, never early).
    const silentMs = Date.parse(String(dropped.time)) - Date.parse(String(authenticated.time));
    assert.ok(silentMs >= 3000, `dropped ${silentMs} ms after login, before count-max probes went unanswered`);
    const summary = await server.waitForLogSince(mark, (line) => line.msg === 'connection closed' && ours(line));
    assert.equal(summary.close_reason, 'keepalive timeout');
    assert.equal(await server.metric('git_sshd_connections_dropped_total', '{reason="keepalive_timeout"}'), 1);
    socket.destroy();
  });

  test('an idle OpenSSH client that answers keepalives stays connected', async (t) => {
    const mark = server.mark();
    const child = spawnGroup('ssh', [...sshArgs(key, server.port), 'git@127.0.0.1', 'git-upload-pack', 'team/app'], { stdio: ['pipe', 'pipe', 'pipe'] });
    t.after(() => killGroup(child));
    child.stdout!.resume();
    const exited = once(child, 'exit');
    await server.waitForLogSince(mark, (line) => line.msg === 'running git');
    // Six intervals of silence from the user (twice count-max): OpenSSH answers every probe.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    assert.equal(child.exitCode, null, 'still connected');
    child.stdin!.end('0000');
    const [code] = await within('ssh exit', exited);
    assert.equal(code, 0);
  });
});

describe('concurrent sessions per connection', () => {
  let server: TestServer;
  let key: ClientKey;

  before(async () => {
    key = makeKey();
    server = await TestServer.start({
      users: adminUsers(key),
      config: { sshd: { concurrent_sessions_limit: 2 } },
    });
    await pushSomething(key, server.port, 'team/app');
  });
  after(() => server.dispose());

  test('a ControlMaster connection that opens more sessions than the limit gets resource shortage on the extra one while the others finish', async () => {
    const control = join(temporaryDir('git-sshd-mux-'), 'mux');
    const muxArgs = ['-S', control];
    // The master logs why a session open failed (the mux client only hears "refused").
    const master = spawnGroup('ssh', ['-o', 'LogLevel=DEBUG1', ...sshArgs(key, server.port, ['-M', ...muxArgs, '-N']), 'git@127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let masterStderr = '';
    master.stderr!.on('data', (chunk: Buffer) => (masterStderr += chunk.toString()));
    const held: ChildProcess[] = [];
    try {
      await server.waitForLog((line) => line.msg === 'authenticated');
      await waitUntil('the control socket answering', async () => (await run('ssh', ['-S', control, '-O', 'check', 'x'])).code === 0, undefined, 50);
      const mark = server.mark();
      for (let i = 0; i < 2; i++) {
        const child = spawnGroup('ssh', [...sshArgs(key, server.port, muxArgs), 'git@127.0.0.1', 'git-upload-pack', 'team/app'], { stdio: ['pipe', 'pipe', 'pipe'] });
        child.stdout!.resume();
        held.push(child);
      }
      for (let seen = 0; seen < 2; ) {
        await server.waitForLogSince(mark, (line) => line.msg === 'running git' && server.logs.filter((l, i) => i >= mark && l.msg === 'running git').length > seen);
        seen = server.logs.filter((l, i) => i >= mark && l.msg === 'running git').length;
      }
      // Port 1 is closed: OpenSSH falls back to a connection of its own when the master's
      // session open fails, and this makes that fallback fail rather than hide the refusal.
      const extra = await run('ssh', [...sshArgs(key, 1, muxArgs), 'git@127.0.0.1', 'git-upload-pack', 'team/app']);
      assert.notEqual(extra.code, 0);
      assert.match(extra.stderr, /session request failed: Session open refused by peer/);
      const reason = /open failed: resource shortage: too many concurrent sessions/;
      await waitUntil('the master logging why the session open failed', () => reason.test(masterStderr));
      await server.waitForLogSince(mark, (line) => line.msg === 'too many concurrent sessions');
      const exits = held.map((child) => (child.exitCode !== null ? Promise.resolve([child.exitCode]) : once(child, 'exit')));
      for (const child of held) child.stdin!.end('0000');
      const codes = (await within('the sessions within the limit to finish', Promise.all(exits))).map(([code]) => code as number);
      assert.deepEqual(codes, [0, 0], 'the sessions within the limit finish normally');
      assert.equal(await server.metric('gitlab_shell_sshd_concurrent_limited_sessions_total'), 1);
    } finally {
      for (const child of held) await killGroup(child);
      await killGroup(master);
    }
  });
});

describe('unauthenticated connection limits', () => {
  test('MaxStartups 2:30:4: once four connections are unauthenticated the fifth is refused, and refusals are counted', async () => {
    const server = await TestServer.start({ config: { sshd: { max_startups: '2:30:4', login_grace_time: '30s' } } });
    const sockets: Socket[] = [];
    try {
      // The third and fourth are each refused at random (30%, then 65%): keep trying until four are in.
      let held = 0;
      let refused = 0;
      for (let attempt = 0; attempt < 40 && held < 4; attempt++) {
        const { socket, admitted } = await rawConnection(server.port);
        sockets.push(socket);
        if (admitted) held += 1;
        else refused += 1;
      }
      assert.equal(held, 4);
      const fifth = await rawConnection(server.port);
      sockets.push(fifth.socket);
      assert.equal(fifth.admitted, false, 'the fifth unauthenticated connection is refused');
      await server.waitForLog((line) => line.msg === 'connection refused: too many unauthenticated connections' && line.reason === 'max_startups');
      assert.equal(await server.metric('git_sshd_connections_rejected_total', '{reason="max_startups"}'), refused + 1);
      assert.equal(await server.metric('git_sshd_connections', '{phase="unauthenticated"}'), 4);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.dispose();
    }
  });

  test('per_source_max_startups limits one address and leaves the others alone; authenticated connections do not count', async () => {
    const key = makeKey();
    const server = await TestServer.start({
      users: adminUsers(key),
      config: { sshd: { per_source_max_startups: 2, login_grace_time: '30s' } },
    });
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const connection = await rawConnection(server.port);
        sockets.push(connection.socket);
        assert.equal(connection.admitted, true);
      }
      const third = await rawConnection(server.port);
      sockets.push(third.socket);
      assert.equal(third.admitted, false);
      const other = await rawConnection(server.port, '127.0.0.2');
      sockets.push(other.socket);
      assert.equal(other.admitted, true, 'another address is not limited');
      sockets[0]!.destroy();
      await waitUntil('the server seeing the first connection gone', async () => (await server.metric('git_sshd_connections', '{phase="unauthenticated"}')) === 2);
      // One slot free: an OpenSSH client authenticates through it, and once it has, the
      // slot is free again while its session runs.
      const welcome = await ssh(key, server.port);
      assert.equal(welcome.code, 0, welcome.stderr);
      assert.equal(await server.metric('git_sshd_connections_rejected_total', '{reason="per_source_max_startups"}'), 1);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.dispose();
    }
  });
});

describe('max_auth_tries', () => {
  test('the connection is closed after max_auth_tries failed keys, before a valid one is tried', async () => {
    const good = makeKey();
    const wrong = [makeKey(), makeKey()];
    const server = await TestServer.start({
      users: adminUsers(good),
      config: { sshd: { max_auth_tries: 2 } },
    });
    try {
      const identities = [...wrong.map((key) => ['-i', key.path]).flat(), '-i', good.path];
      const refused = await run('ssh', [...sshArgs(wrong[0]!, server.port), ...identities, 'git@127.0.0.1']);
      assert.notEqual(refused.code, 0);
      await server.waitForLog((line) => line.msg === 'connection closed' && line.close_reason === 'too many authentication failures');
      assert.equal(await server.metric('git_sshd_connections_dropped_total', '{reason="max_auth_tries"}'), 1);
      const single = await ssh(good, server.port);
      assert.equal(single.code, 0, single.stderr);
    } finally {
      await server.dispose();
    }
  });
});
