import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killGroup, spawnGroup, temporaryDir } from './processes.js';

export { temporaryDir } from './processes.js';

export interface ClientKey {
  readonly path: string;
  readonly publicLine: string;
}

/** A fresh key pair made by OpenSSH's ssh-keygen, as a user would make one. */
export function makeKey(type: 'ed25519' | 'ecdsa' | 'rsa' = 'ed25519', dir = temporaryDir('git-sshd-key-')): ClientKey {
  const path = join(dir, `id_${type}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', `${type}@test`, '-f', path]);
  return { path, publicLine: readFileSync(`${path}.pub`, 'utf8').trim() };
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The OpenSSH client options every test uses: no user config, no prompts; host keys
 * unchecked, or checked strictly against `knownHosts` when given.
 */
export function sshArgs(key: ClientKey, port: number, extra: string[] = [], knownHosts?: string): string[] {
  const hostKeyChecking = knownHosts
    ? ['-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null']
    : ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'];
  return [
    '-F', '/dev/null',
    '-i', key.path,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    '-o', 'BatchMode=yes',
    ...hostKeyChecking,
    '-o', 'LogLevel=ERROR',
    '-o', 'ConnectTimeout=60',
    '-p', String(port),
    ...extra,
  ];
}

export function sshCommand(key: ClientKey, port: number): string {
  return ['ssh', ...sshArgs(key, port)].join(' ');
}

/** Commands `run` started that still run. */
const running = new Set<ChildProcess>();

/** Kills every command `run` started that still runs, with its whole process group (for after hooks). */
export async function killProcessGroups(): Promise<void> {
  await Promise.all([...running].map((child) => killGroup(child)));
  running.clear();
}

/**
 * Runs a command in a process group of its own, killed whole (what a wrapper or git
 * started included) on timeout and once it exits. `processGroup` is kept for callers that
 * ask for it explicitly; every command gets its own group.
 */
export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; input?: string; timeoutMs?: number; processGroup?: boolean } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawnGroup(command, args, {
      cwd: options.cwd,
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    running.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => err.push(chunk));
    // A bound, not an expectation: the whole group goes (git and the ssh it started).
    const timer = setTimeout(() => void killGroup(child), options.timeoutMs ?? 120_000);
    child.on('error', (error) => {
      running.delete(child);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    // A command that exits without reading its input closes the pipe first: EPIPE is expected.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(options.input ?? '');
  });
}

/** `ssh git@127.0.0.1 <command>` with the stock OpenSSH client. */
export function ssh(key: ClientKey, port: number, command: string[] = [], extra: string[] = [], user = 'git'): Promise<RunResult> {
  return run('ssh', [...sshArgs(key, port, extra), `${user}@127.0.0.1`, ...command]);
}

/** git with GIT_SSH_COMMAND pointing at our server's key and port. */
export function git(key: ClientKey, port: number, args: string[], cwd?: string): Promise<RunResult> {
  return run('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', '-c', 'init.defaultBranch=main', ...args], {
    ...(cwd ? { cwd } : {}),
    env: { GIT_SSH_COMMAND: sshCommand(key, port), GIT_CONFIG_NOSYSTEM: '1', HOME: process.env.HOME ?? '/tmp' },
    timeoutMs: 600_000,
  });
}

/**
 * git whose ssh output reaches it at `bytesPerSecond` at most, so that a transfer lasts
 * long enough to be in flight when a test signals the server. ssh's own exit status is kept.
 */
export function slowGit(key: ClientKey, port: number, bytesPerSecond: number, args: string[], cwd?: string): Promise<RunResult> {
  const throttle = join(import.meta.dirname, 'throttle.mjs');
  const pipeline = `set -o pipefail; ${sshCommand(key, port)} "$@" | ${process.execPath} ${throttle} ${bytesPerSecond}`;
  return run('git', ['-c', 'init.defaultBranch=main', ...args], {
    ...(cwd ? { cwd } : {}),
    env: { GIT_SSH_COMMAND: `bash -c '${pipeline}' slow-ssh`, GIT_CONFIG_NOSYSTEM: '1', HOME: process.env.HOME ?? '/tmp' },
    timeoutMs: 600_000,
  });
}

export function url(port: number, repo: string): string {
  return `ssh://git@127.0.0.1:${port}/${repo}`;
}

/** Git's own plumbing, locally (no SSH): to inspect repositories on disk. */
export function gitLocal(args: string[], cwd?: string): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1' } }).trim();
}

/** A local work tree with one commit, ready to push. */
export function makeWorkTree(files: Record<string, string> = { 'README.md': 'hello\n' }): string {
  const dir = temporaryDir('git-sshd-work-');
  gitLocal(['init', '-q', '-b', 'main', dir]);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  gitLocal(['add', '.'], dir);
  gitLocal(['-c', 'user.name=Test', '-c', 'user.email=test@example.com', 'commit', '-q', '-m', 'first'], dir);
  return dir;
}
