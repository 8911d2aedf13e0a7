import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import ssh2, { type ParsedKey } from 'ssh2';
import { toSsh2Readable } from './pkcs8.js';

const { utils } = ssh2;

/** A PKCS#8 private key ("BEGIN PRIVATE KEY") as `openssl genpkey` writes it. */
const genpkey = (...args: string[]): Buffer =>
  execFileSync('openssl', ['genpkey', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });

function parseOne(data: Buffer | string): ParsedKey {
  const parsed = utils.parseKey(data);
  assert.ok(!(parsed instanceof Error), `ssh2 cannot parse the key: ${String(parsed)}`);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  assert.ok(key);
  return key;
}

const spkiDer = (pem: Buffer | string): Buffer => createPublicKey(pem).export({ type: 'spki', format: 'der' });

const CASES = [
  { name: 'Ed25519', args: ['-algorithm', 'ed25519'], type: 'ssh-ed25519' },
  { name: 'RSA', args: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], type: 'ssh-rsa' },
  { name: 'ECDSA P-256', args: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], type: 'ecdsa-sha2-nistp256' },
] as const;

describe('toSsh2Readable', () => {
  for (const { name, args, type } of CASES) {
    test(`an openssl PKCS#8 ${name} key becomes a private key ssh2 parses, signs with and verifies`, () => {
      const pkcs8 = genpkey(...args);
      assert.match(pkcs8.toString(), /-----BEGIN PRIVATE KEY-----/);

      const key = parseOne(toSsh2Readable(pkcs8));
      assert.equal(key.type, type);
      assert.equal(key.isPrivateKey(), true);
      assert.deepEqual(spkiDer(key.getPublicPEM()), spkiDer(pkcs8), 'the same key pair as the original');

      const data = Buffer.from('session identifier to sign');
      const signature = key.sign(data);
      assert.ok(!(signature instanceof Error), String(signature));
      const publicOnly = parseOne(key.getPublicSSH());
      assert.equal(publicOnly.isPrivateKey(), false);
      assert.equal(publicOnly.verify(data, signature), true);
      assert.equal(publicOnly.verify(Buffer.from('something else'), signature), false);
    });
  }

  test('a key that is not PKCS#8 is returned untouched', () => {
    const openssh = Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
    assert.equal(toSsh2Readable(openssh), openssh);
    const garbage = Buffer.from('not a key at all');
    assert.equal(toSsh2Readable(garbage), garbage);
  });

  test('a PKCS#8 key of a type SSH cannot use is refused by name', () => {
    assert.throws(() => toSsh2Readable(genpkey('-algorithm', 'ed448')), /unsupported PKCS#8 key type ed448/);
  });
});
