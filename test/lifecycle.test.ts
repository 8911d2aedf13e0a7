import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, gitLocal, makeKey, slowGit, sshArgs, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { killGroup, spawnGroup } from './helpers/processes.js';
import { adminUsers, TestServer } from './helpers/server.js';
import { waitUntil, within } from './helpers/wait.js';

const MEGABYTE = 1024 * 1024;

/** A work tree of `megabytes` of incompressible data in a few commits. */
function largeWorkTree(megabytes: number): string {
  const work = temporaryDir('git-sshd-drain-');
  gitLocal(['init', '-q', '-b', 'main', work]);
  for (let i = 0; i < 4; i++) {
    writeFileSync(join(work, `blob-${i}.bin`), randomBytes((megabytes / 4) * MEGABYTE));
    gitLocal(['add', '.'], work);
    gitLocal(['-c', 'user.name=T', '-c', 'user.email=t@e', 'commit', '-q', '-m', `commit ${i}`], work);
  }
  return work;
}

/** Resolves true if a TCP connection to the port is refused. */
function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** An upload-pack session held open by the OpenSSH client until `finish()` is called. */
function heldSession(key: ClientKey, port: number, repo: string, extra: string[] = []): { child: ChildProcess; stderr: () => string; closed: Promise<number | null>; finish: () => Promise<number | null> } {
  const child = spawnGroup('ssh', [...sshArgs(key, port, extra), 'git@127.0.0.1', 'git-upload-pack', repo], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.resume();
  // 'close', not 'exit': by then every byte of stderr has been read.
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    stderr: () => stderr,
    closed,
    finish: () => {
      child.stdin!.end('0000');
      return closed;
    },
  };
}

async function startWithRepo(key: ClientKey, config: Record<string, unknown>, work: string): Promise<TestServer> {
  const server = await TestServer.start({ users: adminUsers(key), config });
  const pushed = await git(key, server.port, ['push', '-q', url(server.port, 'team/big'), 'main'], work);
  assert.equal(pushed.code, 0, pushed.stderr);
  return server;
}

describe('probes', () => {
  let key: ClientKey;
  let server: TestServer;

  before(async () => {
    key = makeKey();
    server = await startWithRepo(key, { sshd: { grace_period: '10s' } }, largeWorkTree(1));
  });
  after(() => server.dispose());

  test('readiness and liveness answer 200 while ready, and metrics are served', async () => {
    assert.deepEqual(await server.http('/start'), { status: 200, body: 'ready\n' });
    assert.equal((await server.http('/health')).status, 200);
    assert.equal((await server.http('/metrics')).status, 200);
    assert.equal((await server.http('/nope')).status, 404);
  });

  // How soon readiness turns is measured in bench/drain.ts; here: that it does, while a session holds the drain open.
  test('readiness turns 502 after SIGTERM while liveness stays 200 through the drain', async (t) => {
    const mark = server.mark();
    const held = heldSession(key, server.port, 'team/big');
    t.after(() => killGroup(held.child));
    await server.waitForLogSince(mark, (line) => line.msg === 'running git');
    server.child.kill('SIGTERM');
    await waitUntil('readiness 502 after SIGTERM', async () => (await server.http('/start')).status === 502);
    assert.equal((await server.http('/health')).status, 200, 'alive while draining');
    assert.equal(await server.metric('git_sshd_lifecycle_state', '{state="draining"}'), 1);
    assert.equal(await connectionRefused(server.port), true, 'the SSH port refuses new connections');
    assert.equal(await held.finish(), 0, held.stderr());
    assert.equal(await server.exited, 0);
  });
});

describe('the drain after SIGTERM', () => {
  let key: ClientKey;
  let work: string;

  before(() => {
    key = makeKey();
    work = largeWorkTree(16);
  });

  test('a clone in flight at SIGTERM completes while new connections are refused', async () => {
    // A grace period far longer than the transfer, however slow the machine.
    const server = await startWithRepo(key, { sshd: { grace_period: '10m' } }, work);
    try {
      const target = join(temporaryDir('git-sshd-clone-'), 'clone');
      const mark = server.mark();
      // About 4 s at 4 MB/s: still running when the signal arrives.
      const clone = slowGit(key, server.port, 4 * MEGABYTE, ['clone', '-q', url(server.port, 'team/big'), target]);
      await server.waitForLogSince(mark, (line) => line.msg === 'running git' && line.command === 'git-upload-pack');
      server.child.kill('SIGTERM');
      await server.waitForLogSince(mark, (line) => line.msg === 'draining');
      assert.equal(await connectionRefused(server.port), true);
      const result = await clone;
      assert.equal(result.code, 0, result.stderr);
      assert.equal(gitLocal(['rev-parse', 'HEAD'], target), gitLocal(['rev-parse', 'HEAD'], work));
      assert.equal(await server.exited, 0);
      const stopped = await server.waitForLogSince(mark, (line) => line.msg === 'stopped');
      assert.equal(stopped.connections_at_signal, 1);
      assert.equal(stopped.finished, 1);
      assert.equal(stopped.cut, 0);
      assert.ok((stopped.oldest_connection_age_ms as number) > 0);
    } finally {
      await server.dispose();
    }
  });

  test('with a short grace period the transfer is cut, the client fails, and the process exits 0', async () => {
    const server = await startWithRepo(key, { sshd: { grace_period: '1s' } }, work);
    try {
      const target = join(temporaryDir('git-sshd-clone-'), 'clone');
      const mark = server.mark();
      // About 16 s at 1 MB/s: far longer than the grace period.
      const clone = slowGit(key, server.port, MEGABYTE, ['clone', '-q', url(server.port, 'team/big'), target]);
      await server.waitForLogSince(mark, (line) => line.msg === 'running git');
      server.child.kill('SIGTERM');
      // At 1 MB/s the 16 MB clone lasts far longer than the grace period, so only the cut can end it.
      assert.equal(await within('exit after a 1 s grace period', server.exited), 0);
      const result = await clone;
      assert.notEqual(result.code, 0, 'the cut clone fails');
      const stopped = await server.waitForLogSince(mark, (line) => line.msg === 'stopped');
      assert.equal(stopped.cut, 1);
      const summary = await server.waitForLogSince(mark, (line) => line.msg === 'connection closed' && line.sessions_cut !== undefined);
      assert.equal(summary.sessions_cut, 1);
      assert.equal(summary.close_reason, 'server stopping: grace period over');
    } finally {
      await server.dispose();
    }
  });

  test('a session cut at the end of the grace period reads why on stderr', async () => {
    const server = await startWithRepo(key, { sshd: { grace_period: '1s' } }, largeWorkTree(1));
    const mark = server.mark();
    const held = heldSession(key, server.port, 'team/big');
    try {
      await server.waitForLogSince(mark, (line) => line.msg === 'running git');
      server.child.kill('SIGTERM');
      const code = await held.closed;
      assert.notEqual(code, 0);
      assert.match(held.stderr(), /git-sshd: the server is shutting down and closed this session; please retry\./);
      assert.equal(await server.exited, 0);
    } finally {
      await killGroup(held.child);
      await server.dispose();
    }
  });

  // With an hour of grace, an exit within the bound means the drain did not wait for it.
  // How fast the exit is: bench/drain.ts.
  test('an idle server exits on SIGTERM without waiting out its grace period', async () => {
    const server = await TestServer.start({ config: { sshd: { grace_period: '1h' } } });
    try {
      server.child.kill('SIGTERM');
      assert.equal(await within('exit of an idle server', server.exited), 0);
    } finally {
      await server.dispose();
    }
  });

  test('an idle authenticated connection is closed soon after the drain begins, not at the end of the grace period', async () => {
    const server = await startWithRepo(key, { sshd: { grace_period: '1h' } }, largeWorkTree(1));
    const control = join(temporaryDir('git-sshd-mux-'), 'mux');
    const mark = server.mark();
    const master = spawnGroup('ssh', [...sshArgs(key, server.port, ['-M', '-S', control, '-N']), 'git@127.0.0.1'], { stdio: 'ignore' });
    try {
      await server.waitForLogSince(mark, (line) => line.msg === 'authenticated');
      server.child.kill('SIGTERM');
      assert.equal(await within('exit with only an idle connection open', server.exited), 0);
      const summary = await server.waitForLogSince(mark, (line) => line.msg === 'connection closed' && (line.sessions as unknown[]).length === 0);
      assert.equal(summary.close_reason, 'server draining');
      const stopped = await server.waitForLogSince(mark, (line) => line.msg === 'stopped');
      assert.equal(stopped.cut, 0);
    } finally {
      await killGroup(master);
      await server.dispose();
    }
  });

  test('a second signal exits at once with a non-zero status', async () => {
    const server = await startWithRepo(key, { sshd: { grace_period: '1h' } }, largeWorkTree(1));
    const mark = server.mark();
    const held = heldSession(key, server.port, 'team/big');
    try {
      await server.waitForLogSince(mark, (line) => line.msg === 'running git');
      server.child.kill('SIGTERM');
      await server.waitForLogSince(mark, (line) => line.msg === 'draining');
      server.child.kill('SIGTERM');
      assert.equal(await within('exit at the second signal (the session would hold the drain for an hour)', server.exited), 143);
    } finally {
      await killGroup(held.child);
      await server.dispose();
    }
  });
});
