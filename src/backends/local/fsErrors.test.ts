import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ERR_DISK_FULL, ERR_NOT_FOUND, ERR_REPO_FS, ERR_REPO_PATH, GitSshdError } from '../../errors.js';
import { onRepoPath, repoPathError } from './fsErrors.js';

const dir = mkdtempSync(join(tmpdir(), 'git-sshd-fserrors-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The error a real system call throws. */
function thrownBy(call: () => unknown): unknown {
  try {
    call();
  } catch (err) {
    return err;
  }
  throw new Error('the call did not fail');
}

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: synthetic`), { code });

describe('filesystem errors on repository paths', () => {
  test('errors a name can cause are policy errors with a message for the user', () => {
    writeFileSync(join(dir, 'file'), '');
    symlinkSync('loop', join(dir, 'loop'));
    const cases: Array<[unknown, string, RegExp]> = [
      [thrownBy(() => statSync(join(dir, 'a'.repeat(300)))), ERR_REPO_PATH, /too long for the filesystem/],
      [thrownBy(() => readFileSync(join(dir, 'loop'))), ERR_REPO_PATH, /symlink loop/],
      [thrownBy(() => statSync(join(dir, 'file', 'x'))), ERR_REPO_PATH, /a file, not a directory/],
      [errno('EEXIST'), ERR_REPO_PATH, /a file, not a directory/],
      [thrownBy(() => statSync(join(dir, 'missing'))), ERR_NOT_FOUND, /was not found, or you do not have access/],
    ];
    for (const [cause, code, message] of cases) {
      const err = repoPathError(cause, 'team/x');
      assert.equal(err.code, code, String(cause));
      assert.equal(err.errorClass, 'policy', String(cause));
      assert.match(err.message, message);
    }
  });

  test('a full disk is ours: a system error, with a message the user can act on', () => {
    for (const code of ['ENOSPC', 'EDQUOT']) {
      const err = repoPathError(errno(code), 'team/x');
      assert.equal(err.code, ERR_DISK_FULL);
      assert.equal(err.errorClass, 'system');
      assert.match(err.userMessage ?? '', /out of disk space/);
    }
  });

  test('permissions and I/O errors are ours: system errors naming the cause, with no message of their own for the user', () => {
    for (const code of ['EACCES', 'EPERM', 'EROFS', 'EIO']) {
      const err = repoPathError(errno(code), 'team/x');
      assert.equal(err.code, ERR_REPO_FS);
      assert.equal(err.errorClass, 'system');
      assert.match(err.message, new RegExp(code));
      assert.equal(err.userMessage, undefined);
    }
  });

  test('our own errors pass through unchanged, and onRepoPath classifies what a step throws', () => {
    const own = new GitSshdError('ERR_X', 'x');
    assert.equal(repoPathError(own, 'a'), own);
    assert.throws(() => onRepoPath('a', () => statSync(join(dir, 'nope'))), (err: unknown) => err instanceof GitSshdError && err.code === ERR_NOT_FOUND);
    assert.equal(onRepoPath('a', () => 42), 42);
  });
});
