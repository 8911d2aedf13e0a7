import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TestServer } from './helpers/server.js';
import { asyncssh, goClient, libssh, openssh, paramiko, type InteropClient } from './helpers/interopClients.js';
import { InteropFixture, WELCOME } from './helpers/interopServer.js';

describe('key exchange and server-sig-algs with the SSH clients people use', () => {
  let fixture: InteropFixture;

  before(async () => {
    fixture = await InteropFixture.start();
  });

  after(() => fixture?.dispose());

  describe('group exchange is not offered, so a client that prefers it falls back', () => {
    // Each client prefers diffie-hellman-group-exchange-sha256 (PuTTY: dh-gex-sha1, which
    // covers it) and may fall back to curve25519. ssh2 offered group exchange without a
    // server side for it: the client picked it and was disconnected with an empty reason.
    const preferences: Array<[string, () => InteropClient, string[]]> = [
      ['OpenSSH', () => openssh, ['diffie-hellman-group-exchange-sha256', 'curve25519-sha256']],
      ['PuTTY plink', () => fixture.putty, ['dh-gex-sha1', 'ecdh', 'WARN']],
      ['Paramiko', () => paramiko, ['diffie-hellman-group-exchange-sha256', 'curve25519-sha256@libssh.org']],
      ['AsyncSSH', () => asyncssh, ['diffie-hellman-group-exchange-sha256', 'curve25519-sha256']],
      ["Go's x/crypto/ssh", () => goClient, ['diffie-hellman-group-exchange-sha256', 'curve25519-sha256']],
      ['libssh', () => libssh, ['diffie-hellman-group-exchange-sha256', 'curve25519-sha256']],
    ];
    for (const [name, client, kex] of preferences) {
      test(`${name} preferring group exchange logs in with a key exchange the server offers`, async () => {
        const mark = fixture.server.mark();
        const result = await fixture.login(client(), fixture.ed25519, { kex });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, WELCOME);
        const handshake = await fixture.server.waitForLogSince(mark, (line) => line.msg === 'handshake done');
        assert.doesNotMatch(String(handshake.kex), /group-exchange/);
      });
    }
  });

  describe('server-sig-algs lists the accepted user key algorithms, comma-separated', () => {
    test('Paramiko reads every algorithm ssh2 verifies as an entry of its own in EXT_INFO', async () => {
      const result = await fixture.login(paramiko, fixture.rsa, { extra: ['--show-ext-info'] });
      assert.equal(result.code, 0, result.stderr);
      const advertised = serverSigAlgs(result.stderr);
      for (const name of ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256']) {
        assert.ok(advertised.includes(name), `${name} missing from ${advertised.join(',')}`);
      }
      for (const name of advertised) assert.match(name, /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|rsa-sha2-(256|512))$/);
    });

    test('OpenSSH limited to rsa-sha2-512 finds it advertised and logs in with an RSA key', async () => {
      const result = await fixture.login(openssh, fixture.rsa, { extra: ['-o', 'PubkeyAcceptedAlgorithms=rsa-sha2-512'] });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, WELCOME);
    });

    test('sshd.public_key_algorithms is what server-sig-algs advertises, and what clients then sign with', async () => {
      const restricted = await TestServer.start({
        users: [{ name: 'alice', keys: [fixture.ed25519.publicLine, fixture.rsa.publicLine], access: { '*': 'admin' } }],
        config: { sshd: { public_key_algorithms: ['ssh-ed25519', 'rsa-sha2-512'] } },
      });
      try {
        const result = await fixture.login(paramiko, fixture.rsa, { extra: ['--show-ext-info'] }, restricted);
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(serverSigAlgs(result.stderr), ['ssh-ed25519', 'rsa-sha2-512']);
        // OpenSSH picks its RSA signature from the list: rsa-sha2-512, the one the server takes.
        const viaOpenSsh = await fixture.login(openssh, fixture.rsa, {}, restricted);
        assert.equal(viaOpenSsh.code, 0, viaOpenSsh.stderr);
        assert.equal(viaOpenSsh.stdout, WELCOME);
      } finally {
        await restricted.dispose();
      }
    });
  });
});

/** The `server-sig-algs` value pyclient.py printed from Paramiko's EXT_INFO. */
function serverSigAlgs(stderr: string): string[] {
  const match = /^ext-info server-sig-algs=(.*)$/m.exec(stderr);
  assert.ok(match, `no server-sig-algs in EXT_INFO: ${stderr}`);
  return match[1]!.split(',');
}
