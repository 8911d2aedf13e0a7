import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, gitLocal, makeKey, makeWorkTree, slowGit, temporaryDir, url } from './helpers/client.js';
import { GitalyPeer } from './helpers/gitalyPeer.js';
import { blobOf, gitalyAllowed, RELATIVE, SECRET, TOKEN } from './helpers/gitalyFixture.js';
import { GitlabApiFixture } from './helpers/gitlabApi.js';
import { TestServer } from './helpers/server.js';

const MEGABYTE = 1024 * 1024;

/** A port nothing listens on (bound once, then closed). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('backend gitlab with git in Gitaly when Gitaly fails', () => {
  const api = new GitlabApiFixture(SECRET);
  const alice = makeKey();
  const storage = temporaryDir('git-sshd-gitaly-big-');
  const scratch = temporaryDir('git-sshd-gitaly-big-work-');
  let peer: GitalyPeer;
  let server: TestServer;
  let silent: Server | undefined;
  const silentSockets: Socket[] = [];
  let address = '';

  before(async () => {
    // 12 MB of random blobs, put in Gitaly's storage directly: a clone read at 1 MB/s is
    // still running when the test kills Gitaly.
    const work = join(scratch, 'work');
    gitLocal(['init', '-q', '-b', 'main', work]);
    for (let file = 0; file < 3; file++) writeFileSync(join(work, `blob-${file}.bin`), randomBytes(4 * MEGABYTE));
    gitLocal(['add', '.'], work);
    gitLocal(['-c', 'user.name=T', '-c', 'user.email=t@e', 'commit', '-q', '-m', 'big'], work);
    gitLocal(['clone', '-q', '--bare', work, join(storage, RELATIVE)]);
    peer = await GitalyPeer.start(['-token', TOKEN, '-storage', `default=${storage}`]);
    address = peer.address;
    await api.start();
    api.users.set(blobOf(alice.publicLine), { keyId: 11, userId: 7, username: 'alice' });
    // No receive.MaxInputSize here: 100 MB pushes must go through.
    api.handlers['/api/v4/internal/allowed'] = () => gitalyAllowed(address, TOKEN, { gitConfigOptions: [] });
    server = await TestServer.start({ config: { backend: 'gitlab', gitlab_url: api.url, secret: SECRET, gitlab: { gitaly_start_timeout: '5s' } } });
  });
  after(async () => {
    for (const socket of silentSockets) socket.destroy();
    silent?.close();
    await server?.dispose();
    await api.stop();
    await peer?.stop();
  });

  test('Gitaly killed mid-clone: the user gets a clean error, the session ends, and the next clone dials the restarted Gitaly', { timeout: 600_000 }, async () => {
    const sentBefore = (await server.metric('git_sshd_bytes_total', '{direction="sent"}')) ?? 0;
    const mark = server.mark();
    const clone = slowGit(alice, server.port, 1 * MEGABYTE, ['clone', url(server.port, 'group/project.git'), join(temporaryDir('git-sshd-gitaly-kill-'), 'p')]);
    // Wait for the pack to be flowing (bounded: at most 60 s of polling).
    for (let attempt = 0; attempt < 600; attempt++) {
      const sent = (await server.metric('git_sshd_bytes_total', '{direction="sent"}')) ?? 0;
      if (sent - sentBefore > 3 * MEGABYTE) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await peer.stop('SIGKILL');
    const result = await clone;
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /ERROR: The git server, Gitaly, is not available at this time\. Please contact your administrator\./);
    await server.waitForLogSince(mark, (line) => line.msg === 'connection closed', 30_000);
    await server.waitForLogSince(mark, (line) => line.msg === 'Gitaly connection closed', 30_000);
    assert.equal(await server.metric('gitlab_shell_sshd_in_flight_connections'), 0);
    // Gitaly comes back on the same address: the dead channel was dropped, a new one is dialed.
    peer = await GitalyPeer.start(['-listen', address, '-token', TOKEN, '-storage', `default=${storage}`]);
    const again = await git(alice, server.port, ['clone', '-q', '--bare', url(server.port, 'group/project.git'), join(temporaryDir('git-sshd-gitaly-again-'), 'p')]);
    assert.equal(again.code, 0, again.stderr);
  });

  test('Gitaly down at start: a clear ERROR, counted as a failed connection and a system error', async () => {
    const failedBefore = (await server.metric('gitlab_shell_gitaly_connections_total', '{status="fail"}')) ?? 0;
    const down = `tcp://127.0.0.1:${await closedPort()}`;
    api.handlers['/api/v4/internal/allowed'] = () => gitalyAllowed(down, TOKEN);
    try {
      const result = await git(alice, server.port, ['clone', url(server.port, 'group/project.git'), join(temporaryDir('git-sshd-gitaly-down-'), 'p')]);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /ERROR: The git server, Gitaly, is not available at this time\. Please contact your administrator\. \(correlation id [0-9a-f-]{36}\)/);
      assert.equal(await server.metric('gitlab_shell_gitaly_connections_total', '{status="fail"}'), failedBefore + 1);
      const pushed = await git(alice, server.port, ['push', url(server.port, 'group/project.git'), 'HEAD:refs/heads/x'], makeWorkTree());
      assert.notEqual(pushed.code, 0);
      assert.match(pushed.stderr, /ERROR: The git server, Gitaly, is not available/);
    } finally {
      api.handlers['/api/v4/internal/allowed'] = () => gitalyAllowed(address, TOKEN, { gitConfigOptions: [] });
    }
  });

  test('a Gitaly that accepts but never answers: ERROR once the start deadline passes, and the connection is dropped', async () => {
    silent = createServer((socket) => {
      silentSockets.push(socket);
      socket.on('error', () => undefined);
      // Reads (and ignores) what it is sent, so that it sees the connection end.
      socket.resume();
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const silentAddress = `tcp://127.0.0.1:${(silent.address() as { port: number }).port}`;
    api.handlers['/api/v4/internal/allowed'] = () => gitalyAllowed(silentAddress, TOKEN);
    try {
      const before = (await server.metric('grpc_client_handled_total', '{grpc_type="unary",grpc_service="gitaly.SSHService",grpc_method="SSHUploadPackWithSidechannel",grpc_code="DeadlineExceeded"}')) ?? 0;
      const result = await git(alice, server.port, ['clone', url(server.port, 'group/project.git'), join(temporaryDir('git-sshd-gitaly-silent-'), 'p')]);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /ERROR: The git server, Gitaly, is not available at this time/);
      assert.equal(
        await server.metric('grpc_client_handled_total', '{grpc_type="unary",grpc_service="gitaly.SSHService",grpc_method="SSHUploadPackWithSidechannel",grpc_code="DeadlineExceeded"}'),
        before + 1,
      );
      const socket = silentSockets[0]!;
      if (!socket.destroyed && !socket.readableEnded) await Promise.race([once(socket, 'end'), once(socket, 'close')]);
    } finally {
      api.handlers['/api/v4/internal/allowed'] = () => gitalyAllowed(address, TOKEN, { gitConfigOptions: [] });
    }
  });
});
