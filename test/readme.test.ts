import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { ROOT, type LogLine } from './helpers/server.js';

/**
 * The README's quick start, run as written. The blocks come out of README.md itself (each
 * follows a `<!-- readme-test:NAME -->` marker), so the README cannot drift from what
 * works. Everything runs in a network namespace of its own, where port 2222 and
 * localhost:9122 are always free however busy the machine is, so the commands need no
 * port of ours substituted, and where the account's home directory is a fresh one with its
 * own key and known_hosts.
 */

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const COMMAND_TIMEOUT_MS = 180_000;

/** The fenced block that follows the marker `<!-- readme-test:NAME`. */
function markedBlock(name: string): string {
  const marker = README.indexOf(`<!-- readme-test:${name}`);
  assert.ok(marker >= 0, `README.md has no <!-- readme-test:${name} --> marker`);
  const block = /```sh\n([\s\S]*?)```/.exec(README.slice(marker));
  assert.ok(block?.[1], `no \`\`\`sh block after the readme-test:${name} marker`);
  return block[1];
}

const privileged = process.getuid?.() === 0 && spawnSync('ip', ['-V']).status === 0 && spawnSync('unshare', ['--version']).status === 0;

describe('the README quick start works verbatim on a default git', { skip: privileged ? false : 'needs root, unshare and ip for a network namespace' }, () => {
  let work: string;
  let checkout: string;
  let home: string;
  let namespace: ChildProcess | undefined;
  let server: ChildProcess | undefined;
  const logs: LogLine[] = [];
  const serverOutput: string[] = [];

  /** argv run inside the namespace. */
  const inNamespace = (cwd: string, argv: string[]): string[] => [
    'nsenter',
    `--net=/proc/${namespace?.pid}/ns/net`,
    `--mount=/proc/${namespace?.pid}/ns/mnt`,
    // Entering a mount namespace starts in its root directory otherwise.
    `--wd=${cwd}`,
    '--',
    ...argv,
  ];
  const env = (): Record<string, string> => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    // The account's own home, which the namespace shows as the temp one (OpenSSH reads
    // ~/.ssh from the password database, not from $HOME).
    HOME: userInfo().homedir,
    LANG: 'C.UTF-8',
    // A user's machine has no system gitconfig of ours; this one's must not decide the branch name.
    GIT_CONFIG_NOSYSTEM: '1',
    NPM_CONFIG_UPDATE_NOTIFIER: 'false',
  });

  /** A README block as a user's shell runs it, stopping at the first failing command. */
  function runBlock(block: string, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const [command, ...args] = inNamespace(cwd, ['bash', '-euo', 'pipefail', '-c', block]);
    // Only the environment a fresh login would have: nothing of the test runner's leaks in.
    const child = spawn(command as string, args, { cwd, env: env(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), COMMAND_TIMEOUT_MS);
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
      });
    });
  }

  function waitForLog(match: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = logs.find(match);
        if (found) {
          clearInterval(timer);
          clearTimeout(deadline);
          resolve(found);
        }
        return found !== undefined;
      };
      const timer = setInterval(check, 50);
      const deadline = setTimeout(() => {
        clearInterval(timer);
        reject(new Error(`no matching log line within ${timeoutMs} ms; output:\n${serverOutput.slice(-40).join('\n')}`));
      }, timeoutMs);
      if (server) server.once('exit', (code) => {
        if (check()) return;
        clearInterval(timer);
        clearTimeout(deadline);
        reject(new Error(`npm start exited with ${code}; output:\n${serverOutput.slice(-40).join('\n')}`));
      });
      check();
    });
  }

  function killServer(signal: NodeJS.Signals): void {
    if (server?.pid && server.exitCode === null && server.signalCode === null) {
      try {
        process.kill(-server.pid, signal);
      } catch {
        // Already gone.
      }
    }
  }
  const killOnExit = (): void => killServer('SIGKILL');

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'git-sshd-readme-'));
    // A checkout as `npm ci` leaves it: this tree's files, installed modules and build.
    checkout = join(work, 'git-sshd');
    mkdirSync(checkout);
    for (const entry of ['package.json', 'package-lock.json', 'tsconfig.json', 'node_modules', 'scripts', 'src', 'dist']) {
      symlinkSync(join(ROOT, entry), join(checkout, entry));
    }
    home = join(work, 'home');
    mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 });
    // What `ssh-keygen -t ed25519` makes, as the README's hint has a new user do.
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@laptop', '-f', join(home, '.ssh', 'id_ed25519')]);

    // Its own network (port 2222 free, whatever runs on the machine) and its own view of
    // the account's home directory: the temp home, mounted over it.
    const setUp = 'ip link set lo up && mount --bind "$1" "$2" && echo up && exec cat';
    namespace = spawn('unshare', ['--net', '--mount', '--propagation', 'private', '--', 'sh', '-c', setUp, 'sh', home, userInfo().homedir], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const [line] = (await Promise.race([once(createInterface({ input: namespace.stdout! }), 'line'), once(namespace, 'exit')])) as [string];
    assert.equal(line, 'up', 'could not create a network namespace');
  });

  after(async () => {
    killServer('SIGTERM');
    if (server && server.exitCode === null && server.signalCode === null) {
      const timer = setTimeout(() => killServer('SIGKILL'), 15_000);
      await once(server, 'exit');
      clearTimeout(timer);
    }
    process.off('exit', killOnExit);
    namespace?.stdin?.end();
    namespace?.kill('SIGKILL');
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('npm start, add-user, ssh, push from a repository on the default branch, and clone', async () => {
    // 1. The server: the README's `npm ci && npm start`, with the checkout already installed.
    const startBlock = markedBlock('start').trim();
    assert.equal(startBlock, 'npm ci && npm start');
    const [command, ...args] = inNamespace(checkout, ['bash', '-c', 'npm start']);
    server = spawn(command as string, args, { cwd: checkout, env: env(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    process.on('exit', killOnExit);
    for (const stream of [server.stdout!, server.stderr!]) {
      createInterface({ input: stream }).on('line', (text) => {
        serverOutput.push(text);
        try {
          logs.push(JSON.parse(text) as LogLine);
        } catch {
          // npm's own lines.
        }
      });
    }
    const listening = await waitForLog((line) => line.msg === 'listening', COMMAND_TIMEOUT_MS);
    assert.equal(listening.port, 2222);
    assert.ok(existsSync(join(checkout, 'data', 'users.yml')), 'npm start keeps its data in ./data of the checkout');

    // 2. Trust the server the way the README says: its printed known_hosts lines.
    const hostKeys = await waitForLog((line) => line.msg === 'host key' && line.type === 'RSA', 10_000).then(() => logs.filter((line) => line.msg === 'host key'));
    assert.equal(hostKeys.length, 3);
    const knownHosts = join(home, '.ssh', 'known_hosts');
    writeFileSync(knownHosts, hostKeys.map((line) => `${line.known_hosts}\n`).join(''));
    const listed = execFileSync('ssh-keygen', ['-l', '-f', knownHosts], { encoding: 'utf8' });
    for (const line of hostKeys) assert.ok(listed.includes(`${line.fingerprint} [localhost]:2222 (${line.type})`), listed);

    // 3. add-user, in the checkout as a second terminal would be.
    const added = await runBlock(markedBlock('add-user'), checkout);
    assert.equal(added.code, 0, `${added.stdout}\n${added.stderr}`);
    assert.match(added.stdout, /added user me/);
    await waitForLog((line) => line.msg === 'reloaded users file' && line.users === 1, 60_000);

    // 4. A project as `git init` makes it on this git: its first branch may well be master.
    const project = join(home, 'my-project');
    mkdirSync(project);
    const gitHere = (argv: string[]) => execFileSync('git', argv, { cwd: project, env: env(), encoding: 'utf8' }).trim();
    gitHere(['init', '-q']);
    writeFileSync(join(project, 'README.md'), 'my project\n');
    gitHere(['add', 'README.md']);
    gitHere(['-c', 'user.name=Me', '-c', 'user.email=me@example.com', 'commit', '-q', '-m', 'first']);

    const pushClone = markedBlock('push-clone');
    const welcome = /# (Welcome to git-sshd, @me!)/.exec(pushClone)?.[1];
    assert.ok(welcome, 'the README shows the welcome line');
    const result = await runBlock(pushClone, home);
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.ok(result.stdout.includes(welcome), result.stdout);
    const clone = join(project, 'app');
    assert.equal(gitHere(['-C', clone, 'rev-parse', 'HEAD']), gitHere(['rev-parse', 'HEAD']));
    assert.equal(gitHere(['-C', clone, 'symbolic-ref', '--short', 'HEAD']), 'main');
  });
});
