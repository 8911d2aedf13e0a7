/**
 * The drain as an orchestrator sees it: SIGTERM -> readiness 502 latency, and how long the
 * process takes to exit when idle, with one idle OpenSSH ControlMaster connection, and
 * with one session that has to be cut at the end of a 1 s grace period. Prints a table.
 *
 *   npm run bench:drain                 # 10 runs of each
 *   BENCH_RUNS=20 npm run bench:drain
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { git, makeKey, makeWorkTree, sshArgs, temporaryDir, url, type ClientKey } from '../test/helpers/client.js';
import { adminUsers, TestServer } from '../test/helpers/server.js';

const RUNS = Math.max(1, Math.min(50, Number(process.env.BENCH_RUNS ?? 10)));

interface Figures {
  readinessMs: number;
  exitMs: number;
}

type Scenario = 'idle' | 'idle ControlMaster' | 'session cut at 1 s grace';

/** Milliseconds to the first 502; NaN when the process was gone before any probe got an answer. */
async function once502(server: TestServer, signalled: number): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    try {
      if ((await server.http('/start')).status === 502) return performance.now() - signalled;
    } catch {
      if (server.child.exitCode !== null || server.child.signalCode !== null) return NaN;
      await server.exited;
      return NaN;
    }
  }
  throw new Error('readiness never turned 502');
}

async function measure(key: ClientKey, scenario: Scenario): Promise<Figures> {
  const grace = scenario === 'session cut at 1 s grace' ? '1s' : '30s';
  const server = await TestServer.start({
    users: adminUsers(key),
    config: { log_level: 'info', sshd: { grace_period: grace } },
  });
  const extras: Array<ReturnType<typeof spawn>> = [];
  try {
    if (scenario !== 'idle') {
      const pushed = await git(key, server.port, ['push', '-q', url(server.port, 'team/app'), 'main'], makeWorkTree());
      if (pushed.code !== 0) throw new Error(pushed.stderr);
      const mark = server.mark();
      const args =
        scenario === 'idle ControlMaster'
          ? [...sshArgs(key, server.port, ['-M', '-S', join(temporaryDir('git-sshd-bench-mux-'), 'mux'), '-N']), 'git@127.0.0.1']
          : [...sshArgs(key, server.port), 'git@127.0.0.1', 'git-upload-pack', 'team/app'];
      const child = spawn('ssh', args, { stdio: ['pipe', 'ignore', 'ignore'] });
      extras.push(child);
      await server.waitForLogSince(mark, (line) => line.msg === 'authenticated');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const signalled = performance.now();
    server.child.kill('SIGTERM');
    const readinessMs = await once502(server, signalled);
    await server.exited;
    return { readinessMs, exitMs: performance.now() - signalled };
  } finally {
    for (const child of extras) if (child.exitCode === null) child.kill();
    await server.dispose();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function main(): Promise<void> {
  const key = makeKey();
  console.log(`drain benchmark: ${RUNS} runs per scenario, grace 30 s (1 s for the cut)\n`);
  console.log('| scenario | readiness 502 after SIGTERM, median (max) | process exit after SIGTERM, median (max) |');
  console.log('|---|---|---|');
  for (const scenario of ['idle', 'idle ControlMaster', 'session cut at 1 s grace'] as const) {
    const figures: Figures[] = [];
    for (let run = 0; run < RUNS; run++) figures.push(await measure(key, scenario));
    const readiness = figures.map((figure) => figure.readinessMs).filter((ms) => !Number.isNaN(ms));
    const exit = figures.map((figure) => figure.exitMs);
    const readinessText =
      readiness.length === 0
        ? 'process already gone at the first probe'
        : `${median(readiness).toFixed(1)} ms (${Math.max(...readiness).toFixed(1)})${readiness.length < figures.length ? `; gone before the probe in ${figures.length - readiness.length} runs` : ''}`;
    console.log(`| ${scenario} | ${readinessText} | ${median(exit).toFixed(0)} ms (${Math.max(...exit).toFixed(0)}) |`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
