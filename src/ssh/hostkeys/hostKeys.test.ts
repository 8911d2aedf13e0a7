import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger, type LogLine } from '../../../test/helpers/memoryLogger.js';
import { ERR_HOST_KEYS, isCode } from '../../errors.js';
import { loadHostKeys } from './hostKeys.js';


const base = mkdtempSync(join(tmpdir(), 'git-sshd-hostkeys-'));
after(() => rmSync(base, { recursive: true, force: true }));

/** A key file as ssh-keygen writes it; returns its path and `ssh-keygen -l` fingerprint. */
function sshKeygen(name: string, args: string[], passphrase = ''): { path: string; fingerprint: string } {
  const path = join(base, name);
  execFileSync('ssh-keygen', ['-q', ...args, '-N', passphrase, '-C', name, '-f', path]);
  return { path, fingerprint: fingerprintOf(`${path}.pub`) };
}

const fingerprintOf = (pubFile: string): string =>
  execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubFile], { encoding: 'utf8' }).split(' ')[1] ?? '';

const errorsFor = (lines: LogLine[], path: string): LogLine[] => lines.filter((line) => line.level === 50 && line.path === path);

describe('loadHostKeys with the embedded default', () => {
  const dataDir = join(base, 'data');

  test('generates ed25519, ecdsa and rsa keys, private 0600 with .pub files', () => {
    const { log } = memoryLogger();
    const keys = loadHostKeys({ files: [], dataDir, log });
    assert.deepEqual(keys.map((key) => key.type).sort(), ['ecdsa-sha2-nistp256', 'ssh-ed25519', 'ssh-rsa']);
    for (const key of keys) {
      assert.equal(statSync(key.path).mode & 0o777, 0o600, key.path);
      assert.ok(existsSync(`${key.path}.pub`), `${key.path}.pub`);
      assert.equal(fingerprintOf(`${key.path}.pub`), key.fingerprint, 'the .pub file belongs to the key');
    }
  });

  test('a second start reuses the generated keys unchanged', () => {
    const { log } = memoryLogger();
    const first = loadHostKeys({ files: [], dataDir, log });
    const mtimes = first.map((key) => statSync(key.path).mtimeMs);
    const second = loadHostKeys({ files: [], dataDir, log });
    assert.deepEqual(
      second.map((key) => key.fingerprint),
      first.map((key) => key.fingerprint),
    );
    assert.deepEqual(
      second.map((key) => statSync(key.path).mtimeMs),
      mtimes,
    );
  });
});

describe('loadHostKeys with files the operator listed', () => {
  let ed25519: { path: string; fingerprint: string };
  let pemRsa: { path: string; fingerprint: string };
  let pemEcdsa: { path: string; fingerprint: string };
  before(() => {
    ed25519 = sshKeygen('openssh_ed25519', ['-t', 'ed25519']);
    pemRsa = sshKeygen('pem_rsa', ['-t', 'rsa', '-b', '2048', '-m', 'PEM']);
    pemEcdsa = sshKeygen('pem_ecdsa', ['-t', 'ecdsa', '-b', '256', '-m', 'PEM']);
  });

  test('OpenSSH-format and PEM keys load with ssh-keygen fingerprints', () => {
    const { log } = memoryLogger();
    const keys = loadHostKeys({ files: [ed25519.path, pemRsa.path, pemEcdsa.path], dataDir: join(base, 'unused'), log });
    assert.deepEqual(
      keys.map((key) => [key.path, key.type, key.fingerprint]),
      [
        [ed25519.path, 'ssh-ed25519', ed25519.fingerprint],
        [pemRsa.path, 'ssh-rsa', pemRsa.fingerprint],
        [pemEcdsa.path, 'ecdsa-sha2-nistp256', pemEcdsa.fingerprint],
      ],
    );
    assert.equal(existsSync(join(base, 'unused')), false, 'listed keys never make the data directory');
  });

  test('a PKCS#8 key written by openssl loads', () => {
    const path = join(base, 'pkcs8_ed25519');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', path]);
    chmodSync(path, 0o600);
    const { log } = memoryLogger();
    const [key] = loadHostKeys({ files: [path], dataDir: base, log });
    assert.equal(key?.type, 'ssh-ed25519');
  });

  test('missing, unreadable and garbage files are skipped and logged', () => {
    const missing = join(base, 'missing_key');
    const unreadable = join(base, 'a_directory');
    mkdirSync(unreadable);
    const garbage = join(base, 'garbage_key');
    writeFileSync(garbage, 'this is not a key\n', { mode: 0o600 });
    const { log, lines } = memoryLogger();
    const keys = loadHostKeys({ files: [missing, unreadable, garbage, ed25519.path], dataDir: base, log });
    assert.deepEqual(
      keys.map((key) => key.path),
      [ed25519.path],
    );
    assert.equal(errorsFor(lines, missing)[0]?.reason, 'ENOENT');
    assert.equal(errorsFor(lines, unreadable)[0]?.reason, 'EISDIR');
    assert.equal(errorsFor(lines, garbage).length, 1);
  });

  test('an encrypted key is skipped and logged', () => {
    const encrypted = sshKeygen('encrypted_ed25519', ['-t', 'ed25519'], 'correct horse');
    const { log, lines } = memoryLogger();
    const keys = loadHostKeys({ files: [encrypted.path, pemRsa.path], dataDir: base, log });
    assert.deepEqual(
      keys.map((key) => key.path),
      [pemRsa.path],
    );
    assert.equal(errorsFor(lines, encrypted.path).length, 1);
  });

  test('a second key of the same type is skipped with a warning', () => {
    const other = sshKeygen('other_ed25519', ['-t', 'ed25519']);
    const { log, lines } = memoryLogger();
    const keys = loadHostKeys({ files: [ed25519.path, other.path], dataDir: base, log });
    assert.deepEqual(
      keys.map((key) => key.path),
      [ed25519.path],
    );
    assert.ok(lines.some((line) => line.level === 40 && line.path === other.path));
  });

  test('a key readable by others loads with a warning', () => {
    const exposed = sshKeygen('exposed_ed25519', ['-t', 'ed25519']);
    chmodSync(exposed.path, 0o644);
    const { log, lines } = memoryLogger();
    assert.equal(loadHostKeys({ files: [exposed.path], dataDir: base, log }).length, 1);
    assert.ok(lines.some((line) => line.level === 40 && line.path === exposed.path && line.mode === '644'));
  });

  test('no loadable key at all is an ERR_HOST_KEYS error', () => {
    const { log } = memoryLogger();
    assert.throws(
      () => loadHostKeys({ files: [join(base, 'nope_1'), join(base, 'nope_2')], dataDir: base, log }),
      (err: unknown) => isCode(err, ERR_HOST_KEYS) && err.message.includes('nope_1') && err.message.includes('nope_2'),
    );
  });

  test('key material never reaches the log, not even from a damaged key', () => {
    const damaged = join(base, 'damaged_key');
    const body = readFileSync(ed25519.path, 'utf8').split('\n');
    writeFileSync(damaged, [...body.slice(0, 3), ...body.slice(-2)].join('\n'), { mode: 0o600 });
    const { log, lines } = memoryLogger();
    loadHostKeys({ files: [ed25519.path, damaged], dataDir: base, log });
    assert.equal(errorsFor(lines, damaged).length, 1);
    const text = JSON.stringify(lines);
    for (const line of body.filter((line) => line.length > 20 && !line.startsWith('-----'))) {
      assert.ok(!text.includes(line), 'a line of the key was logged');
    }
  });
});
