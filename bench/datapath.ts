/**
 * Server CPU per clone, side by side: OpenSSH's sshd and git-sshd, and optionally other
 * git-sshd builds (BENCH_VARIANTS=name=dir,name=dir: directories each holding a build's
 * dist/, node_modules/ and package.json; the first is the baseline) for before/after
 * figures of data-path changes in the same run.
 * `git clone --no-local --bare` of the deterministic repository, the servers in rotating
 * order within each round, so that machine load falls on all of them alike; the ratio is
 * taken per round. CPU is the server's cgroup (git included) and, for git-sshd, its node
 * process alone (the SSH layer).
 *
 *   BENCH_MB=100 BENCH_ROUNDS=7 BENCH_CIPHER=aes128-gcm@openssh.com npm run bench:datapath
 *   BENCH_VARIANTS=before=/tmp/before npm run bench:datapath
 *   BENCH_PROFILE=/tmp/prof npm run bench:datapath     # git-sshd under --cpu-prof
 *   BENCH_TRACE_GC=1 npm run bench:datapath            # garbage collections per clone (--trace-gc)
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ownCpuSeconds, ownSystemSeconds } from './lib/procfs.js';
import { BENCH_REPO as REPO, prepare } from './lib/setup.js';
import { startGitSshd, startOpenSsh, sshCommand, type RunningServer } from './lib/servers.js';
import { median, percentile, table } from './lib/stats.js';
import { runBench } from './lib/main.js';

const MB = Math.max(1, Math.min(1000, Number(process.env.BENCH_MB ?? 100)));
const ROUNDS = Math.max(1, Math.min(50, Number(process.env.BENCH_ROUNDS ?? 7)));
const CIPHER = process.env.BENCH_CIPHER ?? 'chacha20-poly1305@openssh.com';
/** `name=dir` or `name=dir:--node-flag --node-flag` (the same build with other Node options). */
const VARIANTS = (process.env.BENCH_VARIANTS ?? '').split(',').filter(Boolean).map((entry) => {
  const [name, rest] = entry.split(/=(.*)/s) as [string, string];
  const [root, flags = ''] = rest.split(/:(.*)/s) as [string, string?];
  return { name, root, flags: flags.split(' ').filter(Boolean) };
});
const PROFILE = process.env.BENCH_PROFILE;
/** A directory for `perf record` (cpu-clock samples, kernel included) of each server during each clone. */
const PERF = process.env.BENCH_PERF;
let perfRuns = 0;
/** `perf stat` of each server during each clone: system calls and context switches (BENCH_PERF_STAT=1). */
const PERF_STAT = process.env.BENCH_PERF_STAT === '1' || process.env.BENCH_PERF_STAT === 'own';
/** BENCH_PERF_STAT=own: the root process alone (git-sshd's node, OpenSSH's listener), not what it starts. */
const PERF_STAT_OWN = process.env.BENCH_PERF_STAT === 'own';
const STAT_EVENTS = ['syscalls:sys_enter_read', 'syscalls:sys_enter_write', 'syscalls:sys_enter_writev', 'syscalls:sys_enter_epoll_pwait', 'syscalls:sys_enter_epoll_wait', 'syscalls:sys_enter_epoll_ctl', 'context-switches', 'page-faults'];
const TRACE_GC = process.env.BENCH_TRACE_GC === '1';
/** --trace-gc lines per server: counted per clone, which machine load does not change. */
const gcLines = new Map<string, string[]>();
const work = mkdtempSync(join(tmpdir(), 'git-sshd-datapath-'));

interface Sample {
  wall: number;
  cpu: number;
  /** The node process alone (git-sshd only). */
  own: number;
  /** System (kernel) time: of the whole tree, and of the node process alone. */
  system: number;
  ownSystem: number;
  /** perf stat event counts during the clone, whole process tree (BENCH_PERF_STAT). */
  counts: Record<string, number>;
  /** Mark-compact (full) and scavenge collections during the clone, and their summed pause ms. */
  fullGcs: number;
  scavenges: number;
  gcMs: number;
}

async function clone(server: RunningServer, key: string): Promise<Sample> {
  const target = join(work, 'clone');
  rmSync(target, { recursive: true, force: true });
  const ssh = sshCommand(key, server.port, [`-c ${CIPHER}`, '-o KexAlgorithms=curve25519-sha256']);
  const cpuBefore = server.cpuSeconds();
  const ownBefore = ownCpuSeconds(server.pid);
  const systemBefore = server.systemSeconds() ?? 0;
  const ownSystemBefore = ownSystemSeconds(server.pid);
  const perf = PERF ? await perfRecord(server) : undefined;
  const counting = PERF_STAT ? await perfStat(server) : undefined;
  const gcBefore = gcLines.get(server.name)?.length ?? 0;
  const started = performance.now();
  // Not spawnSync: this process must go on reading the servers' output meanwhile.
  const child = spawn('git', ['clone', '-q', '--no-local', '--bare', server.url(REPO), target], {
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_SSH_COMMAND: ssh },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  const wall = performance.now() - started;
  if (perf) await perf();
  const counts = counting ? await counting() : {};
  if (code !== 0) throw new Error(`clone from ${server.name}: ${stderr}`);
  // The server's per-connection processes exit just after the client: let them be reaped.
  await new Promise((done) => setTimeout(done, 300));
  rmSync(target, { recursive: true, force: true });
  const gcs = (gcLines.get(server.name) ?? []).slice(gcBefore);
  const pause = (line: string): number => Number(/, ([\d.]+) \/ [\d.]+ ms/.exec(line)?.[1] ?? 0);
  return {
    wall,
    cpu: server.cpuSeconds() - cpuBefore,
    own: ownCpuSeconds(server.pid) - ownBefore,
    system: (server.systemSeconds() ?? 0) - systemBefore,
    ownSystem: ownSystemSeconds(server.pid) - ownSystemBefore,
    counts,
    fullGcs: gcs.filter((line) => line.includes('Mark-Compact')).length,
    scavenges: gcs.filter((line) => line.includes('Scavenge')).length,
    gcMs: gcs.reduce((sum, line) => sum + pause(line), 0),
  };
}

/**
 * Samples the server (and every process it starts meanwhile: perf follows forks) on the
 * cpu-clock software event, which needs no PMU and sees the kernel's share too. Resolves
 * once perf has attached; the function it resolves to stops it and waits for its file.
 */
async function perfRecord(server: RunningServer): Promise<() => Promise<void>> {
  perfRuns += 1;
  const output = join(PERF!, `${server.name}-${perfRuns}.data`);
  const perf = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '999', '-g', '-p', String(server.pid), '-o', output], { stdio: 'ignore' });
  await new Promise((done) => setTimeout(done, 500));
  return async () => {
    const exited = once(perf, 'exit');
    perf.kill('SIGINT');
    await exited;
  };
}

/** Counts STAT_EVENTS in the server and every process it starts meanwhile, until the function it resolves to is called. */
async function perfStat(server: RunningServer): Promise<() => Promise<Record<string, number>>> {
  const perf = spawn('perf', ['stat', ...(PERF_STAT_OWN ? ['--no-inherit'] : []), '-x', ',', '-e', STAT_EVENTS.join(','), '-p', String(server.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  perf.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  await new Promise((done) => setTimeout(done, 300));
  return async () => {
    const exited = once(perf, 'exit');
    perf.kill('SIGINT');
    await exited;
    const counts: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const [value, , event] = line.split(',');
      if (event && value && /^\d+$/.test(value)) counts[event.replace('syscalls:sys_enter_', '')] = Number(value);
    }
    return counts;
  };
}

const spread = (values: number[]): string => `${percentile(values, 10).toFixed(2)}–${percentile(values, 90).toFixed(2)}`;

async function main(): Promise<void> {
  const { key, publicKey, reposFor } = prepare(work, MB);
  const nodeArgs = [...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : []), ...(TRACE_GC ? ['--trace-gc'] : []), ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  const traced = (name: string) => (TRACE_GC ? { onOtherOutput: (line: string) => { if (process.env.BENCH_TRACE_GC_PRINT) console.error(line); gcLines.set(name, [...(gcLines.get(name) ?? []), line]); } } : {});
  const servers: RunningServer[] = [await startGitSshd(work, publicKey, reposFor('git-sshd-repos'), {}, { nodeArgs, ...traced('git-sshd') })];
  for (const variant of VARIANTS) {
    servers.push(await startGitSshd(work, publicKey, reposFor(`${variant.name}-repos`), {}, { name: variant.name, root: variant.root, nodeArgs: [...nodeArgs, ...variant.flags], ...traced(variant.name) }));
  }
  servers.push(await startOpenSsh(work, publicKey, reposFor('openssh-repos')));
  const samples = new Map(servers.map((server) => [server.name, [] as Sample[]]));
  try {
    for (const server of servers) await clone(server, key);
    for (let round = 0; round < ROUNDS; round += 1) {
      // Rotate the order: no server always runs right after another's clone.
      const order = servers.map((_, i) => servers[(i + round) % servers.length]!);
      for (const server of order) samples.get(server.name)!.push(await clone(server, key));
      console.error(`round ${round + 1}/${ROUNDS}: ${order.map((s) => `${s.name} ${samples.get(s.name)!.at(-1)!.cpu.toFixed(2)} s`).join(', ')}`);
    }
  } finally {
    for (const server of servers) await server.stop();
  }
  const reference = samples.get('OpenSSH')!;
  const rows = servers.map((server) => {
    const mine = samples.get(server.name)!;
    const cpu = mine.map((s) => s.cpu);
    const ratios = mine.map((s, i) => s.cpu / reference[i]!.cpu);
    const wallRatios = mine.map((s, i) => s.wall / reference[i]!.wall);
    return [
      server.name,
      median(cpu).toFixed(2),
      spread(cpu),
      server.name === 'OpenSSH' ? '' : median(mine.map((s) => s.own)).toFixed(2),
      median(ratios).toFixed(2),
      spread(ratios),
      median(mine.map((s) => s.wall)).toFixed(0),
      median(wallRatios).toFixed(2),
      median(mine.map((s) => s.system)).toFixed(2),
      server.name === 'OpenSSH' ? '' : median(mine.map((s) => s.ownSystem)).toFixed(2),
    ];
  });
  const extra: string[][] = [];
  const baseline = VARIANTS[0];
  for (const candidate of baseline ? servers.filter((server) => server.name !== 'OpenSSH' && server.name !== baseline.name) : []) {
    const ours = samples.get(candidate.name)!;
    const before = samples.get(baseline!.name)!;
    const cpu = ours.map((s, i) => s.cpu / before[i]!.cpu);
    const own = ours.map((s, i) => s.own / before[i]!.own);
    extra.push([`${candidate.name} / ${baseline!.name}`, median(cpu).toFixed(3), spread(cpu), median(own).toFixed(3), spread(own)]);
  }
  const statRows = PERF_STAT
    ? servers.map((server) => {
        const mine = samples.get(server.name)!;
        const names = [...new Set(mine.flatMap((s) => Object.keys(s.counts)))].sort();
        return [server.name, names.map((name) => `${name} ${median(mine.map((s) => s.counts[name] ?? 0)).toFixed(0)}`).join(', ')];
      })
    : [];
  const gcRows = TRACE_GC
    ? servers.filter((server) => server.name !== 'OpenSSH').map((server) => {
        const mine = samples.get(server.name)!;
        return [server.name, median(mine.map((s) => s.fullGcs)).toFixed(0), median(mine.map((s) => s.scavenges)).toFixed(0), median(mine.map((s) => s.gcMs)).toFixed(0)];
      })
    : [];
  console.log(
    `# ${MB} MB clone (--no-local --bare), ${CIPHER}, curve25519, ${ROUNDS} rounds, servers in rotating order; node ${process.version}; ${new Date().toISOString()}\n\n` +
      table(['server', 'CPU s per clone (median)', 'p10–p90', 'node process alone s', 'CPU / OpenSSH (median of per-round ratios)', 'p10–p90', 'wall ms', 'wall / OpenSSH', 'system s (tree)', 'system s (node alone)'], rows) +
      (extra.length ? `\n\n${table(['pair', 'CPU ratio (median)', 'p10–p90', 'node-alone ratio', 'p10–p90'], extra)}` : '') +
      (statRows.length ? `\n\nperf stat per clone (whole tree, medians):\n\n${table(['server', 'counts'], statRows)}` : '') +
      (gcRows.length ? `\n\nGarbage collection per clone (--trace-gc, medians):\n\n${table(['server', 'mark-compact', 'scavenges', 'pause ms'], gcRows)}` : ''),
  );
}

runBench(main, work);
