import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { git, gitLocal, makeKey, makeWorkTree, run, ssh, url, type ClientKey } from './helpers/client.js';
import { ROOT, TestServer, type UserSpec } from './helpers/server.js';

/** Writes the file the way editors and ConfigMap updates do: a complete temp file, renamed over. */
function replaceAtomically(file: string, text: string): void {
  const temporary = `${file}.tmp-${process.pid}`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, file);
}

function usersYaml(users: UserSpec[]): string {
  return stringify({ users: users.map((user) => ({ name: user.name, keys: user.keys, access: user.access ?? {} })) });
}

describe('the users file is reloaded without a restart', () => {
  let server: TestServer;
  let keysDir: string;
  const scratch: string[] = [];
  const keys: Record<'alice' | 'erin' | 'frank', ClientKey> = {} as never;
  let alice: UserSpec;
  let erin: UserSpec;

  /** Rewrites users.yml and waits for the server's verdict on it. */
  async function rewriteUsers(text: string, verdict: string): Promise<void> {
    const mark = server.mark();
    replaceAtomically(server.usersFile, text);
    await server.waitForLogSince(mark, (line) => line.msg === verdict, 5_000);
  }

  before(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'git-sshd-keys-'));
    for (const name of ['alice', 'erin', 'frank'] as const) {
      mkdirSync(join(keysDir, name));
      keys[name] = makeKey('ed25519', join(keysDir, name));
    }
    alice = { name: 'alice', keys: [keys.alice.publicLine], access: { '*': 'admin' } };
    erin = { name: 'erin', keys: [keys.erin.publicLine], access: { 'erin/*': 'admin' } };
    server = await TestServer.start({ users: [alice] });
  });

  after(async () => {
    await server?.dispose();
    for (const dir of [keysDir, ...scratch]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a key that is not in the file yet is refused', async () => {
    const result = await ssh(keys.erin, server.port);
    assert.equal(result.code, 255);
    assert.match(result.stderr, /Permission denied/);
  });

  test('a user added to the file can log in once the server has reloaded it', async () => {
    await rewriteUsers(usersYaml([alice, erin]), 'reloaded users file');

    const result = await ssh(keys.erin, server.port);

    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'Welcome to git-sshd, @erin!');
  });

  test('a malformed file is logged and the last good one stays in force', async () => {
    const mark = server.mark();
    await rewriteUsers('users:\n  - name: erin\n    keys: [unclosed\n', 'users file is invalid; keeping the last good one');
    const invalid = server.logs.slice(mark).find((line) => line.msg === 'users file is invalid; keeping the last good one');
    assert.equal(invalid?.level, 'error');
    assert.match(String(invalid?.error), /users\.yml/);

    const result = await ssh(keys.erin, server.port);

    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'Welcome to git-sshd, @erin!');
  });

  test('a user removed from the file is refused from then on', async () => {
    await rewriteUsers(usersYaml([alice]), 'reloaded users file');

    const refused = await ssh(keys.erin, server.port);
    assert.equal(refused.code, 255);
    assert.match(refused.stderr, /Permission denied/);
    const stillIn = await ssh(keys.alice, server.port);
    assert.equal(stillIn.stdout.trim(), 'Welcome to git-sshd, @alice!');
  });

  test('add-user adds a user to the running server, who can then create a repository by pushing', async () => {
    const mark = server.mark();
    const added = await run(process.execPath, [
      join(ROOT, 'dist', 'cli', 'addUser.js'),
      '--name', 'frank',
      '--key', `${keys.frank.path}.pub`,
      '--config', server.configFile,
    ], { cwd: server.dir, timeoutMs: 20_000 });
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /added user frank/);
    await server.waitForLogSince(mark, (line) => line.msg === 'reloaded users file' && line.users === 2, 5_000);

    const work = makeWorkTree({ 'README.md': 'frank was here\n' });
    scratch.push(work);
    const push = await git(keys.frank, server.port, ['push', '-q', url(server.port, 'frank/first'), 'main'], work);

    assert.equal(push.code, 0, push.stderr);
    const bare = join(server.reposDir, 'frank', 'first.git');
    assert.ok(existsSync(bare));
    assert.equal(gitLocal(['rev-parse', 'refs/heads/main'], bare), gitLocal(['rev-parse', 'HEAD'], work));
    const welcome = await ssh(keys.frank, server.port);
    assert.equal(welcome.stdout.trim(), 'Welcome to git-sshd, @frank!');
  });
});
