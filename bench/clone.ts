/**
 * Cipher comparison: `git clone --no-local --bare` and protocol-v2 `ls-remote` through
 * git-sshd with each of its ciphers, beside OpenSSH with its defaults and with
 * curve25519 + aes128-gcm, with `file://` as the floor. The full suite is bench/suite.ts.
 *
 *   npm run bench:clone                        # 50 MB repository, 5 runs each
 *   BENCH_MB=100 BENCH_RUNS=3 npm run bench:clone
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_REPO as REPO, prepare } from './lib/setup.js';
import { startGitSshd, startOpenSsh, sshCommand } from './lib/servers.js';
import { median, table } from './lib/stats.js';
import { runBench } from './lib/main.js';

const MB = Math.max(1, Math.min(1000, Number(process.env.BENCH_MB ?? 50)));
const RUNS = Math.max(1, Math.min(20, Number(process.env.BENCH_RUNS ?? 5)));
const LS_RUNS = 20;
const work = mkdtempSync(join(tmpdir(), 'git-sshd-bench-'));

function timeMs(args: string[], env: Record<string, string> = {}): number {
  const started = performance.now();
  const result = spawnSync('git', args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${result.stderr}`);
  return performance.now() - started;
}

async function main(): Promise<void> {
  const { key, publicKey, source, reposFor } = prepare(work, MB);
  const ours = await startGitSshd(work, publicKey, reposFor('git-sshd-repos'));
  const theirs = await startOpenSsh(work, publicKey, reposFor('openssh-repos'));
  try {
    const cases: Array<{ name: string; url: string; env: Record<string, string> }> = [
      { name: 'file:// (floor, no SSH)', url: `file://${source}`, env: {} },
      { name: 'OpenSSH sshd, its defaults (sntrup761, chacha20)', url: theirs.url(REPO), env: { GIT_SSH_COMMAND: sshCommand(key, theirs.port) } },
      {
        name: 'OpenSSH sshd, curve25519 + aes128-gcm',
        url: theirs.url(REPO),
        env: { GIT_SSH_COMMAND: sshCommand(key, theirs.port, ['-c aes128-gcm@openssh.com', '-o KexAlgorithms=curve25519-sha256']) },
      },
      ...['aes128-gcm@openssh.com', 'aes128-ctr', 'chacha20-poly1305@openssh.com'].map((cipher) => ({
        name: `git-sshd, ${cipher}`,
        url: ours.url(REPO),
        env: { GIT_SSH_COMMAND: sshCommand(key, ours.port, [`-c ${cipher}`]) },
      })),
      { name: 'git-sshd, default offer', url: ours.url(REPO), env: { GIT_SSH_COMMAND: sshCommand(key, ours.port) } },
    ];
    console.log(`# clone of a ${MB} MB repository, median of ${RUNS}; ls-remote median of ${LS_RUNS}; ${new Date().toISOString()}`);
    let floor = 0;
    const rows: string[][] = [];
    for (const testCase of cases) {
      const clones: number[] = [];
      for (let run = 0; run < RUNS; run += 1) {
        const target = join(work, `clone-${run}`);
        clones.push(timeMs(['clone', '-q', '--no-local', '--bare', testCase.url, target], testCase.env));
        rmSync(target, { recursive: true, force: true });
      }
      const lsRemote = Array.from({ length: LS_RUNS }, () => timeMs(['-c', 'protocol.version=2', 'ls-remote', testCase.url], testCase.env));
      const clone = median(clones);
      if (floor === 0) floor = clone;
      rows.push([testCase.name, clone.toFixed(0), (clone / floor).toFixed(2), ((MB / clone) * 1000).toFixed(0), median(lsRemote).toFixed(1)]);
    }
    console.log(table(['case', 'clone ms', 'x floor', 'MB/s', 'ls-remote v2 ms'], rows));
  } finally {
    await ours.stop();
    await theirs.stop();
  }
}

runBench(main, work);
