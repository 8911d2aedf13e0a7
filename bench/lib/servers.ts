import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { CpuAccount } from './procfs.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

export interface RunningServer {
  readonly name: string;
  readonly port: number;
  /** The server's root process (git-sshd's node; OpenSSH's listening sshd). */
  readonly pid: number;
  /** `ssh://...` URL prefix for a repository path. */
  url(repo: string): string;
  /** The repository argument as a client sends it (git-sshd: a name; OpenSSH: a path). */
  repoArg(repo: string): string;
  readonly user: string;
  /** CPU seconds the server's processes have used so far, exited ones included. */
  cpuSeconds(): number;
  /** The kernel's share of cpuSeconds (system time), where the cgroup can tell it. */
  systemSeconds(): number | undefined;
  /** How cpuSeconds is measured. */
  readonly cpuSource: string;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess, account: CpuAccount): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    account.close();
  };
}

export interface GitSshdOptions {
  /** Shown in tables: 'git-sshd' unless given. */
  readonly name?: string;
  /** Another build's root (its dist/ and node_modules/), for A/B runs of two versions. */
  readonly root?: string;
  /** Extra node options, e.g. --cpu-prof. */
  readonly nodeArgs?: readonly string[];
  /** Lines the server prints that are not its JSON log (e.g. --trace-gc's). */
  readonly onOtherOutput?: (line: string) => void;
}

/** git-sshd from dist/, the embedded backend, one admin user, repositories in `reposDir`. */
export async function startGitSshd(work: string, publicKey: string, reposDir: string, sshd: Record<string, string> = {}, options: GitSshdOptions = {}): Promise<RunningServer> {
  const name = options.name ?? 'git-sshd';
  const data = join(work, name === 'git-sshd' ? 'git-sshd-data' : `${name}-data`);
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'users.yml'), `users:\n  - name: bench\n    keys: ["${publicKey}"]\n    access: { "*": admin }\n`);
  const config = join(work, `${name}.yml`);
  const extra = Object.entries({ max_startups: '"1000"', ...sshd }).map(([key, value]) => `  ${key}: ${value}`);
  writeFileSync(
    config,
    ['log_level: info', 'sshd:', '  listen: "127.0.0.1:0"', '  web_listen: "127.0.0.1:0"', ...extra, 'local:', `  data_dir: ${data}`, `  repos_dir: ${reposDir}`, ''].join('\n'),
  );
  // Logs go nowhere: a benchmark must not time a terminal, nor grow a buffer.
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), join(options.root ?? ROOT, 'dist', 'main.js'), '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  const account = new CpuAccount(name, child.pid!);
  let port = 0;
  const lines = createInterface({ input: child.stdout! });
  const other = options.onOtherOutput;
  if (other) lines.on('line', (line) => void (line.startsWith('{') || other(line)));
  for await (const line of lines) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg: string; port?: number };
    if (entry.msg === 'listening') {
      port = entry.port!;
      break;
    }
  }
  if (!port) throw new Error('git-sshd did not start');
  if (!other) child.stdout!.resume();
  return {
    name,
    port,
    pid: child.pid!,
    user: 'git',
    url: (repo) => `ssh://git@127.0.0.1:${port}/${repo}`,
    repoArg: (repo) => repo,
    cpuSeconds: () => account.seconds(),
    systemSeconds: () => account.split()?.system,
    cpuSource: account.source,
    stop: stopper(child, account),
  };
}

/**
 * OpenSSH runs commands through the user's login shell, and Debian's bash sources
 * ~/.bashrc even for `ssh host command`: root's would be timed too. A dedicated user with
 * /bin/sh measures sshd itself.
 */
export const OPENSSH_USER = 'git-sshd-bench';

/** Debian's sshd on loopback with its own config, host key and authorized key, as OPENSSH_USER. */
export async function startOpenSsh(work: string, publicKey: string, reposDir: string): Promise<RunningServer> {
  if (!existsSync('/usr/sbin/sshd')) {
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'openssh-server'], { stdio: 'ignore' });
  }
  if (spawnSync('id', [OPENSSH_USER]).status !== 0) {
    execFileSync('useradd', ['--no-create-home', '--shell', '/bin/sh', '--home-dir', work, OPENSSH_USER]);
  }
  execFileSync('usermod', ['--password', '*', '--home', work, OPENSSH_USER]);
  chmodSync(work, 0o755);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = join(work, 'openssh');
  mkdirSync(dir, { recursive: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  writeFileSync(join(dir, 'authorized_keys'), `${publicKey}\n`);
  const port = 20000 + Math.floor(Math.random() * 20000);
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PidFile none',
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      // The benchmarks open many connections at once; OpenSSH's default (10:30:100) would refuse them.
      'MaxStartups 1000',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  execFileSync('chown', ['-R', OPENSSH_USER, reposDir]);
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' });
  const account = new CpuAccount('openssh', child.pid!);
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const probe = spawnSync('ssh-keyscan', ['-p', String(port), '127.0.0.1'], { encoding: 'utf8' });
    if (probe.stdout.includes('ssh-ed25519')) break;
    await new Promise((done) => setTimeout(done, 50));
  }
  return {
    name: 'OpenSSH',
    port,
    pid: child.pid!,
    user: OPENSSH_USER,
    url: (repo) => `ssh://${OPENSSH_USER}@127.0.0.1:${port}${join(reposDir, repo)}`,
    repoArg: (repo) => join(reposDir, repo),
    cpuSeconds: () => account.seconds(),
    systemSeconds: () => account.split()?.system,
    cpuSource: account.source,
    stop: stopper(child, account),
  };
}

/** The OpenSSH client command for git, with the benchmark's key and no host key checks. */
export function sshCommand(key: string, port: number, extra: string[] = []): string {
  return [
    'ssh -F /dev/null -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes -o StrictHostKeyChecking=no',
    `-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -i ${key} -p ${port}`,
    ...extra,
  ].join(' ');
}
