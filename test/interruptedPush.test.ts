import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, gitLocal, makeKey, makeWorkTree, sshCommand, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { adminUsers, TestServer } from './helpers/server.js';

const MEGABYTE = 1024 * 1024;

/** The partial-push directories git keeps in a repository's objects/ while a push is received. */
function incomingDirs(repoDir: string): string[] {
  return readdirSync(join(repoDir, 'objects')).filter((name) => name.startsWith('tmp_objdir-incoming-'));
}

function bytesUnder(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}

/** Processes whose command line names the repository: git still serving it. */
function gitProcessesOn(repoDir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (command.includes(repoDir)) found.push(`${pid}: ${command}`);
    } catch {
      // Gone already.
    }
  }
  return found;
}

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a push whose client is killed half-way', () => {
  let key: ClientKey;
  let server: TestServer;
  let repoDir: string;

  before(async () => {
    key = makeKey();
    server = await TestServer.start({ users: adminUsers(key), config: { log_level: 'info' } });
    const first = await git(key, server.port, ['push', '-q', url(server.port, 'team/big.git'), 'HEAD:main'], makeWorkTree());
    assert.equal(first.code, 0, first.stderr);
    repoDir = join(server.reposDir, 'team', 'big.git');
  });
  after(() => server.dispose());

  test('leaves no partial pack in the repository, a clean fsck, and no git running', async () => {
    const work = join(temporaryDir('git-sshd-push-'), 'work');
    const clone = await git(key, server.port, ['clone', '-q', url(server.port, 'team/big.git'), work]);
    assert.equal(clone.code, 0, clone.stderr);
    // Over receive.unpackLimit (100 objects): index-pack streams the pack into the incoming directory.
    for (let i = 0; i < 200; i += 1) writeFileSync(join(work, `blob-${i}.bin`), randomBytes(MEGABYTE / 8));
    gitLocal(['add', '.'], work);
    gitLocal(['-c', 'user.name=T', '-c', 'user.email=t@e', 'commit', '-q', '-m', 'big'], work);
    // The pack (25 MB) reaches ssh at 2 MB/s: most of it is still to come when the client dies.
    const throttle = join(import.meta.dirname, 'helpers', 'throttle.mjs');
    const sshPipe = `${process.execPath} ${throttle} ${2 * MEGABYTE} | ${sshCommand(key, server.port)} "$@"`;
    const push = spawn('git', ['push', '-q', url(server.port, 'team/big.git'), 'HEAD:main'], {
      cwd: work,
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, GIT_SSH_COMMAND: `bash -c '${sshPipe}' slow-ssh`, GIT_CONFIG_NOSYSTEM: '1' },
    });
    const pushExited = new Promise((resolve) => push.once('exit', resolve));
    try {
      await until('part of the pack on the server', () => incomingDirs(repoDir).some((dir) => bytesUnder(join(repoDir, 'objects', dir)) > 3 * MEGABYTE));
    } finally {
      // The whole client at once: git, the throttle and ssh, as when a laptop's lid closes.
      process.kill(-push.pid!, 'SIGKILL');
    }
    await pushExited;
    const summary = await server.waitForLog((line) => line.msg === 'connection closed' && (line.sessions as Array<{ command: string }>).some((session) => session.command === 'git-receive-pack'), 60_000);
    const [session] = summary.sessions as Array<{ exit_status: number; bytes_in: number }>;
    assert.ok(session!.bytes_in < 20 * MEGABYTE, `the push was cut short (${session!.bytes_in} bytes received)`);
    // git ended by itself on EOF (receive-pack reports a failed unpack to the client and
    // exits 0), not by a signal (128 + n).
    assert.ok(session!.exit_status < 128, `git exit status ${session!.exit_status}`);
    await until('git to be gone', () => gitProcessesOn(repoDir).length === 0, 30_000);
    assert.deepEqual(incomingDirs(repoDir), [], 'the partial pack was removed');
    assert.equal(gitLocal(['fsck', '--no-progress'], repoDir), '');
    assert.equal(gitLocal(['rev-list', '--count', 'main'], repoDir), '1', 'the interrupted push changed nothing');
  });
});
