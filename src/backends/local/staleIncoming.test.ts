import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { memoryLogger } from '../../../test/helpers/memoryLogger.js';
import { removeStaleIncoming } from './staleIncoming.js';

const HOUR = 3_600_000;

describe('removeStaleIncoming', () => {
  const root = mkdtempSync(join(tmpdir(), 'git-sshd-stale-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  /** An incoming directory with one pack file, everything last changed `ageHours` ago. */
  function incoming(repo: string, name: string, ageHours: number): string {
    const dir = join(root, repo, 'objects', name);
    mkdirSync(join(dir, 'pack'), { recursive: true });
    writeFileSync(join(dir, 'pack', 'tmp_pack_x'), 'partial');
    const when = (Date.now() - ageHours * HOUR) / 1000;
    for (const path of [join(dir, 'pack', 'tmp_pack_x'), join(dir, 'pack'), dir]) utimesSync(path, when, when);
    return dir;
  }

  it('removes old partial pushes in nested repositories and leaves recent ones and other directories', async () => {
    const old = incoming('group/sub/app.git', 'tmp_objdir-incoming-AAAAAA', 9);
    const recent = incoming('group/sub/app.git', 'tmp_objdir-incoming-BBBBBB', 1);
    const otherOld = incoming('top.git', 'tmp_objdir-incoming-CCCCCC', 30);
    const notIncoming = incoming('top.git', 'pack-something', 30);
    // An old directory with one file written just now: a push still arriving.
    const active = incoming('top.git', 'tmp_objdir-incoming-DDDDDD', 30);
    writeFileSync(join(active, 'pack', 'tmp_pack_y'), 'fresh');
    const { log, lines } = memoryLogger();
    const counted: number[] = [];
    const removed = await removeStaleIncoming({ reposDir: root, olderThanMs: 6 * HOUR, log, onRemoved: (count) => counted.push(count) });
    assert.equal(removed, 2);
    assert.deepEqual(counted, [2]);
    assert.equal(existsSync(old), false);
    assert.equal(existsSync(otherOld), false);
    for (const kept of [recent, notIncoming, active]) assert.equal(existsSync(kept), true, kept);
    assert.equal(lines.filter((line) => line.msg === 'removed a partial push left by a crash').length, 2);
  });

  it('copes with a repository directory that does not exist', async () => {
    const { log } = memoryLogger();
    assert.equal(await removeStaleIncoming({ reposDir: join(root, 'missing'), olderThanMs: HOUR, log }), 0);
  });
});
