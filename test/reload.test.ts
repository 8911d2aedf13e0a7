import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { git, gitLocal, makeKey, makeWorkTree, run, ssh, sshArgs, url, type ClientKey } from './helpers/client.js';
import { killGroup, spawnGroup } from './helpers/processes.js';
import { ROOT, TestServer, type UserSpec } from './helpers/server.js';
import { waitUntil } from './helpers/wait.js';

/** Writes the file the way editors and ConfigMap updates do: a complete temp file, renamed over. */
function replaceAtomically(file: string, text: string): void {
  const temporary = `${file}.tmp-${process.pid}`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, file);
}

/**
 * An OpenSSH control master: one authenticated connection that later `ssh` commands reuse,
 * so a test can run a command on a connection opened before the users file changed.
 */
async function openMaster(key: ClientKey, server: TestServer, socket: string): Promise<ChildProcess> {
  const mark = server.mark();
  const master = spawnGroup('ssh', [...sshArgs(key, server.port, ['-M', '-S', socket, '-N']), 'git@127.0.0.1'], { stdio: 'ignore' });
  try {
    await server.waitForLogSince(mark, (line) => line.msg === 'authenticated');
    // The client opens its control socket just after authentication; nothing announces it.
    await waitUntil('the control socket', () => existsSync(socket));
    return master;
  } catch (err) {
    await closeMaster(master);
    throw err;
  }
}

async function closeMaster(master: ChildProcess | undefined): Promise<void> {
  if (master) await killGroup(master);
}

/** A flush packet: the client wants nothing, so git ends cleanly after its advertisement. */
function gitOverMaster(key: ClientKey, port: number, socket: string, command: string) {
  return run('ssh', [...sshArgs(key, port, ['-S', socket, '-o', 'ControlMaster=no']), 'git@127.0.0.1', command], { input: '0000' });
}

function usersYaml(users: UserSpec[]): string {
  return stringify({ users: users.map((user) => ({ name: user.name, keys: user.keys, access: user.access ?? {} })) });
}

describe('the users file is reloaded without a restart', () => {
  let server: TestServer;
  let keysDir: string;
  const scratch: string[] = [];
  const keys: Record<'alice' | 'erin' | 'frank', ClientKey> = {} as never;
  let alice: UserSpec;
  let erin: UserSpec;

  /** Rewrites users.yml and waits for the server's verdict on it. */
  async function rewriteUsers(text: string, verdict: string): Promise<void> {
    const mark = server.mark();
    replaceAtomically(server.usersFile, text);
    await server.waitForLogSince(mark, (line) => line.msg === verdict);
  }

  before(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'git-sshd-keys-'));
    for (const name of ['alice', 'erin', 'frank'] as const) {
      mkdirSync(join(keysDir, name));
      keys[name] = makeKey('ed25519', join(keysDir, name));
    }
    alice = { name: 'alice', keys: [keys.alice.publicLine], access: { '*': 'admin' } };
    erin = { name: 'erin', keys: [keys.erin.publicLine], access: { 'erin/*': 'admin' } };
    server = await TestServer.start({ users: [alice] });
  });

  after(async () => {
    await server?.dispose();
    for (const dir of [keysDir, ...scratch]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a key that is not in the file yet is refused', async () => {
    const result = await ssh(keys.erin, server.port);
    assert.equal(result.code, 255);
    assert.match(result.stderr, /Permission denied/);
  });

  test('a user added to the file can log in once the server has reloaded it', async () => {
    await rewriteUsers(usersYaml([alice, erin]), 'reloaded users file');

    const result = await ssh(keys.erin, server.port);

    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'Welcome to git-sshd, @erin!');
  });

  test('a malformed file is logged and the last good one stays in force', async () => {
    const mark = server.mark();
    await rewriteUsers('users:\n  - name: erin\n    keys: [unclosed\n', 'users file is invalid; keeping the last good one');
    const invalid = server.logs.slice(mark).find((line) => line.msg === 'users file is invalid; keeping the last good one');
    assert.equal(invalid?.level, 'error');
    assert.match(String(invalid?.error), /users\.yml/);

    const result = await ssh(keys.erin, server.port);

    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'Welcome to git-sshd, @erin!');
  });

  test('a user removed from the file is refused, on new connections and on one already open', async () => {
    const bare = join(server.reposDir, 'erin', 'notes.git');
    mkdirSync(bare, { recursive: true });
    gitLocal(['init', '-q', '--bare', bare]);
    const socket = join(keysDir, 'mux');
    let master: ChildProcess | undefined;
    try {
      master = await openMaster(keys.erin, server, socket);
      const allowed = await gitOverMaster(keys.erin, server.port, socket, "git-upload-pack 'erin/notes'");
      assert.equal(allowed.code, 0, allowed.stderr);

      await rewriteUsers(usersYaml([alice]), 'reloaded users file');

      const refused = await ssh(keys.erin, server.port);
      assert.equal(refused.code, 255);
      assert.match(refused.stderr, /Permission denied/);
      const onOpen = await gitOverMaster(keys.erin, server.port, socket, "git-upload-pack 'erin/notes'");
      assert.equal(onOpen.code, 1, onOpen.stderr);
      assert.match(onOpen.stderr, /^ERROR: your key is no longer accepted/m);
      assert.equal(onOpen.stdout, '');
    } finally {
      await closeMaster(master);
    }
    const stillIn = await ssh(keys.alice, server.port);
    assert.equal(stillIn.stdout.trim(), 'Welcome to git-sshd, @alice!');
  });

  test('add-user adds a user to the running server, who can then create a repository by pushing', async () => {
    const mark = server.mark();
    const added = await run(process.execPath, [
      join(ROOT, 'dist', 'cli', 'addUser.js'),
      '--name', 'frank',
      '--key', `${keys.frank.path}.pub`,
      '--config', server.configFile,
    ], { cwd: server.dir });
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /added user frank/);
    await server.waitForLogSince(mark, (line) => line.msg === 'reloaded users file' && line.users === 2);

    const work = makeWorkTree({ 'README.md': 'frank was here\n' });
    scratch.push(work);
    const push = await git(keys.frank, server.port, ['push', '-q', url(server.port, 'frank/first'), 'main'], work);

    assert.equal(push.code, 0, push.stderr);
    const bare = join(server.reposDir, 'frank', 'first.git');
    assert.ok(existsSync(bare));
    assert.equal(gitLocal(['rev-parse', 'refs/heads/main'], bare), gitLocal(['rev-parse', 'HEAD'], work));
    const welcome = await ssh(keys.frank, server.port);
    assert.equal(welcome.stdout.trim(), 'Welcome to git-sshd, @frank!');
  });
});

describe('a users file mounted from a Kubernetes ConfigMap is reloaded when the mount is swapped', () => {
  let server: TestServer;
  let mount: string;
  let keysDir: string;
  let alice: ClientKey;
  let erin: ClientKey;

  /** Lays out a version the way the kubelet does: a timestamped dir, then `..data` re-pointed by rename. */
  function publish(version: string, text: string): void {
    mkdirSync(join(mount, version));
    writeFileSync(join(mount, version, 'users.yml'), text);
    symlinkSync(version, join(mount, '..data_tmp'));
    renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
  }

  before(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'git-sshd-keys-'));
    mkdirSync(join(keysDir, 'alice'));
    mkdirSync(join(keysDir, 'erin'));
    alice = makeKey('ed25519', join(keysDir, 'alice'));
    erin = makeKey('ed25519', join(keysDir, 'erin'));
    mount = mkdtempSync(join(tmpdir(), 'git-sshd-configmap-'));
    publish('..2026_01_01_00_00_00.1', usersYaml([{ name: 'alice', keys: [alice.publicLine], access: { '*': 'admin' } }]));
    symlinkSync(join('..data', 'users.yml'), join(mount, 'users.yml'));
    server = await TestServer.start({ config: { local: { users_file: join(mount, 'users.yml') } } });
  });

  after(async () => {
    await server?.dispose();
    for (const dir of [mount, keysDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a user added in a new ConfigMap version can log in without a restart', async () => {
    const refusedAtFirst = await ssh(erin, server.port);
    assert.equal(refusedAtFirst.code, 255);

    const mark = server.mark();
    publish(
      '..2026_01_01_00_01_00.2',
      usersYaml([
        { name: 'alice', keys: [alice.publicLine], access: { '*': 'admin' } },
        { name: 'erin', keys: [erin.publicLine] },
      ]),
    );
    rmSync(join(mount, '..2026_01_01_00_00_00.1'), { recursive: true });
    await server.waitForLogSince(mark, (line) => line.msg === 'reloaded users file' && line.users === 2);

    const welcomed = await ssh(erin, server.port);
    assert.equal(welcomed.code, 0, welcomed.stderr);
    assert.equal(welcomed.stdout.trim(), 'Welcome to git-sshd, @erin!');
  });
});
