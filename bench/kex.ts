/**
 * Key exchange cost: git-sshd with mlkem768x25519-sha256 beside curve25519-sha256, and
 * OpenSSH's sshd with sntrup761x25519-sha512 beside curve25519-sha256, from OpenSSH 10's
 * client. The same table is section 1b of the full suite (bench/suite.ts).
 *
 *   npm run bench:kex                  # 100 connections per row
 *   BENCH_KEX_RUNS=300 npm run bench:kex
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kexCost, kexServerCrypto } from './lib/kex.js';
import { prepare } from './lib/setup.js';
import { startGitSshd, startOpenSsh } from './lib/servers.js';
import { runBench } from './lib/main.js';

const RUNS = Math.max(10, Math.min(2000, Number(process.env.BENCH_KEX_RUNS ?? 100)));
const work = mkdtempSync(join(tmpdir(), 'git-sshd-bench-kex-'));

async function main(): Promise<void> {
  const { key, publicKey, reposFor } = prepare(work, 1);
  const ours = await startGitSshd(work, publicKey, reposFor('git-sshd-repos'));
  const theirs = await startOpenSsh(work, publicKey, reposFor('openssh-repos'));
  try {
    console.log(`${await kexServerCrypto(2000)}\n`);
    console.log(kexCost([
      { server: ours, kex: 'mlkem768x25519-sha256' },
      { server: ours, kex: 'curve25519-sha256' },
      { server: theirs, kex: 'sntrup761x25519-sha512' },
      { server: theirs, kex: 'curve25519-sha256' },
    ], key, RUNS));
  } finally {
    await ours.stop();
    await theirs.stop();
  }
}

runBench(main, work);
