import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gitLocal, url } from './helpers/client.js';
import { gitVia } from './helpers/interopClients.js';
import { InteropFixture, LONG, WELCOME } from './helpers/interopServer.js';

// The other SSH clients people use, each driving git as git drives ssh. The five protocol
// faults they found are tested one by one in interopKex, interopAuth and interopRekey.
describe('every SSH client people use logs in and carries git', () => {
  let fixture: InteropFixture;

  before(async () => {
    fixture = await InteropFixture.start();
  });

  after(() => fixture?.dispose());

  for (const name of ['PuTTY plink', 'Dropbear dbclient', 'Paramiko', 'AsyncSSH', "Go's x/crypto/ssh", 'libssh']) {
    test(`${name} logs in with an Ed25519 key and with an RSA key`, async () => {
      for (const key of [fixture.ed25519, fixture.rsa]) {
        const result = await fixture.login(fixture.client(name), key);
        assert.equal(result.code, 0, `${key.type}: ${result.stderr}`);
        assert.equal(result.stdout, WELCOME, `${key.type}: ${result.stderr}`);
      }
    });

    test(`git clones and pushes through ${name}`, LONG, async () => {
      const { server } = fixture;
      const slug = name.replace(/\W+/g, '-').toLowerCase();
      const target = join(fixture.scratch, `clone-${slug}`);
      const cloned = await gitVia(fixture.client(name), fixture.ed25519, ['clone', url(server.port, 'team/app'), target]);
      assert.equal(cloned.code, 0, cloned.stderr);
      assert.equal(gitLocal(['log', '-1', '--format=%s'], target), 'first');
      writeFileSync(join(target, 'client.txt'), `${name}\n`);
      gitLocal(['add', 'client.txt'], target);
      gitLocal(['-c', 'user.name=Test', '-c', 'user.email=test@example.com', 'commit', '-q', '-m', name], target);
      const pushed = await gitVia(fixture.client(name), fixture.rsa, ['push', 'origin', `HEAD:refs/heads/via-${slug}`], { cwd: target });
      assert.equal(pushed.code, 0, pushed.stderr);
      const bare = join(server.reposDir, 'team', 'app.git');
      assert.equal(gitLocal(['rev-parse', `refs/heads/via-${slug}`], bare), gitLocal(['rev-parse', 'HEAD'], target));
    });
  }
});
