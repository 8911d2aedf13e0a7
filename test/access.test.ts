import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, gitLocal, makeKey, makeWorkTree, run, ssh, sshArgs, url, type ClientKey } from './helpers/client.js';
import { TestServer } from './helpers/server.js';

/** Every file and directory below `dir`, as sorted relative paths (symlinks are not followed). */
function listTree(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort() : [];
}

function refsOf(bareDir: string): string {
  return gitLocal(['for-each-ref', '--format=%(objectname) %(refname)'], bareDir);
}

/** The `ERROR: ...` lines of a client's stderr. */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('ERROR: '));
}

describe('access control and repository paths', () => {
  let server: TestServer;
  let keysDir: string;
  let outside: string;
  const scratch: string[] = [];
  const keys: Record<'alice' | 'bob' | 'carol' | 'dave', ClientKey> = {} as never;

  /** A bare repository with one commit on main, made with git directly on disk. */
  function seedRepo(name: string): string {
    const bare = join(server.reposDir, `${name}.git`);
    mkdirSync(bare, { recursive: true });
    gitLocal(['init', '-q', '--bare', '-b', 'main', bare]);
    const work = makeWorkTree({ 'README.md': `${name}\n` });
    scratch.push(work);
    gitLocal(['push', '-q', bare, 'main'], work);
    return bare;
  }

  function workTree(): string {
    const dir = mkdtempSync(join(tmpdir(), 'git-sshd-clone-'));
    scratch.push(dir);
    return dir;
  }

  before(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'git-sshd-keys-'));
    outside = mkdtempSync(join(tmpdir(), 'git-sshd-outside-'));
    for (const name of ['alice', 'bob', 'carol', 'dave'] as const) {
      mkdirSync(join(keysDir, name));
      keys[name] = makeKey('ed25519', join(keysDir, name));
    }
    server = await TestServer.start({
      users: [
        { name: 'alice', keys: [keys.alice.publicLine], access: { '*': 'admin' } },
        { name: 'bob', keys: [keys.bob.publicLine], access: { 'team/*': 'write', docs: 'read' } },
        { name: 'carol', keys: [keys.carol.publicLine] },
        { name: 'dave', keys: [keys.dave.publicLine], access: { 'team/*': 'write' } },
      ],
    });
    seedRepo('docs');
    seedRepo('team/app');
  });

  after(async () => {
    await server?.dispose();
    for (const dir of [keysDir, outside, ...scratch]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a reader cannot push, is told why, and the refs on disk stay as they were', async () => {
    const bare = join(server.reposDir, 'docs.git');
    const refsBefore = refsOf(bare);
    const work = workTree();
    const clone = await git(keys.bob, server.port, ['clone', '-q', url(server.port, 'docs'), work]);
    assert.equal(clone.code, 0, clone.stderr);
    gitLocal(['-c', 'user.name=Bob', '-c', 'user.email=bob@example.com', 'commit', '-q', '--allow-empty', '-m', 'by bob'], work);
    gitLocal(['branch', 'by-bob'], work);

    const push = await git(keys.bob, server.port, ['push', 'origin', 'main', 'by-bob'], work);

    assert.notEqual(push.code, 0);
    assert.match(push.stderr, /^ERROR: .*not allowed to push/m);
    assert.equal(refsOf(bare), refsBefore);
    const summary = await server.waitForLog(
      (line) => line.msg === 'connection closed' && line.user === 'bob' && JSON.stringify(line.sessions).includes('ERR_ACCESS_DENIED'),
    );
    // The refusal names the repository, in the summary and in a line of its own.
    assert.deepEqual((summary.sessions as Array<Record<string, unknown>>).map((s) => [s.command, s.repo, s.exit_status]), [
      ['git-receive-pack', '/docs', 1],
    ]);
    const refused = await server.waitForLog((line) => line.msg === 'command refused' && line.error === 'ERR_ACCESS_DENIED');
    assert.equal(refused.repo, '/docs');
    assert.equal(refused.command, 'git-receive-pack');
  });

  test('a user without access is told the same thing for an existing repository as for a missing one', async () => {
    assert.ok(existsSync(join(server.reposDir, 'team', 'app.git')));
    const existing = await git(keys.carol, server.port, ['clone', '-q', url(server.port, 'team/app'), join(workTree(), 'c')]);
    const missing = await git(keys.carol, server.port, ['clone', '-q', url(server.port, 'team/ghost'), join(workTree(), 'c')]);

    assert.notEqual(existing.code, 0);
    assert.equal(existing.code, missing.code);
    const [existingError] = errorLines(existing.stderr);
    const [missingError] = errorLines(missing.stderr);
    assert.match(existingError ?? '', /not found|no access|do not have access/);
    assert.equal(existingError?.replace('team/app', 'NAME'), missingError?.replace('team/ghost', 'NAME'));

    const direct = await Promise.all(
      ['team/app', 'team/ghost'].map((repo) => ssh(keys.carol, server.port, [`git-upload-pack '${repo}'`])),
    );
    assert.deepEqual(direct.map((result) => result.code), [1, 1]);
    assert.equal(direct[0]?.stderr.replace('team/app', 'NAME'), direct[1]?.stderr.replace('team/ghost', 'NAME'));
  });

  test('a writer who is not an admin cannot create a repository by pushing, and no directory appears', async () => {
    const reposBefore = listTree(server.reposDir);
    const work = makeWorkTree();
    scratch.push(work);

    const push = await git(keys.dave, server.port, ['push', url(server.port, 'team/new'), 'main'], work);

    assert.notEqual(push.code, 0);
    assert.match(push.stderr, /^ERROR: .*only admins can create/m);
    assert.equal(existsSync(join(server.reposDir, 'team', 'new.git')), false);
    assert.deepEqual(listTree(server.reposDir), reposBefore);
  });

  test('a writer can push to an existing repository and clone what was pushed', async () => {
    const work = workTree();
    const clone = await git(keys.bob, server.port, ['clone', '-q', url(server.port, 'team/app'), work]);
    assert.equal(clone.code, 0, clone.stderr);
    gitLocal(['-c', 'user.name=Bob', '-c', 'user.email=bob@example.com', 'commit', '-q', '--allow-empty', '-m', 'by bob'], work);
    const pushed = gitLocal(['rev-parse', 'HEAD'], work);

    const push = await git(keys.bob, server.port, ['push', '-q', 'origin', 'main'], work);
    assert.equal(push.code, 0, push.stderr);
    assert.equal(gitLocal(['rev-parse', 'refs/heads/main'], join(server.reposDir, 'team', 'app.git')), pushed);

    const again = join(workTree(), 'again');
    const second = await git(keys.bob, server.port, ['clone', '-q', url(server.port, 'team/app.git'), again]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(gitLocal(['rev-parse', 'HEAD'], again), pushed);
  });

  describe('repository paths that could leave the root are refused', () => {
    const invalid = ['../etc', 'team/../../x', '/etc/passwd/../..', '.git', '-x', 'team app', 'a\\b', 'x.git/objects'];
    for (const path of invalid) {
      test(`the path ${JSON.stringify(path)} is refused with exit 1 and "invalid repository path", even for an admin`, async () => {
        const dataBefore = listTree(server.dataDir);
        const outsideBefore = listTree(outside);
        for (const service of ['git-upload-pack', 'git-receive-pack']) {
          const result = await ssh(keys.alice, server.port, [`${service} '${path}'`]);
          assert.equal(result.code, 1, `${service}: ${result.stderr}`);
          assert.match(result.stderr, /^ERROR: invalid repository path/m, service);
          assert.equal(result.stdout, '');
        }
        assert.deepEqual(listTree(server.dataDir), dataBefore);
        assert.deepEqual(listTree(outside), outsideBefore);
      });
    }

    test('an absolute path outside the root is looked up inside the root, and is not found there', async () => {
      const reposBefore = listTree(server.reposDir);
      const result = await ssh(keys.alice, server.port, ["git-upload-pack '/etc'"]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^ERROR: repository 'etc' was not found/m);
      assert.doesNotMatch(result.stdout, /HEAD|refs\//);
      assert.deepEqual(listTree(server.reposDir), reposBefore);
    });

    test('an admin push to an absolute path creates the repository inside the root, not at that path', async () => {
      const target = join(outside, 'made-by-push');
      // A flush packet: "no updates", so receive-pack ends cleanly after its advertisement.
      const result = await run('ssh', [...sshArgs(keys.alice, server.port), 'git@127.0.0.1', `git-receive-pack '${target}'`], {
        input: '0000',
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(existsSync(`${target}.git`), false);
      assert.equal(existsSync(target), false);
      assert.ok(existsSync(join(server.reposDir, ...target.split('/').filter(Boolean)) + '.git'));
    });

    test('a symlink planted in the root that points outside it is refused', async () => {
      const real = join(outside, 'real.git');
      gitLocal(['init', '-q', '--bare', '-b', 'main', real]);
      const work = makeWorkTree();
      scratch.push(work);
      gitLocal(['push', '-q', real, 'main'], work);
      const refsBefore = refsOf(real);
      symlinkSync(real, join(server.reposDir, 'evil.git'));

      for (const service of ['git-upload-pack', 'git-receive-pack']) {
        const result = await ssh(keys.alice, server.port, [`${service} 'evil'`]);
        assert.equal(result.code, 1, `${service}: ${result.stderr}`);
        assert.match(result.stderr, /^ERROR: invalid repository path "evil": it leads outside the repository root/m);
        assert.doesNotMatch(result.stdout, /refs\/heads/);
      }
      assert.equal(refsOf(real), refsBefore);
    });

    test('dangling symlinks planted in the root that point outside it are refused as leaving the root', async () => {
      // The targets do not exist (yet): realpath fails with ENOENT, but the links are there,
      // and creating a repository through them would write outside the root.
      symlinkSync(join(outside, 'not-yet.git'), join(server.reposDir, 'dangling.git'));
      symlinkSync(join(outside, 'not-yet-dir'), join(server.reposDir, 'dangling-dir'));

      for (const repo of ['dangling', 'dangling-dir/new']) {
        const push = await ssh(keys.alice, server.port, [`git-receive-pack '${repo}'`]);
        assert.equal(push.code, 1, push.stderr);
        assert.match(push.stderr, /^ERROR: invalid repository path ".*": it leads outside the repository root/m, repo);
        const fetch = await ssh(keys.alice, server.port, [`git-upload-pack '${repo}'`]);
        assert.equal(fetch.code, 1, fetch.stderr);
        assert.match(fetch.stderr, /^ERROR: (invalid repository path ".*": it leads outside the repository root|repository '.*' was not found)/m);
      }
      assert.deepEqual(listTree(outside).filter((name) => name.startsWith('not-yet')), []);
      assert.equal(server.logs.some((line) => line.msg === 'command failed'), false, 'a policy refusal was logged as a system failure');
    });

    test('a new repository below a symlinked directory that points outside the root is not created', async () => {
      const elsewhere = join(outside, 'elsewhere');
      mkdirSync(elsewhere);
      symlinkSync(elsewhere, join(server.reposDir, 'linked'));

      const result = await ssh(keys.alice, server.port, ["git-receive-pack 'linked/new'"]);

      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^ERROR: invalid repository path "linked\/new": it leads outside the repository root/m);
      assert.deepEqual(readdirSync(elsewhere), []);
    });
  });
});
