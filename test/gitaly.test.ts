import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { git, gitLocal, makeKey, makeWorkTree, run, sshCommand, temporaryDir, url } from './helpers/client.js';
import { GitalyPeer } from './helpers/gitalyPeer.js';
import { GitlabApiFixture } from './helpers/gitlabApi.js';
import { TestServer } from './helpers/server.js';
import { blobOf, FORCE_PUSH_REFUSED, gitalyAllowed, makeGitalyRepository, SECRET, TOKEN } from './helpers/gitalyFixture.js';

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

