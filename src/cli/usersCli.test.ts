import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { makeKey, temporaryDir, type ClientKey } from '../../test/helpers/client.js';
import { parseUsersFile } from '../backends/local/usersFile.js';
import { runUsersCli } from './usersCli.js';

interface Outcome {
  readonly status: number;
  readonly out: string;
  readonly err: string;
}

/** The CLI as the user runs it, with the environment it would have: a data dir of its own. */
function cli(argv: string[], env: Record<string, string | undefined> = {}, stdin = ''): Outcome {
  let out = '';
  let err = '';
  const status = runUsersCli({ argv, env, cwd: '/', readStdin: () => stdin, out: (text) => (out += text), err: (text) => (err += text) });
  return { status, out, err };
}

function dataDir(): { env: Record<string, string>; usersFile: string } {
  const dir = temporaryDir('git-sshd-cli-');
  return { env: { GIT_SSHD_DATA_DIR: dir }, usersFile: join(dir, 'users.yml') };
}

const users = (file: string) => parseUsersFile(file, readFileSync(file, 'utf8'));

describe('the users CLI edits the users file the server reads', () => {
  const alice: ClientKey = makeKey('ed25519');
  const laptop: ClientKey = makeKey('ecdsa');
  const bob: ClientKey = makeKey('rsa');

  test('add creates the file with an admin user when none exists, from the key text', () => {
    const { env, usersFile } = dataDir();
    const added = cli(['add', '--name', 'alice', '--key', alice.publicLine], env);
    assert.equal(added.status, 0, added.err);
    assert.match(added.out, /^added user alice with 1 key \(SHA256:/);
    const index = users(usersFile);
    assert.deepEqual([...index.users.keys()], ['alice']);
    assert.deepEqual(index.users.get('alice')?.grants.map((grant) => [grant.pattern, grant.level]), [['*', 'admin']]);
    assert.equal(statSync(usersFile).mode & 0o777, 0o600);
  });

  test('add to an existing user adds the key and keeps the others; --access replaces the grants', () => {
    const { env, usersFile } = dataDir();
    assert.equal(cli(['add', '--name', 'alice', '--key', `${alice.path}.pub`], env).status, 0);
    const second = cli(['add', '--name', 'alice', '--key', '-', '--access', 'team/*=write', '--access', 'docs=read'], env, laptop.publicLine);
    assert.equal(second.status, 0, second.err);
    assert.match(second.out, /added 1 key to existing user alice \(now 2 keys; access set to team\/\*=write docs=read\)/);
    const index = users(usersFile);
    assert.equal(index.keys.size, 2);
    assert.deepEqual(index.users.get('alice')?.grants.map((grant) => `${grant.pattern}=${grant.level}`), ['team/*=write', 'docs=read']);
  });

  test('the operator\'s comments survive an edit', () => {
    const { env, usersFile } = dataDir();
    mkdirSync(join(usersFile, '..'), { recursive: true });
    writeFileSync(usersFile, '# managed by hand: ask Jo before removing anyone\nusers: []\n');
    assert.equal(cli(['add', '--name', 'alice', '--key', alice.publicLine], env).status, 0);
    assert.match(readFileSync(usersFile, 'utf8'), /^# managed by hand: ask Jo/);
  });

  test('a key that another user (or the same one) already has is refused, and nothing changes', () => {
    const { env, usersFile } = dataDir();
    assert.equal(cli(['add', '--name', 'alice', '--key', alice.publicLine], env).status, 0);
    const before = readFileSync(usersFile, 'utf8');
    const other = cli(['add', '--name', 'bob', '--key', alice.publicLine], env);
    assert.equal(other.status, 1);
    assert.match(other.err, /already belongs to user alice: a key identifies one user/);
    const same = cli(['add', '--name', 'alice', '--key', `${alice.publicLine} another comment`], env);
    assert.equal(same.status, 1);
    assert.match(same.err, /user alice already has this key/);
    assert.equal(readFileSync(usersFile, 'utf8'), before);
  });

  test('bad names, levels and keys are refused with what is allowed', () => {
    const { env } = dataDir();
    assert.match(cli(['add', '--name', 'a b', '--key', alice.publicLine], env).err, /a user name is 1-64 letters/);
    assert.match(cli(['add', '--name', 'a', '--key', alice.publicLine, '--access', 'x=owner'], env).err, /LEVEL one of read, write, admin/);
    assert.match(cli(['add', '--name', 'a', '--key', 'ssh-ed25519 AAAAx'], env).err, /not a valid OpenSSH public key/);
    assert.match(cli(['add', '--name', 'a', '--key', alice.path], env).err, /PRIVATE key/);
    const usage = cli(['add', '--nam', 'a'], env);
    assert.equal(usage.status, 2);
    assert.match(usage.err, /usage:/);
  });

  test('remove takes a whole user, or one key from whoever has it', () => {
    const { env, usersFile } = dataDir();
    cli(['add', '--name', 'alice', '--key', alice.publicLine, '--key', laptop.publicLine], env);
    cli(['add', '--name', 'bob', '--key', bob.publicLine], env);
    const oneKey = cli(['remove', '--key', laptop.publicLine], env);
    assert.equal(oneKey.status, 0, oneKey.err);
    assert.match(oneKey.out, /removed key SHA256:\S+ from user alice/);
    assert.equal(users(usersFile).keys.size, 2);
    const wrongOwner = cli(['remove', '--name', 'bob', '--key', alice.publicLine], env);
    assert.match(wrongOwner.err, /belongs to user alice, not bob/);
    const whole = cli(['remove', '--name', 'bob'], env);
    assert.match(whole.out, /removed user bob and 1 key/);
    assert.deepEqual([...users(usersFile).users.keys()], ['alice']);
    const unknown = cli(['remove', '--name', 'carol'], env);
    assert.equal(unknown.status, 1);
    assert.match(unknown.err, /no user carol \(users: alice\)/);
  });

  test('list shows each user with access, and each key with type, fingerprint and comment', () => {
    const { env, usersFile } = dataDir();
    assert.match(cli(['list'], env).out, /no users file yet/);
    cli(['add', '--name', 'alice', '--key', alice.publicLine, '--access', 'team/*=write'], env);
    const [, fingerprint] = users(usersFile).keys.values().next().value?.fingerprint.match(/(SHA256:\S+)/) ?? [];
    const listed = cli(['list'], env);
    assert.equal(listed.status, 0);
    assert.equal(listed.out, `${usersFile}:\nalice  1 key  team/*=write\n  ssh-ed25519  ${fingerprint}  ed25519@test\n`);
  });

  test('the file named by the server\'s config file is the one edited', () => {
    const dir = temporaryDir('git-sshd-cli-');
    const config = join(dir, 'config.yml');
    writeFileSync(config, `local:\n  data_dir: ${join(dir, 'data')}\n  users_file: ${join(dir, 'people.yml')}\n`);
    const added = cli(['add', '--config', config, '--name', 'alice', '--key', alice.publicLine]);
    assert.equal(added.status, 0, added.err);
    assert.ok(users(join(dir, 'people.yml')).users.has('alice'));
    const byEnv = cli(['list'], { GIT_SSHD_CONFIG: config });
    assert.match(byEnv.out, /^.*people\.yml:\nalice /);
  });

  test('a users file mounted from a ConfigMap is refused with the Helm way to change it', () => {
    const mount = temporaryDir('git-sshd-configmap-');
    // The kubelet's layout: a timestamped directory, `..data` pointing at it, the file a link through `..data`.
    mkdirSync(join(mount, '..2026_01_01_00_00_00.1'));
    writeFileSync(join(mount, '..2026_01_01_00_00_00.1', 'users.yml'), 'users: []\n');
    symlinkSync('..2026_01_01_00_00_00.1', join(mount, '..data'));
    symlinkSync(join('..data', 'users.yml'), join(mount, 'users.yml'));
    const refused = cli(['add', '--name', 'alice', '--key', alice.publicLine], { GIT_SSHD_USERS_FILE: join(mount, 'users.yml') });
    assert.equal(refused.status, 1);
    assert.match(refused.err, /comes from a Kubernetes ConfigMap \(the Helm value backend\.local\.users\).*helm upgrade/);
    assert.equal(readFileSync(join(mount, 'users.yml'), 'utf8'), 'users: []\n');
    // Listing it is fine: it is what the server reads.
    assert.equal(cli(['list'], { GIT_SSHD_USERS_FILE: join(mount, 'users.yml') }).status, 0);
  });

  test('with the GitLab backend there is no users file to edit', () => {
    const dir = temporaryDir('git-sshd-cli-');
    const refused = cli(['add', '--name', 'alice', '--key', alice.publicLine], { GIT_SSHD_BACKEND: 'gitlab', GITLAB_SHELL_SECRET: 's', GIT_SSHD_DATA_DIR: dir });
    assert.equal(refused.status, 1);
    assert.match(refused.err, /backend gitlab.*add SSH keys in GitLab/);
  });
});
