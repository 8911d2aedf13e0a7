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
import { ownCpuSeconds } from './lib/procfs.js';
import { BENCH_REPO as REPO, prepare } from './lib/setup.js';
import { startGitSshd, startOpenSsh, sshCommand, type RunningServer } from './lib/servers.js';
import { median, percentile, table } from './lib/stats.js';
import { runBench } from './lib/main.js';

const MB = Math.max(1, Math.min(1000, Number(process.env.BENCH_MB ?? 100)));
const ROUNDS = Math.max(1, Math.min(50, Number(process.env.BENCH_ROUNDS ?? 7)));
const CIPHER = process.env.BENCH_CIPHER ?? 'chacha20-poly1305@openssh.com';
const VARIANTS = (process.env.BENCH_VARIANTS ?? '').split(',').filter(Boolean).map((entry) => {
  const [name, root] = entry.split('=') as [string, string];
  return { name, root };
});
const PROFILE = process.env.BENCH_PROFILE;
const TRACE_GC = process.env.BENCH_TRACE_GC === '1';
/** --trace-gc lines per server: counted per clone, which machine load does not change. */
const gcLines = new Map<string, string[]>();
const work = mkdtempSync(join(tmpdir(), 'git-sshd-datapath-'));

interface Sample {
  wall: number;
  cpu: number;
  /** The node process alone (git-sshd only). */
  own: number;
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
    fullGcs: gcs.filter((line) => line.includes('Mark-Compact')).length,
    scavenges: gcs.filter((line) => line.includes('Scavenge')).length,
    gcMs: gcs.reduce((sum, line) => sum + pause(line), 0),
  };
}

const spread = (values: number[]): string => `${percentile(values, 10).toFixed(2)}–${percentile(values, 90).toFixed(2)}`;

async function main(): Promise<void> {
  const { key, publicKey, reposFor } = prepare(work, MB);
  const nodeArgs = [...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : []), ...(TRACE_GC ? ['--trace-gc'] : [])];
  const traced = (name: string) => (TRACE_GC ? { onOtherOutput: (line: string) => void gcLines.set(name, [...(gcLines.get(name) ?? []), line]) } : {});
  const servers: RunningServer[] = [await startGitSshd(work, publicKey, reposFor('git-sshd-repos'), {}, { nodeArgs, ...traced('git-sshd') })];
  for (const variant of VARIANTS) {
    servers.push(await startGitSshd(work, publicKey, reposFor(`${variant.name}-repos`), {}, { name: variant.name, root: variant.root, nodeArgs, ...traced(variant.name) }));
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
  const gcRows = TRACE_GC
    ? servers.filter((server) => server.name !== 'OpenSSH').map((server) => {
        const mine = samples.get(server.name)!;
        return [server.name, median(mine.map((s) => s.fullGcs)).toFixed(0), median(mine.map((s) => s.scavenges)).toFixed(0), median(mine.map((s) => s.gcMs)).toFixed(0)];
      })
    : [];
  console.log(
    `# ${MB} MB clone (--no-local --bare), ${CIPHER}, curve25519, ${ROUNDS} rounds, servers in rotating order; node ${process.version}; ${new Date().toISOString()}\n\n` +
      table(['server', 'CPU s per clone (median)', 'p10–p90', 'node process alone s', 'CPU / OpenSSH (median of per-round ratios)', 'p10–p90', 'wall ms', 'wall / OpenSSH'], rows) +
      (extra.length ? `\n\n${table(['pair', 'CPU ratio (median)', 'p10–p90', 'node-alone ratio', 'p10–p90'], extra)}` : '') +
      (gcRows.length ? `\n\nGarbage collection per clone (--trace-gc, medians):\n\n${table(['server', 'mark-compact', 'scavenges', 'pause ms'], gcRows)}` : ''),
  );
}

runBench(main, work);
