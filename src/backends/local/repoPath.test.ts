import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERR_REPO_PATH, isCode } from '../../errors.js';
import { locateRepo, resolveRepo } from './repoPath.js';

const ROOT = '/srv/git-sshd/repos';

const isRepoPathError = (err: unknown): boolean => isCode(err, ERR_REPO_PATH) && err.errorClass === 'policy';

describe('locateRepo', () => {
  test('every spelling of a repository gives one name and one directory', () => {
    for (const arg of ['team/app', 'team/app.git', '/team/app.git', '~/team/app', 'team/app/', `${ROOT}/team/app.git`]) {
      assert.deepEqual(locateRepo(arg, ROOT), { name: 'team/app', dir: `${ROOT}/team/app.git` }, arg);
    }
  });

  test('a root given with a trailing slash still recognises absolute paths under it', () => {
    assert.deepEqual(locateRepo(`${ROOT}/app.git`, `${ROOT}/`), { name: 'app', dir: `${ROOT}/app.git` });
  });

  test('a top-level repository and the allowed characters are accepted', () => {
    assert.deepEqual(locateRepo('My_Repo-2.0', ROOT), { name: 'My_Repo-2.0', dir: `${ROOT}/My_Repo-2.0.git` });
  });

  test('paths that could escape the root, hide, or pose as options are refused', () => {
    const refused = [
      '..',
      'team/../x',
      './x',
      '.hidden',
      'team/.hidden',
      '-option',
      'team/-u',
      'a//b',
      'a\0b',
      'a\x01b',
      'a\x7fb',
      'a\nb',
      'a b',
      'a\\b',
      '~other/x',
      '~',
      'x.git/y',
      'x.lock',
      'team/x.lock.git',
      '',
      '/',
      '~/',
      '.git',
      'a'.repeat(256),
      'a'.repeat(252),
      `t/${'a'.repeat(252)}`,
      Array.from({ length: 21 }, () => 'a').join('/'),
    ];
    for (const arg of refused) {
      assert.throws(() => locateRepo(arg, ROOT), isRepoPathError, JSON.stringify(arg));
    }
  });

  test('the longest and deepest allowed paths are accepted', () => {
    // The directory is the name + ".git", and must fit NAME_MAX (255 bytes).
    assert.equal(locateRepo('a'.repeat(251), ROOT).name, 'a'.repeat(251));
    assert.equal(locateRepo(`${'a'.repeat(253)}/b`, ROOT).name, `${'a'.repeat(253)}/b`);
    const deep = Array.from({ length: 20 }, () => 'a').join('/');
    assert.equal(locateRepo(deep, ROOT).name, deep);
  });

  test('a refusal quotes the path so control characters cannot forge output', () => {
    assert.throws(() => locateRepo('a\nb', ROOT), (err: Error) => !err.message.includes('\n') && err.message.includes('"a\\nb"'));
  });
});

describe('resolveRepo', () => {
  const base = mkdtempSync(join(tmpdir(), 'git-sshd-repopath-'));
  const root = join(base, 'repos');
  const outside = mkdtempSync(join(tmpdir(), 'git-sshd-outside-'));
  mkdirSync(join(root, 'team', 'app.git'), { recursive: true });
  after(() => {
    rmSync(base, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  test('a normal repository passes', () => {
    assert.deepEqual(resolveRepo(locateRepo('team/app', root), root), { name: 'team/app', dir: join(realpathSync(root), 'team', 'app.git') });
  });

  test('a repository not created yet passes', () => {
    assert.equal(resolveRepo(locateRepo('newteam/sub/fresh', root), root).name, 'newteam/sub/fresh');
  });

  test('a root reached through a symlink still accepts its own repositories', () => {
    const link = join(base, 'repos-link');
    symlinkSync(root, link);
    assert.equal(resolveRepo(locateRepo('team/app', link), link).name, 'team/app');
  });

  test('a repository directory that is a symlink to outside the root is refused', () => {
    symlinkSync(outside, join(root, 'evil.git'));
    assert.throws(() => resolveRepo(locateRepo('evil', root), root), isRepoPathError);
  });

  test('a parent directory that is a symlink to outside the root is refused for a repository not created yet', () => {
    symlinkSync(outside, join(root, 'escape'));
    assert.throws(() => resolveRepo(locateRepo('escape/new', root), root), isRepoPathError);
  });

  test('an alias resolves to the real repository, by name and directory', () => {
    mkdirSync(join(root, 'other', 'private.git'), { recursive: true });
    symlinkSync('../other/private.git', join(root, 'team', 'alias.git'));
    symlinkSync('other', join(root, 'otherlink'));
    const real = join(realpathSync(root), 'other', 'private.git');
    assert.deepEqual(resolveRepo(locateRepo('team/alias', root), root), { name: 'other/private', dir: real });
    assert.deepEqual(resolveRepo(locateRepo('otherlink/private', root), root), { name: 'other/private', dir: real });
    assert.equal(resolveRepo(locateRepo('otherlink/new', root), root).name, 'other/new');
  });

  test('an alias to something that is not a repository path is refused', () => {
    mkdirSync(join(root, 'plain'), { recursive: true });
    symlinkSync('../plain', join(root, 'team', 'odd.git'));
    symlinkSync('.', join(root, 'dot.git'));
    for (const name of ['team/odd', 'dot']) {
      assert.throws(() => resolveRepo(locateRepo(name, root), root), (err: Error) => isRepoPathError(err) && /not a repository|outside/.test(err.message), name);
    }
  });

  test('filesystem refusals are policy errors: loops and files in the way', () => {
    symlinkSync('loop.git', join(root, 'loop.git'));
    assert.throws(() => resolveRepo(locateRepo('loop', root), root), (err: Error) => isRepoPathError(err) && /symlink loop/.test(err.message));
    writeFileSync(join(root, 'afile'), '');
    assert.equal(resolveRepo(locateRepo('afile/x', root), root).name, 'afile/x', 'missing, to be reported as not found by the caller');
  });
});

