import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, gitLocal, makeKey, temporaryDir, url } from './helpers/client.js';
import { GitalyPeer } from './helpers/gitalyPeer.js';
import { blobOf, gitalyAllowed, RELATIVE, SECRET, TOKEN } from './helpers/gitalyFixture.js';
import { GitlabApiFixture } from './helpers/gitlabApi.js';
import { TestServer } from './helpers/server.js';

const MEGABYTE = 1024 * 1024;

describe('backend gitlab with git in Gitaly: a 100 MB repository', () => {
  const api = new GitlabApiFixture(SECRET);
  const alice = makeKey();
  const storage = temporaryDir('git-sshd-gitaly-large-');
  const scratch = temporaryDir('git-sshd-gitaly-large-work-');
  let peer: GitalyPeer;
  let server: TestServer;

  before(async () => {
    gitLocal(['init', '-q', '--bare', join(storage, RELATIVE)]);
    peer = await GitalyPeer.start(['-token', TOKEN, '-storage', `default=${storage}`]);
    await api.start();
    api.users.set(blobOf(alice.publicLine), { keyId: 11, userId: 7, username: 'alice' });
    // No receive.MaxInputSize here: 100 MB pushes must go through.
    api.handlers['/api/v4/internal/allowed'] = () => gitalyAllowed(peer.address, TOKEN, { gitConfigOptions: [] });
    server = await TestServer.start({ config: { backend: 'gitlab', gitlab_url: api.url, secret: SECRET } });
  });
  after(async () => {
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
    const summary = await server.waitForSummarySince(0, (line) => (line.sessions as Array<{ command: string }>)[0]?.command === 'git-upload-pack');
    assert.ok((summary?.bytes_out as number) > 100 * MEGABYTE, `bytes_out ${summary?.bytes_out}`);
  });

});
