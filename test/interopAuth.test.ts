import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { url } from './helpers/client.js';
import { asyncssh, dropbear, gitVia, libssh } from './helpers/interopClients.js';
import { InteropFixture, LONG, WELCOME } from './helpers/interopServer.js';

describe('authentication and session requests with the SSH clients people use', () => {
  let fixture: InteropFixture;

  before(async () => {
    fixture = await InteropFixture.start();
  });

  after(() => fixture?.dispose());

  test('AsyncSSH logs in with an RSA key and clones: PK_OK names the rsa-sha2 algorithm it asked about', async () => {
    // RFC 4252 section 7; AsyncSSH checks the name and aborts with "Key mismatch" otherwise.
    const result = await fixture.login(asyncssh, fixture.rsa);
    assert.doesNotMatch(result.stderr, /Key mismatch/);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, WELCOME);
    const cloned = await gitVia(asyncssh, fixture.rsa, ['clone', url(fixture.server.port, 'team/app'), join(fixture.scratch, 'asyncssh-rsa')]);
    assert.equal(cloned.code, 0, cloned.stderr);
  });

  test("Dropbear's -K keepalive requests after exec are answered, so a clone survives several silent intervals", LONG, async () => {
    // git's requests reach dbclient only after 8 s: git-upload-pack waits for them in
    // silence, and Dropbear's keepalive@openssh.com channel requests (every second,
    // want_reply) are all that crosses the connection. Unanswered, dbclient gives up after 3.
    const wrapper = `bash -c '{ sleep 8; exec cat; } | dbclient -K 1 -y -y -i ${fixture.ed25519.dropbear} "$@"' delayed-dbclient`;
    const mark = fixture.server.mark();
    const target = join(fixture.scratch, 'dropbear-keepalive');
    const cloned = await gitVia(dropbear, fixture.ed25519, ['clone', url(fixture.server.port, 'team/app'), target], { sshCommand: wrapper });
    assert.doesNotMatch(cloned.stderr, /Keepalive timeout/);
    assert.equal(cloned.code, 0, cloned.stderr);
    const summary = await fixture.server.waitForLogSince(mark, (line) => line.msg === 'connection closed', 30_000);
    assert.ok(Number(summary.duration_ms) >= 3000, 'the clone did not stay silent for several keepalive intervals');
  });

  test('libssh logs in with an RSA key 20 times out of 20: server-sig-algs comes with the first NEWKEYS', LONG, async () => {
    // libssh 0.10 picks its RSA signature as soon as the key exchange ends; without
    // server-sig-algs by then it falls back to ssh-rsa, which it no longer allows itself.
    const failures: string[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      const result = await fixture.login(libssh, fixture.rsa);
      if (result.code !== 0 || result.stdout !== WELCOME) failures.push(`${attempt}: ${result.code} ${result.stderr.trim()}`);
    }
    assert.deepEqual(failures, []);
  });
});
