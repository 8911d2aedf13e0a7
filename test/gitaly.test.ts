import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { git, gitLocal, makeKey, makeWorkTree, run, slowGit, sshCommand, temporaryDir, url } from './helpers/client.js';
import { GitalyPeer } from './helpers/gitalyPeer.js';
import { allowedReply, GitlabApiFixture, type Reply } from './helpers/gitlabApi.js';
import { TestServer } from './helpers/server.js';

const SECRET = 'gitaly-test-secret\n';
const TOKEN = 'the-gitaly-token';
const RELATIVE = '@hashed/d4/73/d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f86f2ee4c1d3e1d4f5f.git';
const FORCE_PUSH_REFUSED = 'GitLab: You are not allowed to force push code to a protected branch on this project.';

function blobOf(publicLine: string): string {
  return publicLine.split(' ')[1]!.replace(/=+$/, '');
}

/**
 * The repository in the peer's storage, with a pre-receive hook as GitLab's protected
 * branches would answer a force push, recording the GL_* environment it ran with.
 */
function makeGitalyRepository(storage: string, hookLog: string): string {
  const repo = join(storage, RELATIVE);
  mkdirSync(join(repo, '..'), { recursive: true });
  gitLocal(['clone', '-q', '--bare', makeWorkTree({ 'README.md': 'hello from gitaly\n', 'a.txt': 'a\n' }), repo]);
  gitLocal(['config', 'uploadpack.allowFilter', 'true'], repo);
  const hook = join(repo, 'hooks', 'pre-receive');
  writeFileSync(
    hook,
    `#!/bin/sh
env | grep -E '^GL_' | sort > ${hookLog}
zero=0000000000000000000000000000000000000000
while read old new ref; do
  if [ "$old" != "$zero" ] && [ "$new" != "$zero" ] && ! git merge-base --is-ancestor "$old" "$new"; then
    echo "${FORCE_PUSH_REFUSED}" >&2
    exit 1
  fi
done
`,
  );
  chmodSync(hook, 0o755);
  return repo;
}

function gitalyAllowed(address: string, token: string, extra: { features?: Record<string, string>; gitConfigOptions?: string[] } = {}): Reply {
  const reply = allowedReply({ relativePath: RELATIVE, projectPath: 'group/project', userId: 7, username: 'alice' });
  const body = reply.body as Record<string, any>;
  return {
    status: 200,
    body: {
      ...body,
      gl_key_id: 11,
      ...(extra.gitConfigOptions ? { git_config_options: extra.gitConfigOptions } : {}),
      gitaly: { ...body.gitaly, address, token, features: extra.features ?? { 'gitaly-feature-sidechannel-speedup': 'true', 'not-a-gitaly-flag': 'x' } },
    },
  };
}

describe('backend gitlab with git in Gitaly (the Gitaly test peer), with OpenSSH and git', () => {
  const api = new GitlabApiFixture(SECRET);
  const alice = makeKey();
  const storage = temporaryDir('git-sshd-gitaly-storage-');
  const hookLog = join(temporaryDir('git-sshd-gitaly-hook-'), 'env.txt');
  let repo: string;
  let peer: GitalyPeer;
  let server: TestServer;

  before(async () => {
    repo = makeGitalyRepository(storage, hookLog);
    peer = await GitalyPeer.start(['-token', TOKEN, '-storage', `default=${storage}`]);
    await api.start();
    api.users.set(blobOf(alice.publicLine), { keyId: 11, userId: 7, username: 'alice' });
    server = await TestServer.start({ config: { backend: 'gitlab', gitlab_url: api.url, secret: SECRET, gitlab: { gitaly_start_timeout: '60s' } } });
  });
  after(async () => {
    await server?.dispose();
    await api.stop();
    await peer?.stop();
  });
  beforeEach(() => {
    api.handlers['/api/v4/internal/allowed'] = () => gitalyAllowed(peer.address, TOKEN);
  });

  test('clone (protocol v2) through SSHUploadPackWithSidechannel, with the metadata gitlab-shell sends', async () => {
    const mark = server.mark();
    const dest = join(temporaryDir('git-sshd-gitaly-clone-'), 'p');
    const clone = await git(alice, server.port, ['-c', 'protocol.version=2', 'clone', url(server.port, 'group/project.git'), dest]);
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(readFileSync(join(dest, 'README.md'), 'utf8'), 'hello from gitaly\n');
    const summary = await server.waitForLogSince(mark, (line) => line.msg === 'connection closed');
    const [rpc] = peer.rpcs('SSHUploadPackWithSidechannel').slice(-1);
    assert.equal(rpc!.code, 'OK', String(rpc!.error));
    const metadata = rpc!.metadata as Record<string, string>;
    assert.equal(metadata['x-gitlab-correlation-id'], summary.correlation_id);
    assert.equal(metadata['x-gitlab-client-name'], 'git-sshd-git-upload-pack');
    assert.equal(metadata.key_id, '11');
    assert.equal(metadata.key_type, 'key');
    assert.equal(metadata.user_id, 'user-7');
    assert.equal(metadata.username, 'alice');
    assert.equal(metadata.remote_ip, '127.0.0.1');
    assert.equal(metadata['gitaly-feature-sidechannel-speedup'], 'true');
    assert.equal(metadata['not-a-gitaly-flag'], undefined, 'only gitaly-feature-* flags are sent');
    assert.match(metadata['gitaly-sidechannel-id'] ?? '', /^\d+$/);
  });

  test('clone with protocol v0, fetch of a new commit, shallow and partial clones', async () => {
    const dir = temporaryDir('git-sshd-gitaly-fetch-');
    const v0 = await git(alice, server.port, ['-c', 'protocol.version=0', 'clone', url(server.port, 'group/project.git'), join(dir, 'v0')]);
    assert.equal(v0.code, 0, v0.stderr);
    assert.equal(peer.rpcs('SSHUploadPackWithSidechannel').at(-1)!.code, 'OK');
    // A commit lands in Gitaly's copy; fetch brings it.
    const work = join(dir, 'work');
    gitLocal(['clone', '-q', repo, work]);
    writeFileSync(join(work, 'NEW.md'), 'new\n');
    gitLocal(['add', '.'], work);
    gitLocal(['-c', 'user.name=T', '-c', 'user.email=t@e', 'commit', '-q', '-m', 'second'], work);
    gitLocal(['push', '-q', 'origin', 'HEAD:main'], work);
    const fetched = await git(alice, server.port, ['fetch', 'origin'], join(dir, 'v0'));
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(gitLocal(['rev-parse', 'origin/main'], join(dir, 'v0')), gitLocal(['rev-parse', 'main'], repo));
    const shallow = await git(alice, server.port, ['clone', '--depth', '1', url(server.port, 'group/project.git'), join(dir, 'shallow')]);
    assert.equal(shallow.code, 0, shallow.stderr);
    assert.equal(gitLocal(['rev-list', '--count', 'HEAD'], join(dir, 'shallow')), '1');
    const partial = await git(alice, server.port, ['clone', '--filter=blob:none', url(server.port, 'group/project.git'), join(dir, 'partial')]);
    assert.equal(partial.code, 0, partial.stderr);
    assert.equal(gitLocal(['config', 'remote.origin.promisor'], join(dir, 'partial')), 'true');
    assert.equal(readFileSync(join(dir, 'partial', 'NEW.md'), 'utf8'), 'new\n');
  });

  test('push of a new branch runs in Gitaly through SSHReceivePack, with GitLab\'s identity for the hooks', async () => {
    const work = makeWorkTree({ 'FEATURE.md': 'feature\n' });
    const push = await git(alice, server.port, ['push', url(server.port, 'group/project.git'), 'HEAD:refs/heads/feature'], work);
    assert.equal(push.code, 0, push.stderr);
    assert.equal(gitLocal(['rev-parse', 'refs/heads/feature'], repo), gitLocal(['rev-parse', 'HEAD'], work));
    const env = readFileSync(hookLog, 'utf8');
    for (const expected of ['GL_ID=user-7', 'GL_PROTOCOL=ssh', 'GL_REPOSITORY=project-26', 'GL_USERNAME=alice']) assert.ok(env.includes(expected), `${expected} in\n${env}`);
    const rpc = peer.rpcs('SSHReceivePack').at(-1)!;
    assert.equal(rpc.code, 'OK', String(rpc.error));
    assert.equal((rpc.metadata as Record<string, string>)['x-gitlab-client-name'], 'git-sshd-git-receive-pack');
  });

  test('a force push is refused by the repository\'s pre-receive hook in Gitaly, and its message reaches the user', async () => {
    const before = gitLocal(['rev-parse', 'refs/heads/main'], repo);
    const unrelated = makeWorkTree({ 'OTHER.md': 'rewritten history\n' });
    const push = await git(alice, server.port, ['push', '--force', url(server.port, 'group/project.git'), 'HEAD:refs/heads/main'], unrelated);
    assert.notEqual(push.code, 0);
    assert.match(push.stderr, new RegExp(`remote: ${FORCE_PUSH_REFUSED.replace(/\./g, '\\.')}`));
    assert.match(push.stderr, /pre-receive hook declined/);
    assert.equal(gitLocal(['rev-parse', 'refs/heads/main'], repo), before, 'main is unchanged');
  });

  test('git archive --remote runs through SSHUploadArchive', async () => {
    const dir = temporaryDir('git-sshd-gitaly-archive-');
    const tar = join(dir, 'out.tar');
    const archived = await run('git', ['archive', '--remote', url(server.port, 'group/project.git'), '--format=tar', '-o', tar, 'HEAD', 'README.md'], {
      env: { GIT_SSH_COMMAND: sshCommand(alice, server.port) },
    });
    assert.equal(archived.code, 0, archived.stderr);
    assert.match(execFileSync('tar', ['-tf', tar], { encoding: 'utf8' }), /^README\.md$/m);
    assert.equal(execFileSync('tar', ['-xOf', tar, 'README.md'], { encoding: 'utf8' }), 'hello from gitaly\n');
    assert.equal(peer.rpcs('SSHUploadArchive').at(-1)!.code, 'OK');
  });

  test('gRPC metrics count each call by method and code, with gitlab-shell\'s connection counter', async () => {
    const clone = await git(alice, server.port, ['clone', '-q', url(server.port, 'group/project.git'), join(temporaryDir('git-sshd-gitaly-m-'), 'p')]);
    assert.equal(clone.code, 0, clone.stderr);
    const labels = '{grpc_type="unary",grpc_service="gitaly.SSHService",grpc_method="SSHUploadPackWithSidechannel"';
    const started = await server.metric('grpc_client_started_total', `${labels}}`);
    const handled = await server.metric('grpc_client_handled_total', `${labels},grpc_code="OK"}`);
    assert.ok(started! >= 1);
    assert.equal(handled, started, 'every started call was handled OK');
    assert.equal(await server.metric('gitlab_shell_gitaly_connections_total', '{status="ok"}'), 1, 'one cached channel for every call so far');
  });

  test('a wrong Gitaly token is refused by Gitaly\'s token check, with a clear message, counted as a system error', async () => {
    api.handlers['/api/v4/internal/allowed'] = () => gitalyAllowed(peer.address, 'not-the-token');
    const clone = await git(alice, server.port, ['clone', url(server.port, 'group/project.git'), join(temporaryDir('git-sshd-gitaly-tok-'), 'p')]);
    assert.notEqual(clone.code, 0);
    assert.match(clone.stderr, /ERROR: Gitaly refused this server's credentials \(permission denied: wrong hmac signature\); the Gitaly token may be wrong/);
    assert.equal(peer.rpcs('SSHUploadPackWithSidechannel').at(-1)!.code, 'PermissionDenied');
    assert.ok((await server.metric('git_sshd_gitaly_errors_total', '{grpc_method="SSHUploadPackWithSidechannel",class="system"}'))! >= 1);
  });
});

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

describe('backend gitlab with git in Gitaly: large transfers and Gitaly failures', () => {
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
    gitLocal(['init', '-q', '--bare', join(storage, RELATIVE)]);
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

  test('a 100 MB push and clone through Gitaly are byte-identical', { timeout: 900_000 }, async () => {
    const work = join(scratch, 'work');
    gitLocal(['init', '-q', '-b', 'main', work]);
    // Random bytes do not compress: the packs really are ~100 MB on the wire both ways.
    for (let commit = 0; commit < 5; commit++) {
      for (let file = 0; file < 2; file++) writeFileSync(join(work, `blob-${commit}-${file}.bin`), randomBytes(10 * MEGABYTE));
      gitLocal(['add', '.'], work);
      gitLocal(['-c', 'user.name=T', '-c', 'user.email=t@e', 'commit', '-q', '-m', `commit ${commit}`], work);
    }
    gitLocal(['tag', 'v1'], work);
    // Random blobs have no deltas worth searching for: skip the search, which a loaded machine makes slow.
    const pushed = await git(alice, server.port, ['-c', 'core.bigFileThreshold=1m', 'push', '--mirror', url(server.port, 'group/project.git')], work);
    assert.equal(pushed.code, 0, pushed.stderr);
    const clone = join(scratch, 'clone');
    const cloned = await git(alice, server.port, ['clone', '--mirror', url(server.port, 'group/project.git'), clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    const refs = (dir: string): string => gitLocal(['for-each-ref', '--format=%(objectname) %(refname)'], dir);
    assert.equal(refs(clone), refs(work));
    assert.equal(refs(join(storage, RELATIVE)), refs(work));
    gitLocal(['fsck', '--full', '--strict'], clone);
    gitLocal(['fsck', '--full', '--strict'], join(storage, RELATIVE));
    const summary = server.summaries().find((line) => (line.sessions as Array<{ command: string }>)[0]?.command === 'git-upload-pack');
    assert.ok((summary?.bytes_out as number) > 100 * MEGABYTE, `bytes_out ${summary?.bytes_out}`);
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
