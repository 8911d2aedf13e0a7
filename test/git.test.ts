import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, gitLocal, makeKey, makeWorkTree, run, url, type ClientKey } from './helpers/client.js';
import { TestServer } from './helpers/server.js';

describe('git over SSH with the stock OpenSSH client', () => {
  let server: TestServer;
  let admin: ClientKey;
  let work: string;
  const scratch = mkdtempSync(join(tmpdir(), 'git-sshd-git-'));

  before(async () => {
    admin = makeKey('ed25519');
    server = await TestServer.start({ users: [{ name: 'alice', keys: [admin.publicLine], access: { '*': 'admin' } }] });
    work = makeWorkTree({ 'README.md': 'hello\n', 'src.txt': 'one\n' });
  });

  after(async () => {
    await server.dispose();
    rmSync(scratch, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  test('an admin creates a repository by pushing to a new path', async () => {
    const pushed = await git(admin, server.port, ['push', url(server.port, 'team/app.git'), 'main'], work);
    assert.equal(pushed.code, 0, pushed.stderr);
    const bare = join(server.reposDir, 'team', 'app.git');
    assert.ok(existsSync(join(bare, 'HEAD')));
    assert.equal(gitLocal(['rev-parse', 'refs/heads/main'], bare), gitLocal(['rev-parse', 'HEAD'], work));
    assert.equal(gitLocal(['symbolic-ref', 'HEAD'], bare), 'refs/heads/main');
  });

  for (const version of ['0', '2']) {
    test(`a clone with protocol version ${version} gets the pushed history and checks out the branch`, async () => {
      const target = join(scratch, `clone-v${version}`);
      const mark = server.mark();
      const cloned = await git(admin, server.port, ['-c', `protocol.version=${version}`, 'clone', url(server.port, 'team/app'), target]);
      assert.equal(cloned.code, 0, cloned.stderr);
      assert.equal(gitLocal(['rev-parse', 'HEAD'], target), gitLocal(['rev-parse', 'HEAD'], work));
      assert.doesNotMatch(cloned.stderr, /warning/i);
      // The push before may log its end after this clone began: find the clone's own summary.
      const summary = await server.waitForSummarySince(mark, (line) => (line.sessions as Array<{ command: string }>)[0]?.command === 'git-upload-pack');
      assert.equal(summary?.user, 'alice');
      assert.deepEqual(
        (summary?.sessions as Array<Record<string, unknown>>).map((session) => [session.command, session.repo, session.exit_status]),
        [['git-upload-pack', 'team/app', 0]],
      );
    });
  }

  test('protocol v2 reaches git through GIT_PROTOCOL, and v0 does not', async () => {
    const v2 = await git(admin, server.port, ['-c', 'protocol.version=2', 'ls-remote', url(server.port, '/team/app.git')]);
    assert.equal(v2.code, 0, v2.stderr);
    assert.match(v2.stdout, /refs\/heads\/main/);
    const traced = await run('git', ['-c', 'protocol.version=2', 'ls-remote', url(server.port, '~/team/app')], {
      env: { GIT_SSH_COMMAND: `ssh -F /dev/null -i ${admin.path} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p ${server.port}`, GIT_TRACE_PACKET: '1' },
    });
    assert.equal(traced.code, 0, traced.stderr);
    assert.match(traced.stderr, /< version 2/);
  });

  test('a fetch after a second push brings the new commit', async () => {
    const clone = join(scratch, 'fetcher');
    assert.equal((await git(admin, server.port, ['clone', url(server.port, 'team/app'), clone])).code, 0);
    writeFileSync(join(work, 'src.txt'), 'two\n');
    gitLocal(['-c', 'user.name=T', '-c', 'user.email=t@e', 'commit', '-qam', 'second'], work);
    const pushed = await git(admin, server.port, ['push', url(server.port, 'team/app'), 'main'], work);
    assert.equal(pushed.code, 0, pushed.stderr);
    const fetched = await git(admin, server.port, ['fetch', 'origin'], clone);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(gitLocal(['rev-parse', 'origin/main'], clone), gitLocal(['rev-parse', 'HEAD'], work));
  });

  test('git archive --remote streams a tar of the tree', async () => {
    const archived = await run('sh', ['-c', `git archive --remote=${url(server.port, 'team/app')} HEAD | tar -t`], {
      env: { GIT_SSH_COMMAND: `ssh -F /dev/null -i ${admin.path} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p ${server.port}` },
    });
    assert.equal(archived.code, 0, archived.stderr);
    assert.deepEqual(archived.stdout.trim().split('\n').sort(), ['README.md', 'src.txt']);
  });

  test('a rejected push reports git’s own exit status and message', async () => {
    const other = makeWorkTree({ 'README.md': 'unrelated\n' });
    const pushed = await git(admin, server.port, ['push', url(server.port, 'team/app'), 'main'], other);
    assert.notEqual(pushed.code, 0);
    assert.match(pushed.stderr, /rejected/);
    assert.doesNotMatch(pushed.stderr, /unexpected disconnect|hung up/);
    rmSync(other, { recursive: true, force: true });
  });

  test('a clone of a repository that does not exist fails with a clear message', async () => {
    const cloned = await git(admin, server.port, ['clone', url(server.port, 'team/missing'), join(scratch, 'missing')]);
    assert.equal(cloned.code, 128);
    assert.match(cloned.stderr, /ERROR: repository 'team\/missing' was not found/);
  });
});
