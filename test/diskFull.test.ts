import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, makeKey, makeWorkTree, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { adminUsers, TestServer } from './helpers/server.js';

/** Fills the filesystem at `dir` with one file until the disk refuses more. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(4096);
  try {
    for (let i = 0; i < 1_000_000; i += 1) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

function tryMount(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const mountPoint = join(temporaryDir('git-sshd-diskfull-'), 'repos');
mkdirSync(mountPoint);
const mounted = tryMount(mountPoint);

/** A repository created by a push on a full disk: a clear message, nothing half-made left behind. */
describe('creating a repository on a full disk', { skip: mounted ? false : 'needs root to mount a small tmpfs' }, () => {
  let server: TestServer;
  let key: ClientKey;

  before(async () => {
    key = makeKey();
    server = await TestServer.start({ users: adminUsers(key), config: { local: { repos_dir: mountPoint } } });
  });

  after(async () => {
    await server?.dispose();
    execFileSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
  });

  test('the user is told the disk is full, nothing is left on disk, and a later push works once there is room', async () => {
    const filler = join(mountPoint, '.filler');
    fill(filler);
    const errorsBefore = (await server.metric('gitlab_sli:shell_sshd_sessions:errors_total')) ?? 0;
    const work = makeWorkTree();

    const push = await git(key, server.port, ['push', url(server.port, 'team/new'), 'main'], work);

    assert.notEqual(push.code, 0);
    assert.match(push.stderr, /^ERROR: the server is out of disk space; nothing was changed/m);
    assert.doesNotMatch(push.stderr, /internal server error/);
    assert.deepEqual(readdirSync(mountPoint), ['.filler'], 'no half-made repository, temporary or parent directory');
    // Ours to fix, so it counts as an error, and the log says what happened.
    assert.equal(await server.metric('gitlab_sli:shell_sshd_sessions:errors_total'), errorsBefore + 1);
    const failed = await server.waitForLog((line) => line.msg === 'command failed');
    assert.match(JSON.stringify(failed.err), /no space left on the repository disk/);

    rmSync(filler);
    const again = await git(key, server.port, ['push', '-q', url(server.port, 'team/new'), 'main'], work);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(existsSync(join(mountPoint, 'team', 'new.git', 'HEAD')));
    assert.deepEqual(readdirSync(join(mountPoint, 'team')), ['new.git']);
  });
});
