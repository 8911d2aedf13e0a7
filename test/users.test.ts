import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, makeKey, makeWorkTree, run, ssh, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { adminUsers, ROOT, TestServer } from './helpers/server.js';

const USERS_CLI = join(ROOT, 'dist', 'cli', 'users.js');

describe('the users CLI changes who may log in to a running server', () => {
  let server: TestServer;
  let admin: ClientKey;
  let erin: ClientKey;

  /** The CLI as an operator runs it beside the server: same config file, another process. */
  function users(args: string[], input = '') {
    return run(process.execPath, [USERS_CLI, ...args, '--config', server.configFile], { cwd: server.dir, input, timeoutMs: 60_000 });
  }

  before(async () => {
    admin = makeKey('ed25519');
    erin = makeKey('ed25519');
    server = await TestServer.start({ users: adminUsers(admin) });
    // A repository for erin to clone.
    const pushed = await git(admin, server.port, ['push', '-q', url(server.port, 'team/app'), 'main'], makeWorkTree());
    assert.equal(pushed.code, 0, pushed.stderr);
  });

  after(async () => {
    await server?.dispose();
  });

  test('a user added with the key on standard input can clone at once, and is refused once removed', async () => {
    assert.equal((await ssh(erin, server.port)).code, 255, 'erin is not a user yet');

    let mark = server.mark();
    const added = await users(['add', '--name', 'erin', '--key', '-', '--access', 'team/*=read'], `${erin.publicLine}\n`);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /added user erin with 1 key/);
    await server.waitForLogSince(mark, (line) => line.msg === 'reloaded users file' && line.users === 2, 30_000);

    const listed = await users(['list']);
    assert.match(listed.stdout, /^erin {2}1 key {2}team\/\*=read$/m);
    const clone = await git(erin, server.port, ['clone', '-q', url(server.port, 'team/app'), join(temporaryDir('git-sshd-clone-'), 'app')]);
    assert.equal(clone.code, 0, clone.stderr);

    mark = server.mark();
    const removed = await users(['remove', '--name', 'erin']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /removed user erin and 1 key/);
    await server.waitForLogSince(mark, (line) => line.msg === 'reloaded users file' && line.users === 1, 30_000);

    const refused = await git(erin, server.port, ['clone', '-q', url(server.port, 'team/app'), join(temporaryDir('git-sshd-clone-'), 'app')]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /Permission denied \(publickey\)/);
    assert.equal((await ssh(admin, server.port)).stdout.trim(), 'Welcome to git-sshd, @alice!');
  });
});
