import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { makeKey } from '../../test/helpers/client.js';
import { CliError } from './cliError.js';
import { parsePublicKeys, readKeyInput } from './keyInput.js';

const noStdin = (): string => assert.fail('standard input was read');
const sshKeygenFingerprint = (path: string): string =>
  execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', path], { encoding: 'utf8' }).split(' ')[1] ?? '';

describe('--key takes a file, the key text or standard input', () => {
  const key = makeKey('ed25519');

  test('a path is read as a file', () => {
    assert.equal(readKeyInput(`${key.path}.pub`, noStdin).text.trim(), key.publicLine);
  });

  test('the key text itself, as --key "$(cat id.pub)" passes it, is taken as it is', () => {
    assert.deepEqual(readKeyInput(key.publicLine, noStdin), { text: key.publicLine, origin: '--key' });
  });

  test('- reads standard input', () => {
    assert.equal(readKeyInput('-', () => `${key.publicLine}\n`).text, `${key.publicLine}\n`);
  });

  test('a missing file says what --key accepts instead of ENOENT', () => {
    assert.throws(() => readKeyInput('/nonexistent/id.pub', noStdin), (err: unknown) => {
      assert.ok(err instanceof CliError);
      assert.match(err.message, /cannot read --key \/nonexistent\/id\.pub: no such file/);
      assert.match(err.message, /the key itself/);
      return true;
    });
  });
});

describe('public keys are checked before anything is written', () => {
  test('each key gets the SHA256 fingerprint ssh-keygen prints, and keeps its comment', () => {
    for (const type of ['ed25519', 'ecdsa', 'rsa'] as const) {
      const key = makeKey(type);
      const [parsed] = parsePublicKeys(`${key.publicLine}\n`, 'test');
      assert.equal(parsed?.fingerprint, sshKeygenFingerprint(`${key.path}.pub`));
      assert.equal(parsed?.line, key.publicLine);
    }
  });

  test('several lines are several keys; blank lines and comments are skipped', () => {
    const one = makeKey('ed25519');
    const two = makeKey('ecdsa');
    assert.equal(parsePublicKeys(`# mine\n${one.publicLine}\n\n${two.publicLine}\n`, 'test').length, 2);
  });

  test('a private key is refused, and says which file to pass instead', () => {
    const key = makeKey('ed25519');
    assert.throws(() => parsePublicKeys(readFileSync(key.path, 'utf8'), key.path), /PRIVATE key; pass the public one/);
  });

  test('garbage and an empty input are refused with what a key looks like', () => {
    assert.throws(() => parsePublicKeys('ssh-ed25519 AAAAnotakey me', 'x'), /not a valid OpenSSH public key.*ssh-ed25519 AAAA/);
    assert.throws(() => parsePublicKeys('\n# nothing\n', 'x'), /x: no public key in it/);
  });
});
