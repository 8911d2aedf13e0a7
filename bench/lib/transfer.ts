import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ownCpuSeconds, treeRssKiB } from './procfs.js';
import { sshCommand, type RunningServer } from './servers.js';

export interface TransferSample {
  readonly wall: number;
  /** The server's whole cgroup (git included). */
  readonly cpu: number;
  /** git-sshd's node process alone (the SSH layer); 0 for OpenSSH. */
  readonly own: number;
  /** Highest resident memory of the server's process tree during the run, above what it was before, KiB. */
  readonly peakRssKiB: number;
  /** The same without git's processes (which map the pack on both servers): the SSH layer's own, KiB. */
  readonly peakSshRssKiB: number;
}

/** git's processes: git, git-upload-pack, git-pack-objects, ... */
const GIT = /^git/;

/** Runs `git args` with the server's SSH command while sampling the server's memory; its server-side costs. */
export async function measured(server: RunningServer, key: string, args: string[], sshExtra: string[] = []): Promise<TransferSample> {
  const rssBefore = treeRssKiB(server.pid);
  const sshBefore = treeRssKiB(server.pid, GIT);
  let peak = rssBefore;
  let sshPeak = sshBefore;
  const cpuBefore = server.cpuSeconds();
  const ownBefore = server.name === 'OpenSSH' ? 0 : ownCpuSeconds(server.pid);
  const started = performance.now();
  const child = spawn('git', args, {
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_SSH_COMMAND: sshCommand(key, server.port, sshExtra) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const sampler = setInterval(() => {
    peak = Math.max(peak, treeRssKiB(server.pid));
    sshPeak = Math.max(sshPeak, treeRssKiB(server.pid, GIT));
  }, 100);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearInterval(sampler);
  const wall = performance.now() - started;
  if (code !== 0) throw new Error(`git ${args.join(' ')} with ${server.name}: ${stderr}`);
  // The server's per-connection processes exit just after the client: let them be reaped.
  await new Promise((done) => setTimeout(done, 300));
  return {
    wall,
    cpu: server.cpuSeconds() - cpuBefore,
    own: server.name === 'OpenSSH' ? 0 : ownCpuSeconds(server.pid) - ownBefore,
    peakRssKiB: peak - rssBefore,
    peakSshRssKiB: sshPeak - sshBefore,
  };
}

/** A bare clone of `repo` from `server` into `target` (removed first and after). */
export async function cloneFrom(server: RunningServer, key: string, repo: string, target: string, sshExtra: string[] = []): Promise<TransferSample> {
  rmSync(target, { recursive: true, force: true });
  const sample = await measured(server, key, ['clone', '-q', '--bare', server.url(repo), target], sshExtra);
  return sample;
}

/** A push of `source`'s main branch into a new, empty repository `name` on `server`. */
export async function pushTo(server: RunningServer, key: string, source: string, name: string, sshExtra: string[] = []): Promise<TransferSample> {
  if (server.name === 'OpenSSH') {
    execFileSync('git', ['init', '-q', '--bare', server.repoArg(name)]);
    execFileSync('chown', ['-R', server.user, server.repoArg(name)]);
  }
  return measured(server, key, ['-C', source, 'push', '-q', server.url(name), 'refs/heads/main:refs/heads/main'], sshExtra);
}

export interface ParallelResult {
  readonly wall: number;
  readonly cpu: number;
  readonly peakRssKiB: number;
  readonly peakSshRssKiB: number;
  readonly failed: number;
}

/** `count` bare clones of `repo` at once; the server's CPU over all of them and its peak memory. */
export async function parallelClones(server: RunningServer, key: string, repo: string, work: string, count: number): Promise<ParallelResult> {
  const rssBefore = treeRssKiB(server.pid);
  const sshBefore = treeRssKiB(server.pid, GIT);
  let peak = rssBefore;
  let sshPeak = sshBefore;
  const cpuBefore = server.cpuSeconds();
  const started = performance.now();
  const sampler = setInterval(() => {
    peak = Math.max(peak, treeRssKiB(server.pid));
    sshPeak = Math.max(sshPeak, treeRssKiB(server.pid, GIT));
  }, 200);
  const targets = Array.from({ length: count }, (_, i) => join(work, `parallel-${i}`));
  const codes = await Promise.all(
    targets.map(async (target) => {
      rmSync(target, { recursive: true, force: true });
      const child = spawn('git', ['clone', '-q', '--bare', server.url(repo), target], {
        env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_SSH_COMMAND: sshCommand(key, server.port) },
        stdio: 'ignore',
      });
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    }),
  );
  clearInterval(sampler);
  const wall = performance.now() - started;
  await new Promise((done) => setTimeout(done, 500));
  for (const target of targets) rmSync(target, { recursive: true, force: true });
  return { wall, cpu: server.cpuSeconds() - cpuBefore, peakRssKiB: peak - rssBefore, peakSshRssKiB: sshPeak - sshBefore, failed: codes.filter((code) => code !== 0).length };
}
