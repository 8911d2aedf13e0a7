import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { connect } from 'node:net';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { adminUsers, TestServer } from './helpers/server.js';
import { makeKey, run, ssh, type ClientKey } from './helpers/client.js';
import { goSshClient, paramikoClient } from './helpers/peers.js';

const MLKEM = 'mlkem768x25519-sha256';
const WELCOME = 'Welcome to git-sshd, @alice!\n';

/**
 * mlkem768x25519-sha256 (patches/ssh2+1.17.0+001+mlkem768x25519.patch) against independent
 * implementations: Go's golang.org/x/crypto/ssh and Paramiko. Bookworm's OpenSSH 9.2, which
 * predates it, still connects; OpenSSH 10 is in test/modern.test.ts.
 */
describe('the post-quantum key exchange', () => {
  let server: TestServer;
  let alice: ClientKey;
  let goSsh: string;
  let paramiko: { python: string; script: string };

  before(async () => {
    goSsh = goSshClient();
    paramiko = paramikoClient();
    alice = makeKey('ed25519');
    server = await TestServer.start({ users: adminUsers(alice) });
  });

  after(() => server.dispose());

  function goClient(kex: string) {
    return run(goSsh, ['-addr', `127.0.0.1:${server.port}`, '-key', alice.path, '-kex', kex]);
  }

  function kexCount(algorithm: string) {
    return server.metric('git_sshd_negotiated_algorithms_total', `{kind="kex",algorithm="${algorithm}"}`);
  }

  test('Go x/crypto/ssh agrees on every key: 16 logins with mlkem768x25519-sha256 only', async () => {
    // K is a 32-byte string, not an mpint: half of all K have the top bit set, where an mpint
    // would differ by a leading zero byte. 16 logins meet both kinds but for 2 chances in 65,536.
    const before = (await kexCount(MLKEM)) ?? 0;
    for (let i = 0; i < 16; i++) {
      const result = await goClient(MLKEM);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, WELCOME);
    }
    assert.equal(await kexCount(MLKEM), before + 16);
  });

  test('Paramiko 5.1 agrees too: 4 logins with mlkem768x25519-sha256 only, then its curve25519', async () => {
    const before = (await kexCount(MLKEM)) ?? 0;
    for (let i = 0; i < 4; i++) {
      const result = await run(paramiko.python, [paramiko.script, '127.0.0.1', String(server.port), 'git', alice.path, MLKEM]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, WELCOME);
    }
    assert.equal(await kexCount(MLKEM), before + 4);
    const classic = await run(paramiko.python, [paramiko.script, '127.0.0.1', String(server.port), 'git', alice.path, 'curve25519-sha256@libssh.org']);
    assert.equal(classic.code, 0, classic.stderr);
  });

  test('the negotiated kex is named in the log and the metrics', async () => {
    const mark = server.mark();
    const result = await goClient(`${MLKEM},curve25519-sha256`);
    assert.equal(result.code, 0, result.stderr);
    const line = await server.waitForLogSince(mark, (entry) => entry.msg === 'handshake done');
    assert.equal(line.kex, MLKEM);
    const { body } = await server.http('/metrics');
    assert.match(body, /^git_sshd_negotiated_algorithms_total\{kind="kex",algorithm="mlkem768x25519-sha256"\} \d+$/m);
  });

  test('it is offered first: a client preferring curve25519 still gets what it prefers', async () => {
    const before = (await kexCount('curve25519-sha256')) ?? 0;
    const result = await goClient(`curve25519-sha256,${MLKEM}`);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await kexCount('curve25519-sha256'), before + 1);
  });

  test('bookworm\'s OpenSSH 9.2, without ML-KEM, connects with curve25519', async () => {
    const result = await ssh(alice, server.port, [], ['-v']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, WELCOME);
    const offered = /kex: algorithm: (\S+)/.exec(result.stderr)?.[1];
    assert.match(offered ?? '', /^curve25519-sha256/);
  });

  test('strict KEX (Terrapin) stays on next to it', async () => {
    const result = await ssh(alice, server.port, [], ['-vv']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /kex-strict-s-v00@openssh\.com/);
  });

  test('a server configured without it refuses a client that insists on it, and stays up', async () => {
    const classic = await TestServer.start({
      users: adminUsers(alice),
      config: { sshd: { kex_algorithms: ['curve25519-sha256'] } },
    });
    try {
      const refused = await run(goSsh, ['-addr', `127.0.0.1:${classic.port}`, '-key', alice.path, '-kex', MLKEM]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /no common algorithm for key exchange/);
      const ok = await run(goSsh, ['-addr', `127.0.0.1:${classic.port}`, '-key', alice.path, '-kex', `${MLKEM},curve25519-sha256`]);
      assert.equal(ok.code, 0, ok.stderr);
    } finally {
      await classic.dispose();
    }
  });

  for (const [what, blob, error] of [
    ['a C_INIT of the wrong length', Buffer.alloc(1184 + 31, 7), /Invalid C_INIT length: 1215, expected 1216/],
    ['an ML-KEM encapsulation key out of range (FIPS 203 modulus check)', Buffer.concat([Buffer.alloc(1184, 0xff), Buffer.alloc(32, 9)]), /mlkem768x25519/],
    ['an X25519 point of small order (all-zero secret)', Buffer.concat([validEncapsulationKey(), Buffer.alloc(32, 0)]), /mlkem768x25519.*derivation/],
  ] as const) {
    test(`${what} ends the handshake with a key exchange error, and the server serves on`, async () => {
      const mark = server.mark();
      const reason = await sendKexInit(server.port, blob);
      assert.equal(reason.code, 3, `disconnect reason ${reason.code}: ${reason.text}`); // SSH_DISCONNECT_KEY_EXCHANGE_FAILED
      const logged = await server.waitForLogSince(mark, (line) => line.msg === 'connection error');
      assert.match((logged.err as { message: string }).message, error);
      const after = await goClient(MLKEM);
      assert.equal(after.code, 0, after.stderr);
    });
  }
});

function validEncapsulationKey(): Buffer {
  // A real ML-KEM-768 key, so that only the X25519 half is at fault.
  return generateKeyPairSync('ml-kem-768').publicKey.export({ format: 'raw-public' });
}

/**
 * A hand-made client: version line, KEXINIT offering only mlkem768x25519-sha256, then
 * KEX_ECDH_INIT (30) carrying `blob`. Resolves with the server's DISCONNECT reason.
 */
async function sendKexInit(port: number, blob: Buffer): Promise<{ code: number; text: string }> {
  const socket = connect(port, '127.0.0.1');
  socket.setTimeout(30_000, () => socket.destroy(new Error('no DISCONNECT within 30 s')));
  await once(socket, 'connect');
  socket.write('SSH-2.0-kex-test\r\n');
  const nameList = (names: string) => sshString(Buffer.from(names));
  const kexinit = Buffer.concat([
    Buffer.from([20]),
    Buffer.alloc(16, 1),
    nameList(`${MLKEM},kex-strict-c-v00@openssh.com`),
    nameList('ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256'),
    nameList('aes128-ctr'),
    nameList('aes128-ctr'),
    nameList('hmac-sha2-256'),
    nameList('hmac-sha2-256'),
    nameList('none'),
    nameList('none'),
    nameList(''),
    nameList(''),
    Buffer.from([0, 0, 0, 0, 0]),
  ]);
  socket.write(packet(kexinit));
  socket.write(packet(Buffer.concat([Buffer.from([30]), sshString(blob)])));

  let data = Buffer.alloc(0);
  for await (const chunk of socket) {
    data = Buffer.concat([data, chunk as Buffer]);
    const found = findDisconnect(data);
    if (found) {
      socket.destroy();
      return found;
    }
  }
  throw new Error(`the connection closed without a DISCONNECT (${data.length} bytes received)`);
}

function sshString(bytes: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** An unencrypted binary packet (RFC 4253 section 6), before the first NEWKEYS. */
function packet(payload: Buffer): Buffer {
  let padding = 8 - ((5 + payload.length) % 8);
  if (padding < 4) padding += 8;
  const head = Buffer.alloc(5);
  head.writeUInt32BE(1 + payload.length + padding);
  head[4] = padding;
  return Buffer.concat([head, payload, Buffer.alloc(padding)]);
}

/** The DISCONNECT (1) packet among the server's plaintext packets after its version line. */
function findDisconnect(data: Buffer): { code: number; text: string } | undefined {
  const versionEnd = data.indexOf('\r\n');
  if (versionEnd < 0) return undefined;
  let offset = versionEnd + 2;
  while (offset + 5 <= data.length) {
    const length = data.readUInt32BE(offset);
    if (offset + 4 + length > data.length) return undefined;
    const payload = data.subarray(offset + 5, offset + 4 + length - data[offset + 4]!);
    if (payload[0] === 1) {
      const textLength = payload.readUInt32BE(5);
      return { code: payload.readUInt32BE(1), text: payload.subarray(9, 9 + textLength).toString() };
    }
    offset += 4 + length;
  }
  return undefined;
}
