import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, gitLocal, makeKey, slowGit, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { adminUsers, TestServer } from './helpers/server.js';

const MEGABYTE = 1024 * 1024;

describe('the shutdown notice reaches a slow client', () => {
  let key: ClientKey;
  let server: TestServer;

  before(async () => {
    key = makeKey();
    server = await TestServer.start({ users: adminUsers(key), config: { sshd: { grace_period: '1s' } } });
    const work = temporaryDir('git-sshd-notice-');
    gitLocal(['init', '-q', '-b', 'main', work]);
    writeFileSync(join(work, 'data.bin'), randomBytes(8 * MEGABYTE));
    gitLocal(['add', '.'], work);
    gitLocal(['-c', 'user.name=T', '-c', 'user.email=t@e', 'commit', '-q', '-m', 'data'], work);
    const push = await git(key, server.port, ['push', '-q', url(server.port, 'team/big.git'), 'main'], work);
    assert.equal(push.code, 0, push.stderr);
  });
  after(() => server.dispose());

  test('a clone read slowly, whose window is full of pack data when the grace period ends, tells the user why it failed', async () => {
    const mark = server.mark();
    // 256 KB/s: the channel window (2 MB in OpenSSH) stays full of pack data waiting to be read.
    const clone = slowGit(key, server.port, MEGABYTE / 4, ['clone', '-q', url(server.port, 'team/big.git'), join(temporaryDir('git-sshd-clone-'), 'clone')]);
    await server.waitForLogSince(mark, (line) => line.msg === 'running git');
    // Signalled once more pack data has gone out than the client's window holds: the window is full.
    for (let attempt = 0; attempt < 600; attempt += 1) {
      if (((await server.metric('git_sshd_bytes_total', '{direction="sent"}')) ?? 0) > 3 * MEGABYTE) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    server.child.kill('SIGTERM');
    const result = await clone;
    assert.notEqual(result.code, 0, 'the cut clone fails');
    assert.match(result.stderr, /git-sshd: the server is shutting down/, result.stderr);
    assert.equal(await server.exited, 0);
  });
});
