/**
 * git through Gitaly against git on a local volume, on the same repository: backend gitlab
 * with gitlab.git_transport gitaly (the Gitaly test peer, test/gitaly-peer) and local (the
 * same storage directory), same internal API fixture, same client. Prints clone and push
 * throughput (median of runs), then the peak RSS of git-sshd while a client reads a large
 * clone through Gitaly slowly (backpressure: it must not buffer the pack).
 *
 *   npm run bench:gitaly                                   # 100 MB, 3 runs; 200 MB at 1 MB/s
 *   BENCH_MB=50 BENCH_RUNS=5 BENCH_SLOW_MB=50 npm run bench:gitaly
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { git, gitLocal, makeKey, run, sshCommand, temporaryDir, type ClientKey } from '../test/helpers/client.js';
import { GitalyPeer } from '../test/helpers/gitalyPeer.js';
import { allowedReply, GitlabApiFixture } from '../test/helpers/gitlabApi.js';
import { ROOT, TestServer } from '../test/helpers/server.js';
import { makeRepository } from './lib/repo.js';
import { median, table } from './lib/stats.js';

const MB = Math.max(1, Math.min(1000, Number(process.env.BENCH_MB ?? 100)));
const RUNS = Math.max(1, Math.min(20, Number(process.env.BENCH_RUNS ?? 3)));
const SLOW_MB = Math.max(0, Math.min(1000, Number(process.env.BENCH_SLOW_MB ?? 200)));
const SLOW_RATE = Math.max(100_000, Number(process.env.BENCH_SLOW_RATE ?? 1024 * 1024));
const SECRET = 'bench-secret';
const TOKEN = 'bench-token';

/** VmHWM (peak resident set) and VmRSS of one process, in MiB. */
function memoryMiB(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(/(\d+) kB/.exec(status.split('\n').find((line) => line.startsWith(name)) ?? '')?.[1] ?? NaN) / 1024;
  return { peak: field('VmHWM:'), now: field('VmRSS:') };
}

async function timed(action: () => Promise<{ code: number | null; stderr: string }>): Promise<number> {
  const started = performance.now();
  const result = await action();
  if (result.code !== 0) throw new Error(result.stderr);
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const work = temporaryDir('git-sshd-bench-gitaly-');
  const storage = join(work, 'storage');
  mkdirSync(storage, { recursive: true });
  const source = makeRepository(join(work, 'source'), MB);
  gitLocal(['clone', '-q', '--bare', '--no-local', source, join(storage, 'bench', 'repo.git')]);
  if (SLOW_MB > 0) {
    const big = makeRepository(join(work, 'slow-source'), SLOW_MB, 'git-sshd-bench-slow');
    gitLocal(['clone', '-q', '--bare', '--no-local', big, join(storage, 'bench', 'slow.git')]);
  }
  const key: ClientKey = makeKey();
  const api = new GitlabApiFixture(SECRET);
  await api.start();
  api.users.set(key.publicLine.split(' ')[1]!.replace(/=+$/, ''), { keyId: 1, userId: 1, username: 'bench' });
  const peer = await GitalyPeer.start(['-token', TOKEN, '-storage', `default=${storage}`]);
  // The project named in the command is the repository: bench/<name>.git in the storage.
  api.handlers['/api/v4/internal/allowed'] = (req) => {
    const relativePath = String(req.body.project).replace(/^\//, '');
    const reply = allowedReply({ relativePath, projectPath: relativePath.replace(/\.git$/, ''), userId: 1, username: 'bench' });
    const body = reply.body as Record<string, any>;
    return { status: 200, body: { ...body, git_config_options: [], gitaly: { ...body.gitaly, address: peer.address, token: TOKEN } } };
  };
  const common = { backend: 'gitlab', gitlab_url: api.url, secret: SECRET, log_level: 'info' };
  const viaGitaly = await TestServer.start({ config: { ...common, gitlab: { git_transport: 'gitaly' } } });
  const viaLocal = await TestServer.start({ config: { ...common, gitlab: { git_transport: 'local', local_push: true, storages: { default: storage } } } });
  const servers = [viaGitaly, viaLocal];
  try {
    console.log(`# ${MB} MB repository, median of ${RUNS}; ${new Date().toISOString()}`);
    const rows: string[][] = [];
    for (const [name, server] of [['git in Gitaly (sidechannel / SSHReceivePack)', viaGitaly], ['git on a local volume', viaLocal]] as const) {
      const url = (repo: string): string => `ssh://git@127.0.0.1:${server.port}/${repo}`;
      const clones: number[] = [];
      const pushes: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const target = join(work, `clone-${i}`);
        clones.push(await timed(() => git(key, server.port, ['clone', '-q', '--bare', url('bench/repo.git'), target])));
        rmSync(target, { recursive: true, force: true });
        const pushed = `bench/push-${name.length}-${i}.git`;
        gitLocal(['init', '-q', '--bare', join(storage, pushed)]);
        pushes.push(await timed(() => git(key, server.port, ['push', '-q', url(pushed), 'main'], source)));
        rmSync(join(storage, pushed), { recursive: true, force: true });
      }
      rows.push([name, `${(MB / median(clones)).toFixed(1)} MB/s`, `${median(clones).toFixed(2)} s`, `${(MB / median(pushes)).toFixed(1)} MB/s`, `${median(pushes).toFixed(2)} s`]);
    }
    console.log(table(['transport', 'clone', 'clone time', 'push', 'push time'], rows));

    if (SLOW_MB > 0) {
      // A fresh server, so that its peak is the slow clone's alone.
      const fresh = await TestServer.start({ config: { ...common, gitlab: { git_transport: 'gitaly' } } });
      servers.push(fresh);
      const pid = fresh.child.pid!;
      const before = memoryMiB(pid);
      const throttle = join(ROOT, 'test', 'helpers', 'throttle.mjs');
      const pipeline = `set -o pipefail; ${sshCommand(key, fresh.port)} "$@" | ${process.execPath} ${throttle} ${SLOW_RATE}`;
      const started = performance.now();
      const slow = await run('git', ['clone', '-q', '--bare', `ssh://git@127.0.0.1:${fresh.port}/bench/slow.git`, join(work, 'slow-clone')], {
        env: { GIT_SSH_COMMAND: `bash -c '${pipeline}' slow-ssh` },
        timeoutMs: 3_600_000,
      });
      if (slow.code !== 0) throw new Error(slow.stderr);
      const after = memoryMiB(pid);
      console.log(
        `\n# slow reader: ${SLOW_MB} MB clone through Gitaly read at ${(SLOW_RATE / 1024 / 1024).toFixed(2)} MiB/s took ${((performance.now() - started) / 1000).toFixed(0)} s; ` +
          `git-sshd RSS before ${before.now.toFixed(0)} MiB (peak so far ${before.peak.toFixed(0)} MiB), peak after ${after.peak.toFixed(0)} MiB`,
      );
    }
  } finally {
    for (const server of servers) await server.dispose();
    await peer.stop();
    await api.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
