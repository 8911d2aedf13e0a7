import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, gitLocal, makeKey, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { removeTemporaryDir } from './helpers/processes.js';
import { TestServer } from './helpers/server.js';

const MEGABYTE = 1024 * 1024;

// Pushing and cloning 50 MB through ssh takes seconds on an idle machine and minutes on a
// loaded one: a bound of its own, far above either, so that only a hang fails it.
describe('a 50 MB repository', { timeout: 20 * 60_000 }, () => {
  let server: TestServer;
  let key: ClientKey;
  let work: string;
  const scratch = temporaryDir('git-sshd-large-');

  before(async () => {
    key = makeKey();
    server = await TestServer.start({ users: [{ name: 'alice', keys: [key.publicLine], access: { '*': 'admin' } }] });
    // Random bytes do not compress, so the pack really is ~50 MB on the wire, in both
    // directions; several commits and files make it more than one blob.
    work = join(scratch, 'work');
    gitLocal(['init', '-q', '-b', 'main', work]);
    for (let commit = 0; commit < 5; commit++) {
      for (let file = 0; file < 2; file++) writeFileSync(join(work, `blob-${commit}-${file}.bin`), randomBytes(5 * MEGABYTE));
      gitLocal(['add', '.'], work);
      gitLocal(['-c', 'user.name=T', '-c', 'user.email=t@e', 'commit', '-q', '-m', `commit ${commit}`], work);
    }
    gitLocal(['tag', 'v1'], work);
    gitLocal(['branch', 'side', 'HEAD~2'], work);
  });

  after(async () => {
    await server?.dispose();
    removeTemporaryDir(scratch);
  });

  test('round-trips byte-identical: same refs, fsck clean, same blobs', async () => {
    const pushed = await git(key, server.port, ['push', '--mirror', url(server.port, 'big/repo')], work);
    assert.equal(pushed.code, 0, pushed.stderr);
    const clone = join(scratch, 'clone');
    const cloned = await git(key, server.port, ['clone', '--mirror', url(server.port, 'big/repo'), clone]);
    assert.equal(cloned.code, 0, cloned.stderr);

    const refs = (dir: string): string => gitLocal(['for-each-ref', '--format=%(objectname) %(refname)'], dir);
    assert.equal(refs(clone), refs(work));
    gitLocal(['fsck', '--full', '--strict'], clone);
    gitLocal(['fsck', '--full', '--strict'], join(server.reposDir, 'big', 'repo.git'));
    const tree = (dir: string): string => gitLocal(['ls-tree', '-r', '-l', 'refs/heads/main'], dir);
    assert.equal(tree(clone), tree(work));
    const summary = await server.waitForSummarySince(0, (line) => (line.sessions as Array<{ command: string }>)[0]?.command === 'git-upload-pack');
    assert.ok((summary?.bytes_out as number) > 50 * MEGABYTE, `bytes_out ${summary?.bytes_out}`);
  });
});
