/**
 * What starting git costs the server while it holds many connections: git-sshd builds side
 * by side (BENCH_VARIANTS=name=dir,... as for bench:datapath; each dir holds a build's
 * dist/, node_modules/ and package.json), each first with no other connection, then while
 * it holds BENCH_HELD idle authenticated connections (its memory grows with them, and
 * with it what a fork of the server costs). Each operation is a new connection that runs
 * git-upload-pack and sends a flush (what `git ls-remote` costs), sequential, the servers
 * in rotating order per round. OpenSSH (no connection held) is the reference.
 *
 *   BENCH_VARIANTS=before=/tmp/before npm run bench:spawn
 *   BENCH_HELD=3000 BENCH_ROUNDS=8 BENCH_OPS=10 npm run bench:spawn
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hold, release, type Held } from './lib/holder.js';
import { ownCpuSeconds } from './lib/procfs.js';
import { BENCH_REPO as REPO, prepare } from './lib/setup.js';
import { startGitSshd, startOpenSsh, sshCommand, type RunningServer } from './lib/servers.js';
import { median, table } from './lib/stats.js';
import { runBench } from './lib/main.js';

const env = (name: string, fallback: number, max: number): number => Math.max(1, Math.min(max, Number(process.env[name] ?? fallback)));
const HELD = env('BENCH_HELD', 2000, 10_000);
const ROUNDS = env('BENCH_ROUNDS', 6, 50);
const OPS = env('BENCH_OPS', 10, 200);
const VARIANTS = (process.env.BENCH_VARIANTS ?? '').split(',').filter(Boolean).map((entry) => {
  const [name, root] = entry.split(/=(.*)/s) as [string, string];
  return { name, root };
});
const work = mkdtempSync(join(tmpdir(), 'git-sshd-bench-spawn-'));

interface Batch {
  /** Per operation: the server's whole tree (git included), its root process alone, wall. */
  readonly treeMs: number;
  readonly ownMs: number;
  readonly wallMs: number;
  readonly failed: number;
  /** The longest the server's event loop was late during the batch (prom-client's nodejs_eventloop_lag_max_seconds), ms. */
  readonly loopLagMaxMs: number | undefined;
}

/** git-sshd's monitoring port: the one it listens on besides SSH. */
function monitoringPort(server: RunningServer): number | undefined {
  const lines = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' }).split('\n');
  for (const line of lines) {
    if (!line.includes(`pid=${server.pid},`)) continue;
    const port = Number(/:(\d+)\s/.exec(line.split(/\s+/)[3] + ' ')?.[1]);
    if (port && port !== server.port) return port;
  }
  return undefined;
}

/** nodejs_eventloop_lag_max_seconds since the last scrape (prom-client resets its histogram on each), ms. */
async function loopLagMaxMs(port: number | undefined): Promise<number | undefined> {
  if (port === undefined) return undefined;
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1];
  return value === undefined ? undefined : Number(value) * 1000;
}

function operation(key: string, server: RunningServer): Promise<boolean> {
  return new Promise((resolve) => {
    const args = [...sshCommand(key, server.port, ['-o KexAlgorithms=curve25519-sha256']).split(' '), `${server.user}@127.0.0.1`, `git-upload-pack '${server.repoArg(REPO)}'`];
    const child = spawn(args[0]!, args.slice(1), { stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin.on('error', () => undefined);
    child.stdin.end('0000');
    child.once('exit', (code) => resolve(code === 0));
  });
}

async function batch(key: string, server: RunningServer, metricsPort: number | undefined): Promise<Batch> {
  await loopLagMaxMs(metricsPort);
  const tree = server.cpuSeconds();
  const own = ownCpuSeconds(server.pid);
  const started = performance.now();
  let failed = 0;
  for (let i = 0; i < OPS; i += 1) if (!(await operation(key, server))) failed += 1;
  const wall = performance.now() - started;
  // The server's git-upload-pack (OpenSSH's per-connection processes) exit just after the client: let them be reaped.
  await new Promise((done) => setTimeout(done, 300));
  const treeMs = ((server.cpuSeconds() - tree) * 1000) / OPS;
  const ownMs = ((ownCpuSeconds(server.pid) - own) * 1000) / OPS;
  return { treeMs, ownMs, wallMs: wall / OPS, failed, loopLagMaxMs: await loopLagMaxMs(metricsPort) };
}

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

async function main(): Promise<void> {
  const { key, publicKey, reposFor } = prepare(work, 1);
  const privateKey = readFileSync(key);
  const unlimited = { max_connections_per_user: '0', max_sessions_per_user: '0', max_startups: '"1000"' };
  const variants = [{ name: 'git-sshd', root: undefined as string | undefined }, ...VARIANTS];
  const rows: string[][] = [];
  const ratioRows: string[][] = [];
  for (const held of [0, HELD]) {
    const servers: RunningServer[] = [];
    const holding: Held[] = [];
    try {
      for (const variant of variants) {
        servers.push(await startGitSshd(work, publicKey, reposFor(`${variant.name}-${held}-repos`), unlimited, { name: variant.name, ...(variant.root ? { root: variant.root } : {}) }));
      }
      if (held === 0) servers.push(await startOpenSsh(work, publicKey, reposFor('openssh-repos')));
      for (const server of servers.filter((s) => s.name !== 'OpenSSH')) {
        const got = await hold(server, privateKey, held === 0 ? 0 : held, { parallel: 20 });
        if (got.failed > 0) throw new Error(`${server.name}: ${got.failed} of ${held} connections failed: ${got.firstError}`);
        holding.push(got);
      }
      const rss = new Map(servers.map((server) => [server.name, server.name === 'OpenSSH' ? undefined : rssMiB(server.pid)]));
      const batches = new Map(servers.map((server) => [server.name, [] as Batch[]]));
      const ports = new Map(servers.map((server) => [server.name, server.name === 'OpenSSH' ? undefined : monitoringPort(server)]));
      for (const server of servers) await operation(key, server);
      for (let round = 0; round < ROUNDS; round += 1) {
        const order = servers.map((_, i) => servers[(i + round) % servers.length]!);
        for (const server of order) batches.get(server.name)!.push(await batch(key, server, ports.get(server.name)));
        console.error(`${held} held, round ${round + 1}/${ROUNDS}: ${order.map((s) => `${s.name} ${batches.get(s.name)!.at(-1)!.treeMs.toFixed(1)} ms`).join(', ')}`);
      }
      for (const server of servers) {
        const mine = batches.get(server.name)!;
        const ownRss = rss.get(server.name);
        rows.push([
          server.name,
          server.name === 'OpenSSH' ? '0' : String(held),
          ownRss === undefined ? '' : ownRss.toFixed(0),
          median(mine.map((b) => b.treeMs)).toFixed(1),
          server.name === 'OpenSSH' ? '' : median(mine.map((b) => b.ownMs)).toFixed(1),
          median(mine.map((b) => b.wallMs)).toFixed(0),
          server.name === 'OpenSSH' ? '' : median(mine.map((b) => b.loopLagMaxMs ?? NaN)).toFixed(1),
          String(mine.reduce((sum, b) => sum + b.failed, 0)),
        ]);
      }
      const baseline = VARIANTS[0] ? batches.get(VARIANTS[0].name)! : undefined;
      const ours = batches.get('git-sshd')!;
      if (baseline) {
        const tree = ours.map((b, i) => b.treeMs / baseline[i]!.treeMs);
        const own = ours.map((b, i) => b.ownMs / baseline[i]!.ownMs);
        ratioRows.push([`git-sshd / ${VARIANTS[0]!.name}`, String(held), median(tree).toFixed(3), `${Math.min(...tree).toFixed(2)}–${Math.max(...tree).toFixed(2)}`, median(own).toFixed(3)]);
      }
    } finally {
      for (const got of holding) await release(got);
      for (const server of servers) await server.stop();
    }
  }
  console.log(
    `# Connections while others are held: ${OPS} sequential operations per batch, ${ROUNDS} rounds, servers in rotating order, curve25519; node ${process.version}; ${new Date().toISOString()}\n\n` +
      table(['server', 'connections held', 'server RSS MiB', 'server CPU ms per operation (tree, median)', 'root process alone ms', 'wall ms per operation', 'event loop late at most per batch, ms (median)', 'failed'], rows) +
      (ratioRows.length ? `\n\nPer round, same rounds:\n\n${table(['pair', 'connections held', 'tree CPU ratio (median)', 'min–max', 'root process ratio (median)'], ratioRows)}` : ''),
  );
}

runBench(main, work);
