import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pino from 'pino';
import ssh2, { type AuthContext, type ParsedKey } from 'ssh2';
import type { AccessBackend, Identity } from '../backends/backend.js';
import { memoryLogger } from '../../test/helpers/memoryLogger.js';
import { PublicKeyAuth } from './auth.js';
import { generateUsableKeyPair } from './hostkeys/generate.js';

const { utils } = ssh2;

function keyPair(): { priv: ParsedKey; blob: Buffer } {
  const generated = generateUsableKeyPair('ed25519');
  const priv = utils.parseKey(generated.private) as ParsedKey;
  return { priv, blob: priv.getPublicSSH() };
}

class CountingBackend implements AccessBackend {
  lookups = 0;
  constructor(private readonly known: Buffer) {}
  async identify(publicKey: Buffer): Promise<Identity | undefined> {
    this.lookups += 1;
    return publicKey.equals(this.known) ? { username: 'alice', keyId: '1', keyFingerprint: 'SHA256:x' } : undefined;
  }
  async welcome(): Promise<string> {
    return '';
  }
  async authorizeGit(): Promise<never> {
    throw new Error('unused');
  }
  async close(): Promise<void> {}
}

interface FakeContext {
  ctx: AuthContext;
  result: () => 'accept' | 'reject' | undefined;
}

function context(fields: Record<string, unknown>): FakeContext {
  let result: 'accept' | 'reject' | undefined;
  const ctx = {
    username: 'git',
    method: 'publickey',
    accept: () => (result = 'accept'),
    reject: () => (result = 'reject'),
    ...fields,
  } as unknown as AuthContext;
  return { ctx, result: () => result };
}

function signed(key: ParsedKey, blob: Buffer, data: Buffer, extra: Record<string, unknown> = {}): FakeContext {
  return context({ key: { algo: key.type, data: blob }, blob: data, signature: key.sign(data), ...extra });
}

const log = pino({ level: 'silent' });

/** Read through a function: an earlier `assert.equal(auth.identity, undefined)` narrows the property. */
const currentUser = (auth: PublicKeyAuth): string | undefined => auth.identity?.username;

describe('public key authentication', () => {
  test('a query and then a signature for the same key cost one backend lookup', async () => {
    const { priv, blob } = keyPair();
    const backend = new CountingBackend(blob);
    const auth = new PublicKeyAuth({ user: 'git', backend, log, context: { signal: new AbortController().signal, correlationId: 'test', clientIp: '127.0.0.1' } });
    const query = context({ key: { algo: priv.type, data: blob } });
    assert.equal(await auth.handle(query.ctx), 'key_acceptable');
    assert.equal(query.result(), 'accept');
    assert.equal(auth.identity, undefined, 'a query alone must never authenticate');
    const data = Buffer.from('session-bound data');
    const attempt = signed(priv, blob, data);
    assert.equal(await auth.handle(attempt.ctx), 'accepted');
    assert.equal(currentUser(auth), 'alice');
    assert.equal(backend.lookups, 1);
  });

  test('a signature by a different key than the one offered is refused', async () => {
    const { blob } = keyPair();
    const intruder = keyPair();
    const auth = new PublicKeyAuth({ user: 'git', backend: new CountingBackend(blob), log, context: { signal: new AbortController().signal, correlationId: 'test', clientIp: '127.0.0.1' } });
    const data = Buffer.from('data');
    const forged = context({ key: { algo: 'ssh-ed25519', data: blob }, blob: data, signature: intruder.priv.sign(data) });
    assert.equal(await auth.handle(forged.ctx), 'bad_signature');
    assert.equal(forged.result(), 'reject');
    assert.equal(auth.identity, undefined);
  });

  test('a signature over other data than the session’s is refused', async () => {
    const { priv, blob } = keyPair();
    const auth = new PublicKeyAuth({ user: 'git', backend: new CountingBackend(blob), log, context: { signal: new AbortController().signal, correlationId: 'test', clientIp: '127.0.0.1' } });
    const replay = context({ key: { algo: priv.type, data: blob }, blob: Buffer.from('this session'), signature: priv.sign(Buffer.from('another session')) });
    assert.equal(await auth.handle(replay.ctx), 'bad_signature');
  });

  test('a key algorithm that does not match the key is refused', async () => {
    const { priv, blob } = keyPair();
    const auth = new PublicKeyAuth({ user: 'git', backend: new CountingBackend(blob), log, context: { signal: new AbortController().signal, correlationId: 'test', clientIp: '127.0.0.1' } });
    const data = Buffer.from('d');
    assert.equal(await auth.handle(signed(priv, blob, data, { key: { algo: 'ssh-rsa', data: blob }, hashAlgo: 'sha256' }).ctx), 'bad_signature');
  });

  test('another user name, another method, and an unknown key are refused without a lookup', async () => {
    const { priv, blob } = keyPair();
    const backend = new CountingBackend(blob);
    const auth = new PublicKeyAuth({ user: 'git', backend, log, context: { signal: new AbortController().signal, correlationId: 'test', clientIp: '127.0.0.1' } });
    assert.equal(await auth.handle(signed(priv, blob, Buffer.from('d'), { username: 'root' }).ctx), 'wrong_user');
    assert.equal(await auth.handle(context({ method: 'password', password: 'x' }).ctx), 'method_not_allowed');
    assert.equal(backend.lookups, 0);
    const stranger = keyPair();
    assert.equal(await auth.handle(signed(stranger.priv, stranger.blob, Buffer.from('d')).ctx), 'unknown_key');
  });

  test('keys of an algorithm outside sshd.public_key_algorithms are refused before any lookup', async () => {
    const { priv, blob } = keyPair();
    const backend = new CountingBackend(blob);
    const auth = new PublicKeyAuth({ user: 'git', allowedAlgorithms: ['rsa-sha2-256'], backend, log, context: { signal: new AbortController().signal, correlationId: 'test', clientIp: '127.0.0.1' } });
    assert.equal(await auth.handle(signed(priv, blob, Buffer.from('d')).ctx), 'algorithm_not_allowed');
    assert.equal(backend.lookups, 0);
  });

  test('a backend failure is reported, not answered as a refused key (the connection ends it, saying why)', async () => {
    const { priv, blob } = keyPair();
    const backend = new CountingBackend(blob);
    backend.identify = async () => {
      throw new Error('api down');
    };
    const auth = new PublicKeyAuth({ user: 'git', backend, log, context: { signal: new AbortController().signal, correlationId: 'test', clientIp: '127.0.0.1' } });
    const attempt = signed(priv, blob, Buffer.from('d'));
    assert.equal(await auth.handle(attempt.ctx), 'backend_error');
    assert.equal(attempt.result(), undefined);
  });

  describe('the key policy, as a current OpenSSH', () => {
    const auth = (blob: Buffer, extra: Partial<ConstructorParameters<typeof PublicKeyAuth>[0]> = {}) => {
      const counted: Array<Record<string, string>> = [];
      const { log: memLog, lines } = memoryLogger();
      const instance = new PublicKeyAuth({
        user: 'git',
        backend: new CountingBackend(blob),
        log: memLog,
        metrics: { authSignatureAlgorithms: { inc: (labels: Record<string, string>) => counted.push(labels) } } as never,
        context: { signal: new AbortController().signal, correlationId: 'test', clientIp: '127.0.0.1' },
        ...extra,
      });
      return { instance, counted, lines };
    };
    function rsa(bits: number): { priv: ParsedKey; blob: Buffer } {
      const priv = utils.parseKey(utils.generateKeyPairSync('rsa', { bits }).private) as ParsedKey;
      return { priv, blob: priv.getPublicSSH() };
    }
    const signedRsa = (key: { priv: ParsedKey; blob: Buffer }, hashAlgo: 'sha1' | 'sha256' | 'sha512') => {
      const data = Buffer.from('session');
      return context({
        key: { algo: 'ssh-rsa', data: key.blob },
        blob: data,
        signature: key.priv.sign(data, hashAlgo),
        ...(hashAlgo === 'sha1' ? {} : { hashAlgo }),
      });
    };

    test('an ssh-rsa (SHA-1) signature is refused by default, with the reason logged and counted', async () => {
      const key = rsa(2048);
      const { instance, counted, lines } = auth(key.blob);
      assert.equal(await instance.handle(signedRsa(key, 'sha1').ctx), 'algorithm_not_allowed');
      assert.equal(instance.identity, undefined);
      assert.deepEqual(counted, [{ algorithm: 'ssh-rsa', outcome: 'algorithm_not_allowed' }]);
      const refusal = lines.find((line) => line.msg === 'public key refused by policy');
      assert.match(String(refusal?.reason), /ssh-rsa \(RSA with SHA-1\) is not in sshd.public_key_algorithms/);
      assert.match(String(refusal?.key_fingerprint), /^SHA256:/);
    });

    test('the same RSA key signing with SHA-2 logs in, and the algorithm is counted', async () => {
      const key = rsa(2048);
      for (const [hash, algorithm] of [['sha512', 'rsa-sha2-512'], ['sha256', 'rsa-sha2-256']] as const) {
        const { instance, counted } = auth(key.blob);
        assert.equal(await instance.handle(signedRsa(key, hash).ctx), 'accepted');
        assert.deepEqual(counted, [{ algorithm, outcome: 'accepted' }]);
      }
    });

    test('RSA keys below 2048 bits are refused by default, 1024 and 512 alike, naming the size', async () => {
      for (const bits of [512, 1024]) {
        const key = rsa(bits);
        const { instance, counted, lines } = auth(key.blob);
        assert.equal(await instance.handle(signedRsa(key, 'sha512').ctx), 'key_too_weak', String(bits));
        assert.deepEqual(counted, [{ algorithm: 'rsa-sha2-512', outcome: 'key_too_weak' }]);
        const refusal = lines.find((line) => line.msg === 'public key refused by policy');
        assert.equal(refusal?.key_bits, bits);
        assert.match(String(refusal?.reason), new RegExp(`RSA key of ${bits} bits is below sshd.min_rsa_key_bits \\(2048\\)`));
      }
    });

    test('the floor is configurable, and a query is refused as the signature would be', async () => {
      const key = rsa(1024);
      const { instance } = auth(key.blob, { minRsaKeyBits: 1024 });
      assert.equal(await instance.handle(signedRsa(key, 'sha256').ctx), 'accepted');
      const strict = auth(key.blob);
      assert.equal(await strict.instance.handle(context({ key: { algo: 'ssh-rsa', data: key.blob }, hashAlgo: 'sha256' }).ctx), 'key_too_weak');
    });

    test('ssh-rsa signatures are accepted when the operator lists them', async () => {
      const key = rsa(2048);
      const { instance } = auth(key.blob, { allowedAlgorithms: ['ssh-ed25519', 'rsa-sha2-512', 'ssh-rsa'] });
      assert.equal(await instance.handle(signedRsa(key, 'sha1').ctx), 'accepted');
    });

    test('a DSA key is refused by default, before any lookup, whatever algorithm name the client claims', async () => {
      const dsaBlob = dsaPublicBlob();
      const backend = new CountingBackend(dsaBlob);
      const { instance, counted, lines } = auth(dsaBlob, { backend });
      for (const algo of ['ssh-dss', 'ssh-ed25519']) {
        assert.equal(await instance.handle(context({ key: { algo, data: dsaBlob } }).ctx), 'algorithm_not_allowed', algo);
      }
      assert.equal(backend.lookups, 0);
      assert.equal(counted.length, 2);
      assert.ok(lines.some((line) => /DSA keys are not accepted/.test(String(line.reason))));
    });
  });
});

/** A DSA public key made by OpenSSH's ssh-keygen (ssh2 cannot make one). */
function dsaPublicBlob(): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'git-sshd-dsa-'));
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'dsa', '-N', '', '-f', join(dir, 'id')]);
    return Buffer.from(readFileSync(join(dir, 'id.pub'), 'utf8').split(' ')[1] ?? '', 'base64');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

