import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
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

function gitalyAllowed(address: string, token: string, extra: { features?: Record<string, string> } = {}): Reply {
  const reply = allowedReply({ relativePath: RELATIVE, projectPath: 'group/project', userId: 7, username: 'alice' });
  const body = reply.body as Record<string, any>;
  return {
    status: 200,
    body: {
      ...body,
      gl_key_id: 11,
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
});
