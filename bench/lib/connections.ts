import { spawn } from 'node:child_process';
import type { RunningServer } from './servers.js';
import { median, percentile } from './stats.js';

/** How one connection is made: the client command line for a server, and its key exchange. */
export interface Client {
  readonly label: string;
  /** argv of an ssh client that connects to `server` and runs `command`. */
  argv(server: RunningServer, command: string): string[];
  /** What key exchange it negotiates with this server (for the table). */
  kex(server: RunningServer): string;
}

export interface LoadResult {
  readonly ops: number;
  readonly failed: number;
  readonly seconds: number;
  readonly cpu: number;
  readonly latencies: number[];
}

/**
 * One operation: handshake, authentication, `git-upload-pack` with its ref advertisement,
 * and a flush packet from the client (it wants nothing), as `git ls-remote` does.
 */
function operation(client: Client, server: RunningServer): Promise<number | undefined> {
  const started = performance.now();
  return new Promise((resolve) => {
    const [command, ...args] = client.argv(server, `git-upload-pack '${server.repoArg('bench/repo.git')}'`);
    const child = spawn(command!, args, { stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin.on('error', () => undefined);
    child.stdin.end('0000');
    child.once('exit', (code) => resolve(code === 0 ? performance.now() - started : undefined));
  });
}

/**
 * `parallel` clients doing operations back to back for `seconds`, against each server in
 * turn, in `blocks` alternating blocks (so that the machine's load falls on both alike).
 * Server CPU is the server's whole cgroup over its blocks.
 */
export async function connectionLoad(servers: readonly RunningServer[], client: Client, options: { parallel: number; seconds: number; blocks: number }): Promise<Map<string, LoadResult>> {
  const results = new Map(servers.map((server) => [server.name, { ops: 0, failed: 0, seconds: 0, cpu: 0, latencies: [] as number[] }]));
  for (const server of servers) await operation(client, server);
  for (let block = 0; block < options.blocks; block += 1) {
    const order = block % 2 === 0 ? servers : [...servers].reverse();
    for (const server of order) {
      const result = results.get(server.name)!;
      const cpuBefore = server.cpuSeconds();
      const started = performance.now();
      const deadline = started + (options.seconds / options.blocks) * 1000;
      const worker = async (): Promise<void> => {
        for (let i = 0; i < 100_000 && performance.now() < deadline; i += 1) {
          const took = await operation(client, server);
          if (took === undefined) result.failed += 1;
          else {
            result.ops += 1;
            result.latencies.push(took);
          }
        }
      };
      await Promise.all(Array.from({ length: options.parallel }, worker));
      result.seconds += (performance.now() - started) / 1000;
      // The server's per-connection processes exit just after their clients: let them be reaped.
      await new Promise((done) => setTimeout(done, 300));
      result.cpu += server.cpuSeconds() - cpuBefore;
    }
  }
  return results;
}

/** Sequential operations, alternating servers: latency of one connection on an otherwise idle server. */
export async function sequentialLatency(servers: readonly RunningServer[], client: Client, runs: number): Promise<Map<string, number[]>> {
  const times = new Map(servers.map((server) => [server.name, [] as number[]]));
  for (const server of servers) await operation(client, server);
  for (let run = 0; run < runs; run += 1) {
    for (const server of run % 2 === 0 ? servers : [...servers].reverse()) {
      const took = await operation(client, server);
      if (took !== undefined) times.get(server.name)!.push(took);
    }
  }
  return times;
}

export const summary = (latencies: readonly number[]): { median: number; p90: number } => ({ median: median(latencies), p90: percentile(latencies, 90) });
