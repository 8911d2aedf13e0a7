import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ssh, temporaryDir, type ClientKey } from './helpers/client.js';
import { TestServer } from './helpers/server.js';

/** A key made by OpenSSH's ssh-keygen, of any type and size bookworm's still makes. */
function keygen(type: 'rsa' | 'dsa' | 'ed25519', bits?: number): ClientKey {
  const path = join(temporaryDir('git-sshd-weak-'), `id_${type}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-f', path]);
  return { path, publicLine: readFileSync(`${path}.pub`, 'utf8').trim() };
}

/** Signatures counted with an RSA SHA-2 algorithm (which of the two OpenSSH picks follows the server's list). */
async function rsaSha2(server: TestServer, outcome: string): Promise<number> {
  let sum = 0;
  for (const algorithm of ['rsa-sha2-256', 'rsa-sha2-512']) {
    sum += (await server.metric('git_sshd_auth_signature_algorithms_total', `{algorithm="${algorithm}",outcome="${outcome}"}`)) ?? 0;
  }
  return sum;
}

const fingerprintOf = (key: ClientKey): string =>
  execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${key.path}.pub`], { encoding: 'utf8' }).split(' ')[1] ?? '';

/** Real OpenSSH clients offering weak keys and SHA-1 signatures to a server with the default config. */
describe('weak client keys, with a real OpenSSH client', () => {
  let server: TestServer;
  let rsa2048: ClientKey;
  let rsa1024: ClientKey;
  let dsa: ClientKey;

  before(async () => {
    rsa2048 = keygen('rsa', 2048);
    rsa1024 = keygen('rsa', 1024);
    dsa = keygen('dsa');
    server = await TestServer.start({
      users: [
        { name: 'modern', keys: [rsa2048.publicLine], access: { '*': 'read' } },
        { name: 'small', keys: [rsa1024.publicLine], access: { '*': 'read' } },
        { name: 'old', keys: [dsa.publicLine], access: { '*': 'read' } },
      ],
    });
  });

  after(async () => {
    await server?.dispose();
  });

  test('weak keys in users.yml are named at load, with the reason', () => {
    const refused = server.logs.filter((line) => line.msg === 'users file key refused by policy; it cannot log in');
    assert.deepEqual(
      refused.map((line) => [line.entry, line.key_fingerprint]),
      [
        ['users[1].keys[0] (user small)', fingerprintOf(rsa1024)],
        ['users[2].keys[0] (user old)', fingerprintOf(dsa)],
      ],
    );
    assert.match(String(refused[0]?.reason), /RSA key of 1024 bits is below sshd.min_rsa_key_bits \(2048\)/);
    assert.match(String(refused[1]?.reason), /DSA keys are not accepted/);
  });

  test('an RSA key signing with SHA-2 logs in, and the signature algorithm is counted', async () => {
    const before = await rsaSha2(server, 'accepted');
    const result = await ssh(rsa2048, server.port);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await rsaSha2(server, 'accepted'), before + 1);
  });

  test('the same key forced to ssh-rsa (SHA-1) signatures does not log in: ssh-rsa is not advertised, and refused with the reason if sent anyway', async () => {
    const mark = server.mark();
    const result = await ssh(rsa2048, server.port, [], ['-v', '-o', 'PubkeyAcceptedAlgorithms=ssh-rsa']);
    assert.equal(result.code, 255);
    assert.match(result.stderr, /Permission denied \(publickey\)/);
    // server-sig-algs follows sshd.public_key_algorithms, so OpenSSH sees that ssh-rsa
    // signatures are not accepted and does not send one (src/ssh/auth.test.ts covers a
    // client that sends one anyway: refused under any claimed name).
    const serverSigAlgs = /server-sig-algs=<([^>]*)>/.exec(result.stderr)?.[1] ?? '';
    assert.ok(serverSigAlgs.includes('rsa-sha2-256'), result.stderr);
    assert.ok(!serverSigAlgs.split(',').includes('ssh-rsa'), serverSigAlgs);
    if (/no mutual signature algorithm/.test(result.stderr)) return;
    const refusal = await server.waitForLogSince(mark, (line) => line.msg === 'public key refused by policy');
    assert.equal(refusal.signature_algorithm, 'ssh-rsa');
    assert.equal(refusal.key_fingerprint, fingerprintOf(rsa2048));
    assert.match(String(refusal.reason), /ssh-rsa \(RSA with SHA-1\) is not in sshd.public_key_algorithms/);
    assert.ok(((await server.metric('git_sshd_auth_signature_algorithms_total', '{algorithm="ssh-rsa",outcome="algorithm_not_allowed"}')) ?? 0) >= 1);
  });

  test('a 1024-bit RSA key is refused, naming its size', async () => {
    const mark = server.mark();
    const result = await ssh(rsa1024, server.port);
    assert.equal(result.code, 255);
    const refusal = await server.waitForLogSince(mark, (line) => line.msg === 'public key refused by policy');
    assert.equal(refusal.key_bits, 1024);
    assert.match(String(refusal.reason), /RSA key of 1024 bits is below sshd.min_rsa_key_bits \(2048\)/);
    assert.ok((await rsaSha2(server, 'key_too_weak')) >= 1);
  });

  test('a DSA key is refused even when the client insists on offering it', async () => {
    const mark = server.mark();
    const result = await ssh(dsa, server.port, [], ['-o', 'PubkeyAcceptedAlgorithms=+ssh-dss']);
    assert.equal(result.code, 255);
    const refusal = await server.waitForLogSince(mark, (line) => line.msg === 'public key refused by policy');
    assert.equal(refusal.key_type, 'ssh-dss');
  });
});

describe('an operator who must still serve old clients opts in', () => {
  let server: TestServer;
  let rsa1024: ClientKey;

  before(async () => {
    rsa1024 = keygen('rsa', 1024);
    server = await TestServer.start({
      users: [{ name: 'legacy', keys: [rsa1024.publicLine], access: { '*': 'read' } }],
      config: { sshd: { min_rsa_key_bits: 1024, public_key_algorithms: ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] } },
    });
  });

  after(async () => {
    await server?.dispose();
  });

  test('a 1024-bit key with SHA-1 signatures logs in when both are allowed, and is counted as ssh-rsa', async () => {
    const result = await ssh(rsa1024, server.port, [], ['-o', 'PubkeyAcceptedAlgorithms=ssh-rsa']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await server.metric('git_sshd_auth_signature_algorithms_total', '{algorithm="ssh-rsa",outcome="accepted"}'), 1);
  });
});
