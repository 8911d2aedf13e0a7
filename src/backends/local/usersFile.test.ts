import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERR_USERS_FILE, GitSshdError } from '../../errors.js';
import { accessLevel } from './access.js';
import { parseUsersFile } from './usersFile.js';

const FILE = '/etc/git-sshd/users.yml';

interface Key {
  readonly publicLine: string;
  readonly privateText: string;
  readonly fingerprint: string;
}

const dir = mkdtempSync(join(tmpdir(), 'git-sshd-users-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function makeKey(type: 'ed25519' | 'rsa', name: string): Key {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', `${name}@test`, '-f', path]);
  const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${path}.pub`], { encoding: 'utf8' }).split(' ')[1] ?? '';
  return { publicLine: readFileSync(`${path}.pub`, 'utf8').trim(), privateText: readFileSync(path, 'utf8'), fingerprint };
}

const blobOf = (line: string): string => line.split(' ')[1] ?? '';

/** Asserts an ERR_USERS_FILE naming the file and containing every fragment. */
function assertUsersError(text: string, ...fragments: string[]): string {
  let message = '';
  assert.throws(
    () => parseUsersFile(FILE, text),
    (err: unknown) => {
      assert.ok(err instanceof GitSshdError, String(err));
      assert.equal(err.code, ERR_USERS_FILE);
      for (const fragment of [FILE, ...fragments]) {
        assert.ok(err.message.includes(fragment), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(fragment)}`);
      }
      message = err.message;
      return true;
    },
  );
  return message;
}

const usersYaml = (users: unknown[]): string => JSON.stringify({ users }, null, 2);

describe('parseUsersFile', () => {
  let ed25519: Key;
  let rsa: Key;
  before(() => {
    ed25519 = makeKey('ed25519', 'alice');
    rsa = makeKey('rsa', 'bob');
  });

  test('a valid file indexes users by name and keys by their blob', () => {
    const text = `users:
  - name: alice
    keys: ["${ed25519.publicLine}"]
    access: { "*": admin }
  - name: bob
    keys:
      - ${rsa.publicLine}
    access: { "team/*": write, "docs": read }
`;
    const index = parseUsersFile(FILE, text);
    assert.deepEqual([...index.users.keys()], ['alice', 'bob']);
    assert.equal(index.keys.size, 2);

    const alice = index.keys.get(blobOf(ed25519.publicLine));
    assert.equal(alice?.user.name, 'alice');
    assert.equal(alice?.key.type, 'ssh-ed25519');
    assert.equal(alice?.fingerprint, ed25519.fingerprint);

    const bob = index.keys.get(blobOf(rsa.publicLine));
    assert.equal(bob?.user.name, 'bob');
    assert.equal(bob?.key.type, 'ssh-rsa');
    assert.equal(bob?.fingerprint, rsa.fingerprint);

    const grants = index.users.get('bob')?.grants ?? [];
    assert.equal(accessLevel(grants, 'team/app'), 'write');
    assert.equal(accessLevel(grants, 'docs'), 'read');
    assert.equal(accessLevel(grants, 'other'), undefined);
  });

  test('an empty file, a comment-only file and "users: []" have no users', () => {
    for (const text of ['', '# nobody yet\n', 'users: []\n', 'users:\n']) {
      const index = parseUsersFile(FILE, text);
      assert.equal(index.users.size, 0, JSON.stringify(text));
      assert.equal(index.keys.size, 0);
    }
  });

  test('a user without keys or access is allowed', () => {
    const index = parseUsersFile(FILE, usersYaml([{ name: 'carol' }]));
    assert.equal(index.users.get('carol')?.grants.length, 0);
  });

  test('bad YAML is refused with its line', () => {
    assertUsersError('users:\n  - name: alice\n    keys: [unclosed\n', 'not valid YAML', 'line');
  });

  test('an unknown top-level key is refused', () => {
    assertUsersError('groups: []\n', 'groups', 'unknown key');
  });

  test('a top level that is not a mapping is refused', () => {
    assertUsersError('- name: alice\n', 'top level');
  });

  test('an unknown user field is refused with the allowed fields', () => {
    assertUsersError(usersYaml([{ name: 'alice', email: 'a@example.com' }]), 'users[0].email', 'unknown field', 'name, keys, access');
  });

  test('a bad user name is refused', () => {
    for (const name of ['-alice', 'al ice', '', 'a'.repeat(65), 42]) {
      assertUsersError(usersYaml([{ name }]), 'users[0].name');
    }
  });

  test('a user listed twice is refused', () => {
    assertUsersError(usersYaml([{ name: 'alice' }, { name: 'alice' }]), 'users[1].name', '"alice" is listed twice');
  });

  test('an unknown access level is refused and shown', () => {
    assertUsersError(usersYaml([{ name: 'alice', access: { '*': 'superuser' } }]), 'users[0].access', 'read, write, admin', 'superuser');
  });

  test('a key line that is not a public key is refused', () => {
    assertUsersError(usersYaml([{ name: 'alice', keys: ['ssh-ed25519 not-base64 x'] }]), 'users[0].keys[0]', 'alice', 'not a valid OpenSSH public key');
    assertUsersError(usersYaml([{ name: 'alice', keys: [''] }]), 'users[0].keys[0]');
    assertUsersError(usersYaml([{ name: 'alice', keys: 'ssh-ed25519 AAAA' }]), 'users[0].keys', 'list');
  });

  test('a private key pasted in place of a public key is refused without echoing it', () => {
    const message = assertUsersError(usersYaml([{ name: 'alice', keys: [ed25519.privateText] }]), 'users[0].keys[0]', 'PRIVATE key');
    const secretLine = ed25519.privateText.split('\n')[1] ?? '';
    assert.ok(secretLine.length > 0 && !message.includes(secretLine) && !message.includes('BEGIN'));
  });

  test('the same key on two users is refused, naming the first owner', () => {
    const withOtherComment = `${ed25519.publicLine.split(' ').slice(0, 2).join(' ')} other-comment`;
    assertUsersError(
      usersYaml([
        { name: 'alice', keys: [ed25519.publicLine] },
        { name: 'bob', keys: [withOtherComment] },
      ]),
      'users[1].keys[0]',
      'already listed for user "alice"',
    );
  });
});
