import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, gitLocal, makeKey, makeWorkTree, ssh, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { TestServer } from './helpers/server.js';

const SLI_ERRORS = 'gitlab_sli:shell_sshd_sessions:errors_total';

function refsOf(bareDir: string): string {
  return gitLocal(['for-each-ref', '--format=%(objectname) %(refname)'], bareDir);
}

function listTree(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort() : [];
}

/**
 * What authorization sees must be what git opens: a repository reached through a symlink
 * (an operator's alias for a renamed repository) is authorized, run and logged as the real
 * repository; and a name that passes validation but that the filesystem refuses is the
 * user's error with a clear message, never "internal server error".
 */
describe('repository paths as they really are on disk', () => {
  let server: TestServer;
  const keys: Record<'admin' | 'team' | 'other' | 'linker', ClientKey> = {} as never;

  function seedRepo(name: string): string {
    const bare = join(server.reposDir, `${name}.git`);
    mkdirSync(bare, { recursive: true });
    gitLocal(['init', '-q', '--bare', '-b', 'main', bare]);
    gitLocal(['push', '-q', bare, 'main'], makeWorkTree({ 'README.md': `${name}\n` }));
    return bare;
  }

  before(async () => {
    for (const name of ['admin', 'team', 'other', 'linker'] as const) keys[name] = makeKey('ed25519', temporaryDir(`git-sshd-${name}-`));
    server = await TestServer.start({
      users: [
        { name: 'admin', keys: [keys.admin.publicLine], access: { '*': 'admin' } },
        { name: 'teamer', keys: [keys.team.publicLine], access: { 'team/*': 'admin' } },
        { name: 'otherer', keys: [keys.other.publicLine], access: { 'other/*': 'write' } },
        { name: 'linker', keys: [keys.linker.publicLine], access: { 'linked/*': 'admin' } },
      ],
    });
    seedRepo('team/app');
    seedRepo('other/private');
    // The operator's alias for a renamed repository, and a directory alias.
    symlinkSync('../other/private.git', join(server.reposDir, 'team', 'alias.git'));
    symlinkSync('other', join(server.reposDir, 'linked'));
  });

  after(async () => {
    await server?.dispose();
  });

  describe('symlinks inside the repository root', () => {
    test('a grant on the alias name does not reach the real repository: neither read nor push', async () => {
      const bare = join(server.reposDir, 'other', 'private.git');
      const refsBefore = refsOf(bare);
      const clone = await git(keys.team, server.port, ['clone', '-q', url(server.port, 'team/alias'), join(temporaryDir('git-sshd-c-'), 'c')]);
      assert.notEqual(clone.code, 0);
      assert.match(clone.stderr, /^ERROR: repository 'team\/alias' was not found, or you do not have access to it/m);
      assert.doesNotMatch(clone.stderr, /other\/private/, 'the refusal must not reveal where the alias leads');

      const work = makeWorkTree({ 'x.txt': 'x\n' });
      const push = await git(keys.team, server.port, ['push', url(server.port, 'team/alias'), 'main:refs/heads/intruder'], work);
      assert.notEqual(push.code, 0);
      assert.equal(refsOf(bare), refsBefore);
    });

    test('a user granted the real repository can use the alias, and the log names the real repository', async () => {
      const mark = server.mark();
      const dir = join(temporaryDir('git-sshd-c-'), 'c');
      const clone = await git(keys.other, server.port, ['clone', '-q', url(server.port, 'team/alias'), dir]);
      assert.equal(clone.code, 0, clone.stderr);
      assert.equal(gitLocal(['show', 'HEAD:README.md'], dir), 'other/private');
      const summary = await server.waitForLogSince(mark, (line) => line.msg === 'connection closed' && line.user === 'otherer');
      const sessions = summary.sessions as Array<Record<string, unknown>>;
      assert.deepEqual(sessions.map((session) => session.repo), ['other/private']);
    });

    test('a symlinked directory is authorized as its target: a grant on the link name reaches nothing behind it', async () => {
      const clone = await git(keys.linker, server.port, ['clone', '-q', url(server.port, 'linked/private'), join(temporaryDir('git-sshd-c-'), 'c')]);
      assert.notEqual(clone.code, 0);
      assert.match(clone.stderr, /^ERROR: repository 'linked\/private' was not found, or you do not have access to it/m);
      // An admin of linked/* cannot create other/new by pushing to linked/new either.
      const push = await ssh(keys.linker, server.port, ["git-receive-pack 'linked/new'"]);
      assert.equal(push.code, 1, push.stderr);
      assert.equal(existsSync(join(server.reposDir, 'other', 'new.git')), false);
    });

    test('a repository created through a symlinked directory is created, and logged, under its real name', async () => {
      const mark = server.mark();
      const push = await git(keys.other, server.port, ['push', '-q', url(server.port, 'linked/fresh'), 'main'], makeWorkTree());
      // otherer may write to other/* but is not an admin: refused as for other/fresh itself.
      assert.notEqual(push.code, 0);
      assert.match(push.stderr, /only admins can create repositories/);
      const admin = await git(keys.admin, server.port, ['push', '-q', url(server.port, 'linked/fresh'), 'main'], makeWorkTree());
      assert.equal(admin.code, 0, admin.stderr);
      assert.ok(existsSync(join(server.reposDir, 'other', 'fresh.git', 'HEAD')));
      const created = await server.waitForLogSince(mark, (line) => line.msg === 'created repository');
      assert.equal(created.repo, 'other/fresh');
    });
  });

  describe('names the filesystem refuses are policy errors, not internal errors', () => {
    const cases: Array<{ name: string; repo: string; expect: RegExp; setup?: () => void }> = [
      ...[252, 253, 254, 255].map((length) => ({
        name: `a ${length}-character name (longer than NAME_MAX once ".git" is added)`,
        repo: 'a'.repeat(length),
        expect: /^ERROR: invalid repository path ".*": the repository name is too long for the filesystem/m,
      })),
      {
        name: 'a 252-character name below a directory',
        repo: `t/${'b'.repeat(252)}`.slice(0, 255),
        expect: /^ERROR: invalid repository path ".*": the repository name is too long for the filesystem/m,
      },
      {
        name: 'a path through a regular file (ENOTDIR)',
        repo: 'plainfile/x',
        expect: /^ERROR: (repository 'plainfile\/x' was not found, or you do not have access to it|invalid repository path "plainfile\/x": a part of it is a file, not a directory)$/m,
        setup: () => writeFileSync(join(server.reposDir, 'plainfile'), 'not a directory\n'),
      },
      {
        name: 'a path through a regular file named like a repository (ENOTDIR)',
        repo: 'filerepo',
        expect: /^ERROR: (repository 'filerepo' was not found, or you do not have access to it|invalid repository path "filerepo": a part of it is a file, not a directory)$/m,
        setup: () => writeFileSync(join(server.reposDir, 'filerepo.git'), ''),
      },
      {
        name: 'a symlink loop (ELOOP)',
        repo: 'loop/x',
        expect: /^ERROR: invalid repository path "loop\/x": it leads through a symlink loop/m,
        setup: () => symlinkSync('loop', join(server.reposDir, 'loop')),
      },
      {
        name: 'a repository symlinked to itself (ELOOP)',
        repo: 'selfloop',
        expect: /^ERROR: invalid repository path "selfloop": it leads through a symlink loop/m,
        setup: () => symlinkSync('selfloop.git', join(server.reposDir, 'selfloop.git')),
      },
    ];
    for (const { name, repo, expect, setup } of cases) {
      test(`${name}: a clear refusal for reads and pushes, nothing counted as an error, nothing left on disk`, async () => {
        setup?.();
        const before = listTree(server.reposDir);
        const errorsBefore = (await server.metric(SLI_ERRORS)) ?? 0;
        const mark = server.mark();
        for (const service of ['git-upload-pack', 'git-receive-pack']) {
          const result = await ssh(keys.admin, server.port, [`${service} '${repo}'`]);
          assert.equal(result.code, 1, `${service}: ${result.stderr}`);
          assert.match(result.stderr, expect, service);
          assert.doesNotMatch(result.stderr, /internal server error/, service);
        }
        assert.equal(await server.metric(SLI_ERRORS), errorsBefore, 'the error SLI must not move');
        await server.waitForLogSince(mark, (line) => line.msg === 'connection closed');
        assert.equal(server.logs.slice(mark).some((line) => line.msg === 'command failed'), false, 'logged as a system failure');
        assert.deepEqual(listTree(server.reposDir), before);
      });
    }
  });

  test('cleanup of links made by this suite', () => {
    for (const link of ['loop', 'selfloop.git', 'plainfile', 'filerepo.git']) rmSync(join(server.reposDir, link), { force: true });
  });
});
