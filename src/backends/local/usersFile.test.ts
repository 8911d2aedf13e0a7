import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERR_USERS_FILE, GitSshdError } from '../../errors.js';
import { accessLevel } from './access.js';
import { UsersCompiler } from './usersCompiler.js';
import { applyUsersDiff, EMPTY_INDEX, parseUsersFile } from './usersFile.js';

const FILE = '/etc/git-sshd/users.yml';

interface Key {
  readonly publicLine: string;
  readonly privateText: string;
  readonly fingerprint: string;
}

const dir = mkdtempSync(join(tmpdir(), 'git-sshd-users-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function makeKey(type: 'ed25519' | 'rsa' | 'dsa', name: string, bits = 2048): Key {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', String(bits)] : []), '-N', '', '-C', `${name}@test`, '-f', path]);
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
    assert.equal(alice?.type, 'ssh-ed25519');
    assert.equal(alice?.fingerprint, ed25519.fingerprint);

    const bob = index.keys.get(blobOf(rsa.publicLine));
    assert.equal(bob?.user.name, 'bob');
    assert.equal(bob?.type, 'ssh-rsa');
    assert.equal(bob?.fingerprint, rsa.fingerprint);

    const grants = index.users.get('bob')?.grants ?? [];
    assert.equal(accessLevel(grants, 'team/app'), 'write');
    assert.equal(accessLevel(grants, 'docs'), 'read');
    assert.equal(accessLevel(grants, 'other'), undefined);
  });

  test('"users: []" and "users:" have no users', () => {
    for (const text of ['users: []\n', 'users:\n', '# nobody yet\nusers: []\n']) {
      const index = parseUsersFile(FILE, text);
      assert.equal(index.users.size, 0, JSON.stringify(text));
      assert.equal(index.keys.size, 0);
    }
  });

  test('an empty or comment-only file is refused: it is what a half-written file looks like', () => {
    for (const text of ['', '\n', '# nobody yet\n']) assertUsersError(text, 'empty', 'users: []');
  });

  test('a user without keys or access is allowed', () => {
    const index = parseUsersFile(FILE, usersYaml([{ name: 'carol' }]));
    assert.equal(index.users.get('carol')?.grants.length, 0);
  });

  test('bad YAML is refused with its line', () => {
    assertUsersError('users:\n  - name: alice\n    keys: [unclosed\n', 'not valid YAML', 'line');
    assertUsersError('users:\n  - name: alice\n    name: bob\n', 'not valid YAML', 'line 3');
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

  test('weak keys are refused at load, each named by its entry, and cannot log in; the rest of the file is taken', () => {
    const small = makeKey('rsa', 'small', 1024);
    const dsa = makeKey('dsa', 'old');
    const index = parseUsersFile(
      FILE,
      usersYaml([
        { name: 'alice', keys: [ed25519.publicLine] },
        { name: 'bob', keys: [rsa.publicLine, small.publicLine] },
        { name: 'carol', keys: [dsa.publicLine] },
      ]),
    );
    assert.deepEqual([...index.users.keys()], ['alice', 'bob', 'carol']);
    assert.equal(index.keys.size, 2, 'the 2048-bit RSA and the ed25519 key');
    assert.equal(index.keys.get(blobOf(small.publicLine)), undefined);
    assert.equal(index.keys.get(blobOf(dsa.publicLine)), undefined);
    assert.deepEqual(
      index.refused.map((refusal) => [refusal.where, refusal.fingerprint]),
      [
        ['users[1].keys[1] (user bob)', small.fingerprint],
        ['users[2].keys[0] (user carol)', dsa.fingerprint],
      ],
    );
    assert.match(index.refused[0]?.reason ?? '', /RSA key of 1024 bits is below sshd.min_rsa_key_bits \(2048\)/);
    assert.match(index.refused[1]?.reason ?? '', /DSA keys are not accepted/);
    const lenient = parseUsersFile(FILE, usersYaml([{ name: 'bob', keys: [small.publicLine] }]), { allowedAlgorithms: ['rsa-sha2-512'], minRsaKeyBits: 1024 });
    assert.equal(lenient.keys.size, 1);
  });
});

describe('UsersCompiler, incrementally', () => {
  const policy = { allowedAlgorithms: ['ssh-ed25519'], minRsaKeyBits: 2048 };
  const lines = Array.from({ length: 4 }, (_, i) => makeKey('ed25519', `inc${i}`).publicLine);
  const entry = (i: number, level = 'read') => ({ name: `u${i}`, keys: [lines[i]], access: { [`team${i}/*`]: level } });

  test('only the users that changed are handed over, and removed users are named', () => {
    const compiler = new UsersCompiler(FILE, policy);
    const first = compiler.compile(usersYaml([entry(0), entry(1), entry(2)]));
    assert.deepEqual(first.diff.changed.map((user) => user.name), ['u0', 'u1', 'u2']);
    first.commit();
    const second = compiler.compile(`# a comment\n${usersYaml([entry(0), entry(1, 'write'), entry(3)])}`);
    assert.deepEqual(second.diff.changed.map((user) => user.name), ['u1', 'u3']);
    assert.deepEqual(second.diff.removed, ['u2']);
    assert.equal(second.diff.users, 3);
    second.commit();
    assert.deepEqual(compiler.compile(`# only a comment changed\n${usersYaml([entry(0), entry(1, 'write'), entry(3)])}`).diff.changed, []);
  });

  test('applying the differences gives the same index as compiling the file afresh', () => {
    const compiler = new UsersCompiler(FILE, policy);
    let index = applyUsersDiff(EMPTY_INDEX, takeDiff(compiler, usersYaml([entry(0), entry(1), entry(2)])));
    // A key moving from one user to another, a user removed, one changed.
    const moved = [{ name: 'u0', keys: [lines[1]] }, { name: 'u1', keys: [lines[0]], access: { '*': 'admin' } }, entry(3)];
    index = applyUsersDiff(index, takeDiff(compiler, usersYaml(moved)));
    const fresh = parseUsersFile(FILE, usersYaml(moved), policy);
    const view = (idx: typeof index) => ({
      users: [...idx.users.keys()].sort(),
      keys: [...idx.keys.entries()].map(([id, key]) => [id, key.user.name, key.fingerprint]).sort(),
      grants: [...idx.users.values()].map((user) => [user.name, user.grants.map((grant) => `${grant.pattern}=${grant.level}`)]).sort(),
    });
    assert.deepEqual(view(index), view(fresh));
  });

  test('a failed compile is not committed: the next one compares with the last good file', () => {
    const compiler = new UsersCompiler(FILE, policy);
    compiler.compile(usersYaml([entry(0)])).commit();
    assert.throws(() => compiler.compile('users: [unclosed'));
    const uncommitted = compiler.compile(usersYaml([entry(0), entry(1)]));
    assert.deepEqual(uncommitted.diff.changed.map((user) => user.name), ['u1']);
    assert.deepEqual(compiler.compile(usersYaml([entry(0), entry(2)])).diff.changed.map((user) => user.name), ['u2'], 'u1 was never committed');
  });
});

function takeDiff(compiler: UsersCompiler, text: string) {
  const { diff, commit } = compiler.compile(text);
  commit();
  return diff;
}

