/**
 * The benchmark suite: git-sshd and OpenSSH's sshd side by side on this machine, in the
 * same run, with the same client, alternating. Prints every table and writes
 * docs/benchmarks.md (regenerated here, never edited by hand).
 *
 *   npm run bench                     # all five, ~100 MB repository
 *   BENCH_MB=20 BENCH_SCALE=1000 npm run bench     # a quicker pass
 *
 * Needs root (it creates the OpenSSH user and raises the open-file limit) and
 * openssh-server (installed with apt when missing).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hold, release } from './lib/holder.js';
import { kexCost, kexServerCrypto } from './lib/kex.js';
import { treePssKiB, treeRssKiB } from './lib/procfs.js';
import { BENCH_REPO as REPO, prepare } from './lib/setup.js';
import { startGitSshd, startOpenSsh, sshCommand, type RunningServer } from './lib/servers.js';
import { median, percentile, table } from './lib/stats.js';
import { runBench } from './lib/main.js';

const ROOT = resolve(import.meta.dirname, '..');
const env = (name: string, fallback: number, max: number): number => Math.max(1, Math.min(max, Number(process.env[name] ?? fallback)));
const MB = env('BENCH_MB', 100, 1000);
const LS_RUNS = env('BENCH_LS_RUNS', 30, 500);
const PARALLEL_SECONDS = env('BENCH_PARALLEL_SECONDS', 10, 120);
const CLONE_RUNS = env('BENCH_CLONE_RUNS', 5, 20);
const IDLE = env('BENCH_IDLE', 1000, 10_000);
const SESSIONS = env('BENCH_SESSIONS', 200, 2000);
const SCALE = env('BENCH_SCALE', 5000, 20_000);
const DRAIN_RUNS = env('BENCH_DRAIN_RUNS', 5, 50);
const KEX_RUNS = env('BENCH_KEX_RUNS', 100, 2000);

const work = mkdtempSync(join(tmpdir(), 'git-sshd-suite-'));
let servers0CpuSource = '';
const sections: string[] = [];
const verdicts: Array<[string, string, boolean]> = [];

function section(title: string, body: string): void {
  const text = `## ${title}\n\n${body}\n`;
  sections.push(text);
  console.log(`\n${text}`);
}

function timed(command: string, args: string[], extraEnv: Record<string, string> = {}): number {
  const started = performance.now();
  const result = spawnSync(command, args, { env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', ...extraEnv }, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr}`);
  return performance.now() - started;
}

const ratio = (ours: number, theirs: number): string => `${(ours / theirs).toFixed(2)}x`;

/** 1. Handshake + authentication + `git ls-remote`: latency, and throughput per server CPU-second. */
async function latency(servers: RunningServer[], key: string): Promise<void> {
  const gitEnv = (server: RunningServer) => ({ GIT_SSH_COMMAND: sshCommand(key, server.port) });
  const lsRemote = (server: RunningServer) => timed('git', ['-c', 'protocol.version=2', 'ls-remote', server.url(REPO)], gitEnv(server));
  const times = new Map(servers.map((server) => [server.name, [] as number[]]));
  for (const server of servers) lsRemote(server);
  for (let run = 0; run < LS_RUNS; run += 1) for (const server of servers) times.get(server.name)!.push(lsRemote(server));

  const throughput = new Map<string, { ops: number; cpu: number }>();
  for (const server of servers) {
    const cpuBefore = server.cpuSeconds();
    const deadline = performance.now() + PARALLEL_SECONDS * 1000;
    let ops = 0;
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 100_000 && performance.now() < deadline; i += 1) {
        const code = await new Promise<number | null>((done) => {
          const child = spawn('git', ['-c', 'protocol.version=2', 'ls-remote', server.url(REPO)], { env: { ...process.env, ...gitEnv(server) }, stdio: 'ignore' });
          child.once('exit', done);
        });
        if (code === 0) ops += 1;
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    throughput.set(server.name, { ops, cpu: server.cpuSeconds() - cpuBefore });
  }
  const [ours, theirs] = servers.map((server) => server.name) as [string, string];
  const row = (name: string): string[] => {
    const t = times.get(name)!;
    const { ops, cpu } = throughput.get(name)!;
    return [name, median(t).toFixed(1), percentile(t, 90).toFixed(1), (ops / PARALLEL_SECONDS).toFixed(1), cpu.toFixed(2), (ops / cpu).toFixed(1)];
  };
  const perCpu = (name: string): number => throughput.get(name)!.ops / throughput.get(name)!.cpu;
  section(
    '1. Handshake + authentication + `git ls-remote` (protocol v2)',
    `${LS_RUNS} sequential runs each, alternating; then 16 parallel clients for ${PARALLEL_SECONDS} s per server. The OpenSSH client throughout. Server CPU is user + system time of the server's whole process tree (OpenSSH's per-connection processes, git-sshd's git processes).\n\n` +
      table(['server', 'median ms', 'p90 ms', 'ops/s (16 parallel)', 'server CPU s', 'ops per server CPU-second'], [row(ours), row(theirs)]) +
      `\n\ngit-sshd / OpenSSH: median latency ${ratio(median(times.get(ours)!), median(times.get(theirs)!))}, ops per CPU-second ${ratio(perCpu(ours), perCpu(theirs))}.`,
  );
  verdicts.push(['ops per server CPU-second >= 2x OpenSSH', ratio(perCpu(ours), perCpu(theirs)), perCpu(ours) >= 2 * perCpu(theirs)]);
  verdicts.push(['sequential latency <= OpenSSH', `${median(times.get(ours)!).toFixed(1)} vs ${median(times.get(theirs)!).toFixed(1)} ms`, median(times.get(ours)!) <= median(times.get(theirs)!)]);
}

/** 2. Clone (`--mirror`) and push of the ~100 MB repository, with the file:// floor. */
function transfer(servers: RunningServer[], key: string, source: string): void {
  const clones = new Map<string, number[]>([['file:// (floor)', []], ...servers.map((s) => [s.name, []] as [string, number[]])]);
  const pushes = new Map(servers.map((s) => [s.name, [] as number[]]));
  const cloneCpu = new Map(servers.map((s) => [s.name, [] as number[]]));
  for (let run = 0; run < CLONE_RUNS; run += 1) {
    const target = join(work, 'clone');
    rmSync(target, { recursive: true, force: true });
    clones.get('file:// (floor)')!.push(timed('git', ['clone', '-q', '--mirror', `file://${source}`, target]));
    for (const server of servers) {
      rmSync(target, { recursive: true, force: true });
      const cpuBefore = server.cpuSeconds();
      clones.get(server.name)!.push(timed('git', ['clone', '-q', '--mirror', server.url(REPO), target], { GIT_SSH_COMMAND: sshCommand(key, server.port) }));
      // The server's per-connection processes exit just after the client does: let them be reaped.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      cloneCpu.get(server.name)!.push(server.cpuSeconds() - cpuBefore);
      // A push of the same size into a new, empty repository.
      const name = `bench/push-${run}.git`;
      if (server.name === 'OpenSSH') {
        execFileSync('git', ['init', '-q', '--bare', server.repoArg(name)]);
        execFileSync('chown', ['-R', server.user, server.repoArg(name)]);
      }
      pushes.get(server.name)!.push(timed('git', ['-C', target, 'push', '-q', server.url(name), 'refs/heads/main:refs/heads/main'], { GIT_SSH_COMMAND: sshCommand(key, server.port) }));
    }
  }
  const mbps = (ms: number): string => ((MB / ms) * 1000).toFixed(1);
  const floor = median(clones.get('file:// (floor)')!);
  const rows = [...clones].map(([name, t]) => [
    name,
    median(t).toFixed(0),
    mbps(median(t)),
    (median(t) / floor).toFixed(2),
    cloneCpu.has(name) ? median(cloneCpu.get(name)!).toFixed(2) : '',
    pushes.has(name) ? median(pushes.get(name)!).toFixed(0) : '',
    pushes.has(name) ? mbps(median(pushes.get(name)!)) : '',
  ]);
  const [ours, theirs] = servers.map((server) => server.name) as [string, string];
  const ourRate = MB / median(clones.get(ours)!);
  const theirRate = MB / median(clones.get(theirs)!);
  section(
    `2. Clone and push of a ${MB} MB repository`,
    `\`git clone --mirror\` and a push of the same history into a new repository, median of ${CLONE_RUNS}; the repository is generated deterministically (AES-CTR keystream from a fixed seed: incompressible).\n\n` +
      table(['case', 'clone ms', 'clone MB/s', 'x floor', 'server CPU s per clone (git included)', 'push ms', 'push MB/s'], rows) +
      `\n\ngit-sshd / OpenSSH clone throughput: ${ratio(ourRate, theirRate)}.`,
  );
  verdicts.push(['clone throughput >= 0.95x OpenSSH', ratio(ourRate, theirRate), ourRate >= 0.95 * theirRate]);
}

/** 3. Memory per idle authenticated connection, and per waiting upload-pack session. */
async function memory(servers: RunningServer[], privateKey: Buffer): Promise<void> {
  const rows: string[][] = [];
  const perConnection = new Map<string, number>();
  for (const server of servers) {
    for (const [label, count, session] of [
      ['idle authenticated connections', IDLE, undefined],
      ['connections with upload-pack waiting', SESSIONS, server.repoArg(REPO)],
    ] as const) {
      const before = { pss: treePssKiB(server.pid), rss: treeRssKiB(server.pid) };
      const held = await hold(server, privateKey, count, session ? { session } : {});
      await new Promise((done) => setTimeout(done, 1_000));
      const after = { pss: treePssKiB(server.pid), rss: treeRssKiB(server.pid) };
      const open = Math.max(1, held.clients.length);
      const per = (after.pss - before.pss) / open;
      if (!session) perConnection.set(server.name, per);
      rows.push([server.name, label, `${held.clients.length} of ${count}`, (before.pss / 1024).toFixed(0), (after.pss / 1024).toFixed(0), per.toFixed(0), ((after.rss - before.rss) / open).toFixed(0)]);
      await release(held);
      await new Promise((done) => setTimeout(done, 1_000));
    }
  }
  const [ours, theirs] = servers.map((server) => server.name) as [string, string];
  section(
    '3. Memory per connection',
    'Connections held open from one ssh2 client process; memory of the server\'s whole process tree before and after, per connection, as PSS (shared pages divided among the processes sharing them) and, for reference, summed RSS (shared pages counted in every process). A waiting session includes its git-upload-pack process on both servers.\n\n' +
      table(['server', 'held', 'open', 'PSS before MiB', 'PSS after MiB', 'PSS KiB per connection', 'RSS KiB per connection'], rows),
  );
  verdicts.push([
    'memory per idle connection <= 1/10 of OpenSSH',
    `${perConnection.get(ours)!.toFixed(0)} vs ${perConnection.get(theirs)!.toFixed(0)} KiB (${ratio(perConnection.get(ours)!, perConnection.get(theirs)!)})`,
    perConnection.get(ours)! * 10 <= perConnection.get(theirs)!,
  ]);
}

/** 4. Scale: SCALE concurrent authenticated connections to git-sshd. */
async function scale(server: RunningServer, privateKey: Buffer): Promise<void> {
  const before = treeRssKiB(server.pid);
  const started = performance.now();
  const held = await hold(server, privateKey, SCALE, { parallel: 50 });
  const seconds = (performance.now() - started) / 1000;
  const after = treeRssKiB(server.pid);
  section(
    `4. Scale: ${SCALE} concurrent authenticated connections`,
    table(
      ['server', 'served', 'failed', 'time to open s', 'RSS MiB', 'KiB per connection'],
      [[server.name, String(held.clients.length), `${held.failed}${held.firstError ? ` (${held.firstError})` : ''}`, seconds.toFixed(1), (after / 1024).toFixed(0), ((after - before) / Math.max(1, held.clients.length)).toFixed(0)]],
    ),
  );
  verdicts.push([`${SCALE} connections under 1 GiB RSS, every one served`, `${(after / 1024).toFixed(0)} MiB, ${held.clients.length}/${SCALE}`, after < 1024 * 1024 && held.clients.length === SCALE]);
  await release(held);
}

/**
 * 5. Drain: SIGTERM -> readiness 502 (with one idle authenticated connection, which keeps
 * the drain going for its 1 s idle allowance), and how long a server with no connection
 * takes to exit.
 */
async function drain(publicKey: string, privateKey: Buffer): Promise<void> {
  const readiness: number[] = [];
  const exits: number[] = [];
  for (let run = 0; run < DRAIN_RUNS; run += 1) {
    for (const withConnection of [true, false]) {
      const dir = join(work, `drain-${run}-${withConnection}`);
      mkdirSync(dir);
      const server = await startGitSshd(dir, publicKey, join(dir, 'repos'));
      const port = await monitoringPort(server);
      const held = withConnection ? await hold(server, privateKey, 1) : undefined;
      const exited = new Promise<void>((done) => {
        const timer = setInterval(() => {
          try {
            process.kill(server.pid, 0);
          } catch {
            clearInterval(timer);
            done();
          }
        }, 1);
      });
      const signalled = performance.now();
      process.kill(server.pid, 'SIGTERM');
      if (withConnection) {
        for (let attempt = 0; attempt < 2000; attempt += 1) {
          const status = await fetch(`http://127.0.0.1:${port}/start`).then((res) => res.status, () => 0);
          if (status === 502) {
            readiness.push(performance.now() - signalled);
            break;
          }
        }
      } else {
        await exited;
        exits.push(performance.now() - signalled);
      }
      if (held) await release(held);
      await server.stop();
    }
  }
  section(
    '5. Drain',
    `${DRAIN_RUNS} runs each: readiness with one idle connection open, exit with none.\n\n` +
      table(['', 'median ms', 'max ms'], [
        ['SIGTERM -> readiness 502', median(readiness).toFixed(1), Math.max(...readiness).toFixed(1)],
        ['SIGTERM -> process exit (idle)', median(exits).toFixed(1), Math.max(...exits).toFixed(1)],
      ]),
  );
}

/** The monitoring port git-sshd logged (the config asks for port 0). */
async function monitoringPort(server: RunningServer): Promise<number> {
  const lines = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' }).split('\n').filter((line) => line.includes(`pid=${server.pid},`));
  const ports = lines.map((line) => Number(/127\.0\.0\.1:(\d+)/.exec(line)?.[1] ?? 0)).filter((port) => port !== 0 && port !== server.port);
  if (ports.length === 0) throw new Error('no monitoring port');
  return ports[0]!;
}

function machine(): string {
  const model = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((line) => line.startsWith('model name'))?.split(':')[1]?.trim() ?? 'unknown';
  const ssh = spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim();
  return [
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${cpus().length} cores (nproc ${execFileSync('nproc', { encoding: 'utf8' }).trim()}), ${model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    `- Software: node ${process.version}, ${execFileSync('git', ['--version'], { encoding: 'utf8' }).trim()}, ${ssh} (client and sshd)`,
    `- Command: \`${['BENCH_MB', 'BENCH_SCALE', 'BENCH_IDLE', 'BENCH_SESSIONS'].filter((name) => process.env[name]).map((name) => `${name}=${process.env[name]} `).join('')}npm run bench\``,
    `- gitlab-sshd is not a column: it cannot be built here (the Go module proxy answers 403 for gitlab.com/gitlab-org modules).`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { key, publicKey, source, reposFor } = prepare(work, MB);
  const ours = await startGitSshd(join(work), publicKey, reposFor('git-sshd-repos'));
  const theirs = await startOpenSsh(work, publicKey, reposFor('openssh-repos'));
  const servers = [ours, theirs];
  servers0CpuSource = ours.cpuSource;
  try {
    await latency(servers, key);
    section(
      '1b. Key exchange: post-quantum beside curve25519',
      `${kexCost([
        { server: ours, kex: 'mlkem768x25519-sha256' },
        { server: ours, kex: 'curve25519-sha256' },
        { server: theirs, kex: 'sntrup761x25519-sha512' },
        { server: theirs, kex: 'curve25519-sha256' },
      ], key, KEX_RUNS)}\n\n${await kexServerCrypto(2000)}`,
    );
    transfer(servers, key, source);
    await memory(servers, readFileSync(key));
    await scale(ours, readFileSync(key));
  } finally {
    for (const server of servers) await server.stop();
  }
  await drain(publicKey, readFileSync(key));
  const targets = table(['target', 'measured', 'met'], verdicts.map(([target, measured, met]) => [target, measured, met ? 'yes' : '**no**']));
  console.log(`\n## Targets\n\n${targets}\n`);
  const notes = [
    '## How to read these',
    '',
    '- Sections 1 to 4 use bookworm\'s OpenSSH 9.2 client with its defaults: with OpenSSH it negotiates sntrup761x25519 key exchange, with git-sshd curve25519 (9.2 predates mlkem768x25519; ssh2 has no sntrup761); most of the latency gap is OpenSSH forking and re-executing sshd and a login shell per connection. Section 1b forces each key exchange from OpenSSH 10, which negotiates mlkem768x25519 with git-sshd by default.',
    `- Server CPU is ${servers0CpuSource} for the server's whole process tree, exited processes included (git's processes on both sides).`,
    '- Memory is PSS: a page shared by N processes counts 1/N in each. Summed RSS would count the sshd binary and the libraries OpenSSH\'s per-connection processes share once per process.',
    '- Runs on a small shared machine are noisy (identical clone runs vary by about ±15%); compare rows of the same run only.',
  ].join('\n');
  const doc = ['# Benchmarks', '', 'Generated by `bench/suite.ts` (`npm run bench`); do not edit by hand.', '', machine(), '', '## Targets', '', targets, '', ...sections, notes].join('\n');
  mkdirSync(join(ROOT, 'docs'), { recursive: true });
  writeFileSync(join(ROOT, 'docs', 'benchmarks.md'), `${doc}\n`);
  console.log('wrote docs/benchmarks.md');
}

runBench(main, work);
