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
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connectionLoad, sequentialLatency, summary, type Client } from './lib/connections.js';
import { hold, release } from './lib/holder.js';
import { kexCost, kexServerCrypto } from './lib/kex.js';
import { makeRepository } from './lib/repo.js';
import { cloneFrom, parallelClones, pushTo, type TransferSample } from './lib/transfer.js';
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
const PARALLEL_CLONES = env('BENCH_PARALLEL_CLONES', 50, 200);
const PARALLEL_MB = env('BENCH_PARALLEL_MB', 10, 100);
const CIPHERS = ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com'];
const SMALL_REPO = 'bench/small.git';

const work = mkdtempSync(join(tmpdir(), 'git-sshd-suite-'));
const loadAtStart = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(', ');
let servers0CpuSource = '';
const sections: string[] = [];
const verdicts: Array<[string, string, boolean]> = [];
/** git-sshd's median peak memory above idle during a clone of the big repository, MiB (section 2), for section 2b's check. */
let bigClonePeakMiB = 0;

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

/** The bookworm OpenSSH client (9.2), curve25519 pinned: the same key exchange on both servers. */
function sameKexClient(key: string): Client {
  return {
    label: 'same key exchange (curve25519-sha256 pinned), OpenSSH 9.2 client',
    argv: (server, command) => [...sshCommand(key, server.port, ['-o KexAlgorithms=curve25519-sha256']).split(' '), `${server.user}@127.0.0.1`, command],
    kex: () => 'curve25519-sha256',
  };
}

/** OpenSSH 10 from the sid root with its defaults: each server's post-quantum default is negotiated. */
function pqDefaultClient(sid: string, insideKey: string): Client {
  return {
    label: "each side's post-quantum default, OpenSSH 10 client",
    argv: (server, command) => [
      'chroot', sid, 'ssh', '-F', '/dev/null', '-i', insideKey, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
      '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-p', String(server.port), `${server.user}@127.0.0.1`, command,
    ],
    kex: (server) => negotiatedKex(server, (extra) => ['chroot', sid, 'ssh', ...extra, '-F', '/dev/null', '-i', insideKey, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-p', String(server.port), `${server.user}@127.0.0.1`, 'true']),
  };
}

/** What key exchange a client really negotiates with a server, from its -v output. */
function negotiatedKex(server: RunningServer, argv: (extra: string[]) => string[]): string {
  const [command, ...args] = argv(['-v']);
  const result = spawnSync(command!, args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  return /kex: algorithm: (\S+)/.exec(result.stderr)?.[1] ?? `unknown (${server.name})`;
}

/**
 * 1. Connections: handshake + authentication + `git-upload-pack` advertisement (what
 * `git ls-remote` costs), sequential latency, then 16 parallel clients per server in
 * alternating blocks: operations per server CPU-second and latency under that load. Once
 * with the same key exchange on both servers, once with each side's post-quantum default.
 */
async function connections(servers: RunningServer[], clients: Client[]): Promise<void> {
  const rows: string[][] = [];
  const notes: string[] = [];
  const [ours, theirs] = servers as [RunningServer, RunningServer];
  for (const [index, client] of clients.entries()) {
    const sequential = await sequentialLatency(servers, client, LS_RUNS);
    const load = await connectionLoad(servers, client, { parallel: 16, seconds: PARALLEL_SECONDS, blocks: 2 });
    const perCpu = (name: string): number => load.get(name)!.ops / load.get(name)!.cpu;
    for (const server of servers) {
      const result = load.get(server.name)!;
      const seq = summary(sequential.get(server.name)!);
      const loaded = summary(result.latencies);
      rows.push([
        client.label, server.name, client.kex(server), seq.median.toFixed(1), seq.p90.toFixed(1), (result.ops / result.seconds).toFixed(1),
        loaded.median.toFixed(0), loaded.p90.toFixed(0), result.cpu.toFixed(2), perCpu(server.name).toFixed(1), String(result.failed),
      ]);
    }
    const cpuRatio = perCpu(ours.name) / perCpu(theirs.name);
    const loadedRatio = median(load.get(ours.name)!.latencies) / median(load.get(theirs.name)!.latencies);
    notes.push(`- ${client.label}: git-sshd / OpenSSH ops per server CPU-second **${cpuRatio.toFixed(2)}x**, latency under 16-client load ${loadedRatio.toFixed(2)}x, sequential latency ${ratio(median(sequential.get(ours.name)!), median(sequential.get(theirs.name)!))}.`);
    const goal = index === 0 ? 3 : 2;
    verdicts.push([`connections, ${client.label}: ops per server CPU-second >= ${goal}x OpenSSH`, `${cpuRatio.toFixed(2)}x`, cpuRatio >= goal]);
    verdicts.push([`connections, ${client.label}: latency under 16-client load <= 1/2 of OpenSSH's`, `${median(load.get(ours.name)!.latencies).toFixed(0)} vs ${median(load.get(theirs.name)!.latencies).toFixed(0)} ms (${loadedRatio.toFixed(2)}x)`, loadedRatio <= 0.5]);
    if (index === 0) verdicts.push(['sequential latency <= OpenSSH', `${median(sequential.get(ours.name)!).toFixed(1)} vs ${median(sequential.get(theirs.name)!).toFixed(1)} ms`, median(sequential.get(ours.name)!) <= median(sequential.get(theirs.name)!)]);
  }
  section(
    '1. Connections: handshake + authentication + `git-upload-pack` advertisement',
    `Each operation is \`ssh host git-upload-pack repo\` answered with a flush packet (handshake, authentication, ref advertisement: what \`git ls-remote\` costs). ${LS_RUNS} sequential operations per server, alternating; then 16 parallel clients for ${PARALLEL_SECONDS} s per server in two alternating blocks. Server CPU is the server's whole cgroup (OpenSSH's per-connection processes, the git-upload-pack each server runs); the client's start-up is in every row alike.\n\n` +
      table(['client', 'server', 'kex negotiated', 'sequential median ms', 'p90 ms', 'ops/s (16 parallel)', 'latency under load median ms', 'p90 ms', 'server CPU s', 'ops per server CPU-second', 'failed'], rows) +
      `\n\n${notes.join('\n')}`,
  );
}

const spread = (values: number[]): string => `${percentile(values, 10).toFixed(2)}–${percentile(values, 90).toFixed(2)}`;

/**
 * 2. Clone (per cipher) and push of the repository, servers alternating within each round,
 * ratios taken per round; the file:// floor each round; peak server memory during each.
 */
async function transfer(servers: RunningServer[], key: string, source: string): Promise<void> {
  const [ours, theirs] = servers as [RunningServer, RunningServer];
  const target = join(work, 'clone');
  const rows: string[][] = [];
  const floors: number[] = [];
  const peaks = new Map<string, number[]>();
  for (const cipher of CIPHERS) {
    const samples = new Map(servers.map((server) => [server.name, [] as TransferSample[]]));
    const extra = [`-c ${cipher}`, '-o KexAlgorithms=curve25519-sha256'];
    for (const server of servers) await cloneFrom(server, key, REPO, target, extra);
    for (let run = 0; run < CLONE_RUNS; run += 1) {
      rmSync(target, { recursive: true, force: true });
      floors.push(timed('git', ['clone', '-q', '--bare', '--no-local', `file://${source}`, target]));
      for (const server of run % 2 === 0 ? servers : [...servers].reverse()) samples.get(server.name)!.push(await cloneFrom(server, key, REPO, target, extra));
      rmSync(target, { recursive: true, force: true });
    }
    const cpuRatios = samples.get(ours.name)!.map((s, i) => s.cpu / samples.get(theirs.name)![i]!.cpu);
    const wallRatios = samples.get(ours.name)!.map((s, i) => s.wall / samples.get(theirs.name)![i]!.wall);
    for (const server of servers) {
      const mine = samples.get(server.name)!;
      const isOurs = server === ours;
      peaks.set(server.name, [...(peaks.get(server.name) ?? []), ...mine.map((s) => s.peakSshRssKiB)]);
      rows.push([
        cipher, server.name, median(mine.map((s) => s.wall)).toFixed(0), ((MB / median(mine.map((s) => s.wall))) * 1000).toFixed(1),
        isOurs ? `${median(wallRatios).toFixed(2)} (${spread(wallRatios)})` : '1.00',
        median(mine.map((s) => s.cpu)).toFixed(2), isOurs ? `${median(cpuRatios).toFixed(2)} (${spread(cpuRatios)})` : '1.00',
        isOurs ? median(mine.map((s) => s.own)).toFixed(2) : '', (median(mine.map((s) => s.peakSshRssKiB)) / 1024).toFixed(1), (median(mine.map((s) => s.peakRssKiB)) / 1024).toFixed(1),
      ]);
    }
    verdicts.push([`clone, ${cipher}: server CPU <= OpenSSH's`, `${median(cpuRatios).toFixed(2)}x (per-round p10–p90 ${spread(cpuRatios)})`, median(cpuRatios) <= 1]);
    verdicts.push([`clone, ${cipher}: wall time <= 1.05x OpenSSH's`, `${median(wallRatios).toFixed(2)}x (per-round p10–p90 ${spread(wallRatios)})`, median(wallRatios) <= 1.05]);
  }
  const floor = median(floors);

  // Pushes of the clone's history into new repositories, chacha20-poly1305 (OpenSSH's first choice).
  rmSync(target, { recursive: true, force: true });
  execFileSync('git', ['clone', '-q', '--bare', '--no-local', source, target]);
  const pushes = new Map(servers.map((server) => [server.name, [] as TransferSample[]]));
  for (let run = 0; run < CLONE_RUNS; run += 1) {
    for (const server of run % 2 === 0 ? servers : [...servers].reverse()) pushes.get(server.name)!.push(await pushTo(server, key, target, `bench/push-${run}.git`));
  }
  rmSync(target, { recursive: true, force: true });
  const pushCpu = pushes.get(ours.name)!.map((s, i) => s.cpu / pushes.get(theirs.name)![i]!.cpu);
  const pushWall = pushes.get(ours.name)!.map((s, i) => s.wall / pushes.get(theirs.name)![i]!.wall);
  const pushRows = servers.map((server) => {
    const mine = pushes.get(server.name)!;
    const isOurs = server === ours;
    return [
      server.name, median(mine.map((s) => s.wall)).toFixed(0), isOurs ? `${median(pushWall).toFixed(2)} (${spread(pushWall)})` : '1.00',
      median(mine.map((s) => s.cpu)).toFixed(2), isOurs ? `${median(pushCpu).toFixed(2)} (${spread(pushCpu)})` : '1.00',
      isOurs ? median(mine.map((s) => s.own)).toFixed(2) : '', (median(mine.map((s) => s.peakSshRssKiB)) / 1024).toFixed(1), (median(mine.map((s) => s.peakRssKiB)) / 1024).toFixed(1),
    ];
  });
  verdicts.push(['push: server CPU <= OpenSSH\'s', `${median(pushCpu).toFixed(2)}x (per-round p10–p90 ${spread(pushCpu)})`, median(pushCpu) <= 1]);
  verdicts.push(['push: wall time <= 1.05x OpenSSH\'s', `${median(pushWall).toFixed(2)}x (per-round p10–p90 ${spread(pushWall)})`, median(pushWall) <= 1.05]);
  bigClonePeakMiB = median(peaks.get(ours.name)!) / 1024;

  section(
    `2. Clone and push of a ${MB} MB repository`,
    `\`git clone --bare\` with each cipher (curve25519 on both servers), ${CLONE_RUNS} rounds, the servers alternating within each round and the ratio to OpenSSH taken per round (median, p10–p90 in brackets); \`git clone --no-local file://\` each round as the floor: **${floor.toFixed(0)} ms** (${((MB / floor) * 1000).toFixed(1)} MB/s). The repository is generated deterministically (AES-CTR keystream from a fixed seed: incompressible). Server CPU is the server's whole cgroup, git included; "node alone" is git-sshd's own process (the SSH layer). Peak memory is the server's resident memory (RSS) sampled every 100 ms, above its level before the clone: the SSH layer's (the tree without git's processes: git-sshd's node process; OpenSSH's sshd processes) and the whole tree's (git's pack-objects maps the pack on both servers, so that figure grows with the repository).\n\n` +
      table(['cipher', 'server', 'clone ms', 'MB/s', 'wall / OpenSSH', 'server CPU s per clone', 'CPU / OpenSSH', 'node alone s', 'peak memory above idle, SSH layer, MiB', 'with git, MiB'], rows) +
      `\n\nx floor (clone wall / file://): git-sshd ${rows.filter((row) => row[1] === ours.name).map((row) => `${(Number(row[2]) / floor).toFixed(2)} (${row[0]})`).join(', ')}; OpenSSH ${rows.filter((row) => row[1] === theirs.name).map((row) => `${(Number(row[2]) / floor).toFixed(2)} (${row[0]})`).join(', ')}.\n\n` +
      `Push of the same history into a new repository (chacha20-poly1305), ${CLONE_RUNS} rounds alternating:\n\n` +
      table(['server', 'push ms', 'wall / OpenSSH', 'server CPU s per push', 'CPU / OpenSSH', 'node alone s', 'peak memory above idle, SSH layer, MiB', 'with git, MiB'], pushRows),
  );
}

/** 2b. Many clones at once: does the per-clone CPU stay what it is for one clone? */
async function parallel(servers: RunningServer[], key: string): Promise<void> {
  const rows: string[][] = [];
  for (const server of servers) {
    const singles: TransferSample[] = [];
    for (let run = 0; run < 3; run += 1) singles.push(await cloneFrom(server, key, SMALL_REPO, join(work, 'single')));
    const single = singles.map((sample) => sample.cpu);
    const smallPeakMiB = median(singles.map((sample) => sample.peakSshRssKiB)) / 1024;
    const result = await parallelClones(server, key, SMALL_REPO, work, PARALLEL_CLONES);
    const perClone = result.cpu / PARALLEL_CLONES;
    rows.push([server.name, median(single).toFixed(3), perClone.toFixed(3), (perClone / median(single)).toFixed(2), (result.wall / 1000).toFixed(1), ((result.peakSshRssKiB / 1024) / PARALLEL_CLONES).toFixed(2), ((result.peakRssKiB / 1024) / PARALLEL_CLONES).toFixed(1), `${PARALLEL_CLONES - result.failed}/${PARALLEL_CLONES}`, smallPeakMiB.toFixed(1)]);
    if (server === servers[0]) {
      verdicts.push([
        `memory per clone flat: git-sshd's peak above idle for a ${MB} MB clone within 16 MiB of a ${PARALLEL_MB} MB clone's`,
        `${bigClonePeakMiB.toFixed(1)} vs ${smallPeakMiB.toFixed(1)} MiB (SSH layer: git's processes left out)`,
        bigClonePeakMiB <= smallPeakMiB + 16,
      ]);
      verdicts.push([`${PARALLEL_CLONES} parallel clones: per-clone CPU within 1.2x of one clone's, every one served`, `${(perClone / median(single)).toFixed(2)}x, ${PARALLEL_CLONES - result.failed}/${PARALLEL_CLONES}`, perClone <= 1.2 * median(single) && result.failed === 0]);
    }
  }
  section(
    `2b. ${PARALLEL_CLONES} parallel clones of a ${PARALLEL_MB} MB repository`,
    `Three single clones, then ${PARALLEL_CLONES} \`git clone --bare\` at once (the OpenSSH 9.2 client's defaults), per server; server CPU per clone is the cgroup's total divided by the clones; peak memory is RSS above idle, sampled every 200 ms, divided by the clones, for the SSH layer (git's processes left out) and the whole tree.\n\n` +
      table(['server', 'CPU s per clone (one at a time)', `CPU s per clone (${PARALLEL_CLONES} at once)`, 'ratio', 'wall s for all', 'peak memory per clone, SSH layer, MiB', 'with git, MiB', 'served', 'peak memory above idle, one clone, SSH layer, MiB'], rows),
  );
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
    `- Load average (1, 5, 15 min) at the start: ${loadAtStart}; at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(', ')} (2 cores: other work was running beside the benchmark)`,
    `- Machine: ${cpus().length} cores (nproc ${execFileSync('nproc', { encoding: 'utf8' }).trim()}), ${model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    `- Software: node ${process.version}, ${execFileSync('git', ['--version'], { encoding: 'utf8' }).trim()}, ${ssh} (client and sshd)`,
    `- Command: \`${['BENCH_MB', 'BENCH_CLONE_RUNS', 'BENCH_PARALLEL_CLONES', 'BENCH_PARALLEL_MB', 'BENCH_SCALE', 'BENCH_IDLE', 'BENCH_SESSIONS'].filter((name) => process.env[name]).map((name) => `${name}=${process.env[name]} `).join('')}npm run bench\``,
    `- gitlab-sshd is not a column: it cannot be built here (the Go module proxy answers 403 for gitlab.com/gitlab-org modules).`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { key, publicKey, source, reposFor } = prepare(work, MB);
  const small = makeRepository(join(work, 'small'), PARALLEL_MB);
  const withSmall = (dir: string): string => {
    execFileSync('git', ['clone', '-q', '--bare', '--no-local', small, join(dir, SMALL_REPO)]);
    return dir;
  };
  // Per-user caps off (default 50 each): OpenSSH has none, and the parallel clones are all one user.
  const ours = await startGitSshd(join(work), publicKey, withSmall(reposFor('git-sshd-repos')), { max_connections_per_user: '0', max_sessions_per_user: '0' });
  const theirs = await startOpenSsh(work, publicKey, withSmall(reposFor('openssh-repos')));
  const servers = [ours, theirs];
  servers0CpuSource = ours.cpuSource;
  const sid = execFileSync('bash', [join(ROOT, 'scripts', 'sid-root.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').at(-1)!;
  const sidHome = mkdtempSync(join(sid, 'tmp', 'git-sshd-suite-'));
  copyFileSync(key, join(sidHome, 'id'));
  try {
    await connections(servers, [sameKexClient(key), pqDefaultClient(sid, `${sidHome.slice(sid.length)}/id`)]);
    section(
      '1b. Key exchange: post-quantum beside curve25519',
      `${kexCost([
        { server: ours, kex: 'mlkem768x25519-sha256' },
        { server: ours, kex: 'curve25519-sha256' },
        { server: theirs, kex: 'sntrup761x25519-sha512' },
        { server: theirs, kex: 'curve25519-sha256' },
      ], key, KEX_RUNS)}\n\n${await kexServerCrypto(2000)}`,
    );
    await transfer(servers, key, source);
    await parallel(servers, key);
    await memory(servers, readFileSync(key));
    await scale(ours, readFileSync(key));
  } finally {
    for (const server of servers) await server.stop();
    rmSync(sidHome, { recursive: true, force: true });
  }
  await drain(publicKey, readFileSync(key));
  const targets = table(['target', 'measured', 'met'], verdicts.map(([target, measured, met]) => [target, measured, met ? 'yes' : '**no**']));
  console.log(`\n## Targets\n\n${targets}\n`);
  const notes = [
    '## How to read these',
    '',
    "- Section 1 runs every operation with two clients: bookworm's OpenSSH 9.2 pinned to curve25519 (the same key exchange on both servers), and OpenSSH 10 from a Debian sid root with its defaults, which negotiates mlkem768x25519 with git-sshd and sntrup761x25519 with OpenSSH 9.2's sshd (each side's post-quantum default; the table shows what was negotiated). Sections 2 to 4 use the 9.2 client. Most of the latency gap is OpenSSH forking and re-executing sshd and a login shell per connection.",
    '- Section 2 pins curve25519 and the cipher on both sides; ratios are taken per round (the two servers back to back), and their median and p10–p90 are given, because the machine\'s load moves single figures by more than the differences being measured.',
    `- Server CPU is ${servers0CpuSource} for the server's whole process tree, exited processes included (git's processes on both sides).`,
    '- Memory is PSS: a page shared by N processes counts 1/N in each. Summed RSS would count the sshd binary and the libraries OpenSSH\'s per-connection processes share once per process.',
    '- Runs on a small shared machine are noisy (identical clone runs vary by about ±15%, and by ±30% at a load average above 10); compare rows of the same run only.',
    '- Latency under 16-client load: with bookworm\'s OpenSSH 9.2 client the clients are the bottleneck (both servers deliver about the same operations per second while their CPU time is a fraction of the run\'s; that client links OpenSSL 3.0, whose start-up is slow), so that row measures mostly the client. The OpenSSH 10 client (OpenSSL 3.6) loads the servers. Where the CPU goes per clone and per connection: [benchmarks-datapath.md](benchmarks-datapath.md).',
  ].join('\n');
  const doc = ['# Benchmarks', '', 'Generated by `bench/suite.ts` (`npm run bench`); do not edit by hand.', '', machine(), '', '## Targets', '', targets, '', ...sections, notes].join('\n');
  mkdirSync(join(ROOT, 'docs'), { recursive: true });
  writeFileSync(join(ROOT, 'docs', 'benchmarks.md'), `${doc}\n`);
  console.log('wrote docs/benchmarks.md');
}

runBench(main, work);
