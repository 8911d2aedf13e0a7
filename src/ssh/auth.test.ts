import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import ssh2, { type AuthContext, type ParsedKey } from 'ssh2';
import type { AccessBackend, Identity } from '../backends/backend.js';
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
    assert.equal(await auth.handle(signed(priv, blob, data, { key: { algo: 'ssh-rsa', data: blob } }).ctx), 'bad_signature');
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

  test('a backend failure refuses the key instead of crashing', async () => {
    const { priv, blob } = keyPair();
    const backend = new CountingBackend(blob);
    backend.identify = async () => {
      throw new Error('api down');
    };
    const auth = new PublicKeyAuth({ user: 'git', backend, log, context: { signal: new AbortController().signal, correlationId: 'test', clientIp: '127.0.0.1' } });
    const attempt = signed(priv, blob, Buffer.from('d'));
    assert.equal(await auth.handle(attempt.ctx), 'backend_error');
    assert.equal(attempt.result(), 'reject');
  });
});
