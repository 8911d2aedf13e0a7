/**
 * Clone and ls-remote timings: git-sshd beside OpenSSH's sshd on the same machine, with
 * `git clone --no-local file://` as the floor (no SSH at all). Prints a table.
 *
 *   npm run bench                       # 50 MB repository, 5 runs each
 *   BENCH_MB=100 BENCH_RUNS=3 npm run bench
 *
 * Needs openssh-server (installed with apt when missing and run as root).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = resolve(import.meta.dirname, '..');
const MB = Number(process.env.BENCH_MB ?? 50);
const RUNS = Math.max(1, Math.min(20, Number(process.env.BENCH_RUNS ?? 5)));
const LS_RUNS = 20;
const work = mkdtempSync(join(tmpdir(), 'git-sshd-bench-'));
const children: ChildProcess[] = [];

function sh(command: string, args: string[], cwd?: string): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function ensureSshd(): string {
  if (existsSync('/usr/sbin/sshd')) return '/usr/sbin/sshd';
  if (process.getuid?.() !== 0) throw new Error('openssh-server is not installed (apt-get install openssh-server)');
  sh('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'openssh-server']);
  return '/usr/sbin/sshd';
}

function makeRepository(): string {
  const tree = join(work, 'tree');
  sh('git', ['init', '-q', '-b', 'main', tree]);
  const files = 10;
  for (let i = 0; i < files; i++) writeFileSync(join(tree, `blob-${i}.bin`), randomBytes(Math.round((MB * 1024 * 1024) / files)));
  for (let i = 0; i < 200; i++) writeFileSync(join(tree, `src-${i}.txt`), `line ${i}\n`.repeat(50));
  sh('git', ['add', '.'], tree);
  sh('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', 'commit', '-q', '-m', 'bench'], tree);
  const bare = join(work, 'repos', 'bench', 'repo.git');
  mkdirSync(join(work, 'repos', 'bench'), { recursive: true });
  sh('git', ['clone', '-q', '--bare', tree, bare]);
  sh('git', ['repack', '-adq'], bare);
  return bare;
}

async function startGitSshd(publicKey: string): Promise<number> {
  const data = join(work, 'data');
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'users.yml'), `users:\n  - name: bench\n    keys: ["${publicKey}"]\n    access: { "*": admin }\n`);
  const config = join(work, 'git-sshd.yml');
  writeFileSync(
    config,
    [
      'log_level: warn',
      'sshd:',
      '  listen: "127.0.0.1:0"',
      '  web_listen: ""',
      'local:',
      `  data_dir: ${data}`,
      `  repos_dir: ${join(work, 'repos')}`,
    ].join('\n'),
  );
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'main.js'), '--config', config], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, GIT_SSHD_LOG_LEVEL: 'info' } });
  children.push(child);
  for await (const line of createInterface({ input: child.stdout! })) {
    const entry = JSON.parse(line) as { msg: string; port?: number };
    if (entry.msg === 'listening') {
      child.stdout!.resume();
      return entry.port as number;
    }
  }
  throw new Error('git-sshd did not start');
}

/**
 * OpenSSH runs the command through the user's login shell, and Debian's bash sources
 * ~/.bashrc even for `ssh host command`: root's (pyenv, nvm, ...) would be timed too. A
 * dedicated user with /bin/sh measures sshd itself.
 */
const OPENSSH_USER = 'git-sshd-bench';

function ensureBenchUser(home: string): void {
  if (spawnSync('id', [OPENSSH_USER]).status !== 0) {
    sh('useradd', ['--no-create-home', '--shell', '/bin/sh', '--home-dir', home, OPENSSH_USER]);
  }
  sh('usermod', ['--password', '*', '--home', home, OPENSSH_USER]);
}

async function startOpenSsh(publicKey: string): Promise<number> {
  const sshd = ensureSshd();
  ensureBenchUser(work);
  chmodSync(work, 0o755);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = join(work, 'openssh');
  mkdirSync(dir);
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
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
    ].join('\n'),
  );
  const child = spawn(sshd, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' });
  children.push(child);
  for (let attempt = 0; attempt < 100; attempt++) {
    const probe = spawnSync('ssh-keyscan', ['-p', String(port), '127.0.0.1'], { encoding: 'utf8' });
    if (probe.stdout.includes('ssh-ed25519')) return port;
    await new Promise((done) => setTimeout(done, 50));
  }
  throw new Error('sshd did not start');
}


function timeMs(command: string, args: string[], env: Record<string, string> = {}): number {
  const started = performance.now();
  const result = spawnSync(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
  return performance.now() - started;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

async function main(): Promise<void> {
  const key = join(work, 'id_ed25519');
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const publicKey = sh('cat', [`${key}.pub`]);
  const bare = makeRepository();
  const ours = await startGitSshd(publicKey);
  const openssh = await startOpenSsh(publicKey);
  const ssh = (port: number, cipher?: string, kex?: string): string =>
    [
      'ssh -F /dev/null -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR',
      `-i ${key} -p ${port}`,
      cipher ? `-c ${cipher}` : '',
      kex ? `-o KexAlgorithms=${kex}` : '',
    ].join(' ');
  // git refuses repositories owned by someone else: OpenSSH's user gets its own copy.
  const opensshRepo = join(work, 'openssh', 'repo.git');
  sh('git', ['clone', '-q', '--bare', '--no-local', bare, opensshRepo]);
  sh('chown', ['-R', OPENSSH_USER, opensshRepo]);
  const opensshUrl = `ssh://${OPENSSH_USER}@127.0.0.1:${openssh}${opensshRepo}`;

  const cases: Array<{ name: string; url: string; env: Record<string, string> }> = [
    { name: 'file:// (floor, no SSH)', url: `file://${bare}`, env: {} },
    { name: 'OpenSSH sshd, its defaults (sntrup761, chacha20)', url: opensshUrl, env: { GIT_SSH_COMMAND: ssh(openssh) } },
    {
      name: 'OpenSSH sshd, curve25519 + aes128-gcm',
      url: opensshUrl,
      env: { GIT_SSH_COMMAND: ssh(openssh, 'aes128-gcm@openssh.com', 'curve25519-sha256') },
    },
  ];
  for (const cipher of ['aes128-gcm@openssh.com', 'aes128-ctr', 'chacha20-poly1305@openssh.com']) {
    cases.push({ name: `git-sshd, ${cipher}`, url: `ssh://git@127.0.0.1:${ours}/bench/repo.git`, env: { GIT_SSH_COMMAND: ssh(ours, cipher) } });
  }
  cases.push({ name: 'git-sshd, default offer', url: `ssh://git@127.0.0.1:${ours}/bench/repo.git`, env: { GIT_SSH_COMMAND: ssh(ours) } });

  console.log(`# clone of a ${MB} MB repository (random blobs + 200 small files), median of ${RUNS}; ls-remote median of ${LS_RUNS}`);
  console.log(`# ${new Date().toISOString()}, ${sh('git', ['--version'])}, ${sh('ssh', ['-V']) || spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim()}, node ${process.version}`);
  let floor = 0;
  const rows: string[][] = [];
  for (const testCase of cases) {
    const clones: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const target = join(work, `clone-${run}`);
      clones.push(timeMs('git', ['clone', '-q', '--no-local', '--bare', testCase.url, target], testCase.env));
      rmSync(target, { recursive: true, force: true });
    }
    const lsRemote: number[] = [];
    for (let run = 0; run < LS_RUNS; run++) {
      lsRemote.push(timeMs('git', ['-c', 'protocol.version=2', 'ls-remote', testCase.url], testCase.env));
    }
    const clone = median(clones);
    if (floor === 0) floor = clone;
    rows.push([testCase.name, clone.toFixed(0), (clone / floor).toFixed(2), `${((MB / clone) * 1000).toFixed(0)}`, median(lsRemote).toFixed(1)]);
  }
  const header = ['case', 'clone ms', 'x floor', 'MB/s', 'ls-remote v2 ms'];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, i) => cell.padEnd(widths[i] as number)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  });
