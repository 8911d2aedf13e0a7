import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { makeKey, run, temporaryDir, type RunResult } from './client.js';
import { ROOT } from './server.js';

/** Where scripts/interop-tools.sh put the clients it built (see there). */
export const INTEROP_TOOLS = process.env.GIT_SSHD_INTEROP ?? join(homedir(), '.cache', 'git-sshd', 'interop');
const PYTHON = join(INTEROP_TOOLS, 'venv', 'bin', 'python');
const PYCLIENT = join(ROOT, 'test', 'interop', 'pyclient.py');

/** One user key in every format the clients read: OpenSSH, PuTTY (.ppk), Dropbear. */
export interface InteropKey {
  readonly type: 'ed25519' | 'rsa';
  readonly path: string;
  readonly publicLine: string;
  readonly ppk: string;
  readonly dropbear: string;
}

export function makeInteropKey(type: 'ed25519' | 'rsa'): InteropKey {
  const key = makeKey(type);
  const ppk = `${key.path}.ppk`;
  const dropbear = `${key.path}.dropbear`;
  execFileSync('puttygen', [key.path, '-O', 'private', '-o', ppk], { stdio: 'ignore' });
  execFileSync('dropbearconvert', ['openssh', 'dropbear', key.path, dropbear], { stdio: 'ignore' });
  return { type, path: key.path, publicLine: key.publicLine, ppk, dropbear };
}

export interface ClientOptions {
  /** Key exchange algorithms in the client's order of preference (its own names). */
  readonly kex?: readonly string[];
  /** Have the client start a key re-exchange after this many bytes. */
  readonly rekeyBytes?: number;
  /** Extra arguments placed before the destination. */
  readonly extra?: readonly string[];
}

/**
 * An SSH client the tests drive as git does: `argv` runs a command on git@127.0.0.1;
 * `gitSshCommand` is what core.sshCommand gets, with the variant git must speak to it.
 */
export interface InteropClient {
  readonly name: string;
  argv(key: InteropKey, port: number, options?: ClientOptions): string[];
  gitSshCommand(key: InteropKey, options?: ClientOptions): { command: string; variant: 'ssh' | 'plink' };
  /** Environment the client needs (PuTTY's settings live under $HOME). */
  readonly env: Record<string, string>;
}

/** PuTTY keeps settings in saved sessions only: one per key exchange order, under a HOME of its own. */
class Plink implements InteropClient {
  readonly name = 'PuTTY plink';
  readonly env: Record<string, string>;
  private sessions = 0;

  constructor(private readonly hostKeyFingerprints: readonly string[]) {
    this.env = { HOME: temporaryDir('git-sshd-putty-') };
  }

  private base(key: InteropKey, options: ClientOptions): string[] {
    const args = ['-batch', '-ssh', '-noagent', '-i', key.ppk];
    for (const fingerprint of this.hostKeyFingerprints) args.push('-hostkey', fingerprint);
    if (options.kex || options.rekeyBytes) args.unshift('-load', this.savedSession(options));
    return [...args, ...(options.extra ?? [])];
  }

  private savedSession(options: ClientOptions): string {
    const name = `interop${++this.sessions}`;
    const dir = join(this.env.HOME!, '.putty', 'sessions');
    mkdirSync(dir, { recursive: true });
    const lines = [];
    if (options.kex) lines.push(`KEX=${options.kex.join(',')}`);
    if (options.rekeyBytes) lines.push(`RekeyBytes=${options.rekeyBytes}`);
    writeFileSync(join(dir, name), `${lines.join('\n')}\n`);
    return name;
  }

  argv(key: InteropKey, port: number, options: ClientOptions = {}): string[] {
    return ['plink', ...this.base(key, options), '-P', String(port), 'git@127.0.0.1'];
  }

  gitSshCommand(key: InteropKey, options: ClientOptions = {}): { command: string; variant: 'plink' } {
    return { command: ['plink', ...this.base(key, options)].join(' '), variant: 'plink' };
  }
}

/** A client that takes ssh's own `-p port user@host command` after its options. */
function sshLike(name: string, prefix: (key: InteropKey, options: ClientOptions) => string[]): InteropClient {
  return {
    name,
    env: {},
    argv: (key, port, options = {}) => [...prefix(key, options), ...(options.extra ?? []), '-p', String(port), 'git@127.0.0.1'],
    gitSshCommand: (key, options = {}) => ({ command: [...prefix(key, options), ...(options.extra ?? [])].join(' '), variant: 'ssh' }),
  };
}

export const OPENSSH_OPTIONS = [
  '-F', '/dev/null', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes',
  '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=30',
];

export const openssh = sshLike('OpenSSH', (key, options) => [
  'ssh', ...OPENSSH_OPTIONS, '-i', key.path,
  ...(options.kex ? ['-o', `KexAlgorithms=${options.kex.join(',')}`] : []),
  ...(options.rekeyBytes ? ['-o', `RekeyLimit=${options.rekeyBytes}`] : []),
]);

/** -T: no terminal; -y -y: no host key check (loopback). Dropbear has no setting for key exchange or rekey. */
export const dropbear = sshLike('Dropbear dbclient', (key) => ['dbclient', '-T', '-y', '-y', '-i', key.dropbear]);

function python(lib: 'paramiko' | 'asyncssh', name: string): InteropClient {
  return sshLike(name, (key, options) => [
    PYTHON, PYCLIENT, '--lib', lib, '-i', key.path,
    ...(options.kex ? ['--kex', options.kex.join(',')] : []),
    ...(options.rekeyBytes ? ['--rekey-bytes', String(options.rekeyBytes)] : []),
  ]);
}

export const paramiko = python('paramiko', 'Paramiko');
export const asyncssh = python('asyncssh', 'AsyncSSH');

export const goClient = sshLike("Go's x/crypto/ssh", (key, options) => [
  join(INTEROP_TOOLS, 'bin', 'goclient'), '-i', key.path,
  ...(options.kex ? ['-kex', options.kex.join(',')] : []),
  ...(options.rekeyBytes ? ['-rekey-bytes', String(options.rekeyBytes)] : []),
]);

export const libssh = sshLike('libssh', (key, options) => [
  join(INTEROP_TOOLS, 'bin', 'libsshclient'), '-i', key.path,
  ...(options.kex ? ['-kex', options.kex.join(',')] : []),
]);

export function plink(hostKeyFingerprints: readonly string[]): InteropClient {
  return new Plink(hostKeyFingerprints);
}

/** SHA256 fingerprints of the host keys a test server generated in its data dir. */
export function hostKeyFingerprints(dataDir: string): string[] {
  return readdirSync(dataDir)
    .filter((name) => /^ssh_host_.*_key\.pub$/.test(name))
    .map((name) => execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dataDir, name)], { encoding: 'utf8' }).split(' ')[1]!);
}

/** Says what is missing when scripts/interop-tools.sh has not run (npm test runs it). */
export function assertInteropTools(): void {
  const needed = [PYTHON, join(INTEROP_TOOLS, 'bin', 'goclient'), join(INTEROP_TOOLS, 'bin', 'libsshclient')];
  const missing = needed.filter((path) => !existsSync(path));
  for (const tool of ['plink', 'puttygen', 'dbclient', 'dropbearconvert']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      missing.push(tool);
    }
  }
  if (missing.length > 0) throw new Error(`interop clients missing (run bash scripts/interop-tools.sh): ${missing.join(', ')}`);
}

/** A client run in a process group of its own (see `run`), so nothing it starts outlives the test. */
export function runGroup(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return run(command, args, { timeoutMs: 90_000, ...options, processGroup: true });
}

/** git with core.sshCommand set to one of the clients above. */
export function gitVia(client: InteropClient, key: InteropKey, args: string[], options: { cwd?: string; ssh?: ClientOptions; sshCommand?: string } = {}): Promise<RunResult> {
  const ssh = client.gitSshCommand(key, options.ssh);
  return runGroup(
    'git',
    ['-c', `ssh.variant=${ssh.variant}`, '-c', `core.sshCommand=${options.sshCommand ?? ssh.command}`, '-c', 'user.name=Test', '-c', 'user.email=test@example.com', '-c', 'init.defaultBranch=main', ...args],
    {
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: { GIT_CONFIG_NOSYSTEM: '1', HOME: process.env.HOME ?? '/tmp', ...client.env },
      timeoutMs: 240_000,
    },
  );
}
