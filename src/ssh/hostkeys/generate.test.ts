import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import ssh2, { type ParsedKey } from 'ssh2';
import { generateUsableKeyPair, type KeyPairGenerator } from './generate.js';

const { utils } = ssh2;

function parsed(text: string): ParsedKey {
  const key = utils.parseKey(text);
  if (key instanceof Error) throw key;
  return (Array.isArray(key) ? key[0] : key) as ParsedKey;
}

describe('generateUsableKeyPair', () => {
  // ssh2 writes an unreadable ed25519 pair about once in 256 (a public key starting with
  // 0x00): 2,000 pairs miss that with odds of 4 in 10,000, and take a few seconds.
  test('2,000 ed25519 pairs all parse, and each public key is its private key\'s', () => {
    for (let i = 0; i < 2000; i++) {
      const pair = generateUsableKeyPair('ed25519');
      const priv = parsed(pair.private);
      assert.equal(priv.type, 'ssh-ed25519');
      assert.ok(priv.isPrivateKey());
      assert.deepEqual(parsed(pair.public).getPublicSSH(), priv.getPublicSSH(), `pair ${i}`);
      assert.equal(priv.getPublicSSH().readUInt32BE(4 + 11), 32, 'a 32-byte ed25519 public key');
    }
  });

  test('an unreadable pair from the generator is thrown away and another drawn', () => {
    const good = utils.generateKeyPairSync('ecdsa', { bits: 256 });
    const pairs = [{ private: 'not a key', public: good.public }, { private: good.private, public: 'ssh-ed25519 AAAA' }, good];
    const calls: string[] = [];
    const generator: KeyPairGenerator = (type) => {
      calls.push(type);
      return pairs.shift()!;
    };
    assert.equal(generateUsableKeyPair('ecdsa', { bits: 256 }, generator), good);
    assert.deepEqual(calls, ['ecdsa', 'ecdsa', 'ecdsa']);
  });

  test('a generator that never yields a usable pair is an error after five attempts, not a loop', () => {
    let calls = 0;
    const broken: KeyPairGenerator = () => {
      calls++;
      return { private: 'garbage', public: 'garbage' };
    };
    assert.throws(() => generateUsableKeyPair('ed25519', {}, broken), /could not generate a usable ed25519 key in 5 attempts/);
    assert.equal(calls, 5);
  });
});
