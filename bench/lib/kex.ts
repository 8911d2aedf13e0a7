import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { RunningServer } from './servers.js';
import { median, percentile, table } from './stats.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
/** Connections per block; blocks of each key exchange alternate. */
const BLOCK = 10;

export interface KexCase {
  readonly server: RunningServer;
  readonly kex: string;
}

/**
 * The cost of each key exchange: `ssh host git-upload-pack repo` (handshake, authentication,
 * the ref advertisement, a flush packet) with OpenSSH 10 from the Debian sid root (scripts/sid-root.sh:
 * bookworm's OpenSSH 9.2 has no ML-KEM), chrooted, forcing one kex at a time. Latency per
 * connection and server CPU per connection, in alternating blocks of the same run.
 */
export function kexCost(cases: readonly KexCase[], keyFile: string, runs: number): string {
  const sid = execFileSync('bash', [join(ROOT, 'scripts', 'sid-root.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').at(-1)!;
  const home = mkdtempSync(join(sid, 'tmp', 'git-sshd-bench-'));
  const inside = home.slice(sid.length);
  copyFileSync(keyFile, join(home, 'id'));
  const client = spawnSync('chroot', [sid, 'ssh', '-V'], { encoding: 'utf8' }).stderr.trim();
  try {
    const samples = cases.map(() => ({ times: [] as number[], cpu: 0, count: 0 }));
    const connect = (one: KexCase): number => {
      const started = performance.now();
      const result = spawnSync('chroot', [
        sid, 'ssh', '-F', '/dev/null', '-i', `${inside}/id`, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
        '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
        '-o', `KexAlgorithms=${one.kex}`, '-p', String(one.server.port), `${one.server.user}@127.0.0.1`,
        `git-upload-pack '${one.server.repoArg('bench/repo.git')}'`,
        // A flush packet: the client wants nothing, and upload-pack ends cleanly.
      ], { input: '0000', stdio: ['pipe', 'ignore', 'pipe'], encoding: 'utf8' });
      if (result.status !== 0) throw new Error(`ssh with ${one.kex} to ${one.server.name}: ${result.stderr}`);
      return performance.now() - started;
    };
    for (const one of cases) connect(one);
    for (let done = 0; done < runs; done += BLOCK) {
      cases.forEach((one, index) => {
        const sample = samples[index]!;
        const cpuBefore = one.server.cpuSeconds();
        for (let i = 0; i < BLOCK; i += 1) sample.times.push(connect(one));
        // The server's per-connection processes exit just after the client: let them be reaped.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
        sample.cpu += one.server.cpuSeconds() - cpuBefore;
        sample.count += BLOCK;
      });
    }
    const rows = cases.map((one, index) => {
      const { times, cpu, count } = samples[index]!;
      return [one.server.name, one.kex, median(times).toFixed(1), percentile(times, 90).toFixed(1), ((cpu / count) * 1000).toFixed(2)];
    });
    return (
      `${samples[0]!.count} connections per row, in alternating blocks of ${BLOCK}, with ${client} from Debian sid (chrooted; its start-up is in every row alike), ` +
      'each forcing one key exchange: `ssh host git-upload-pack repo` answered with a flush packet (handshake, authentication, ref advertisement). ' +
      'Server CPU per connection includes the git-upload-pack it runs.\n\n' +
      table(['server', 'kex', 'median ms', 'p90 ms', 'server CPU ms per connection'], rows)
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * The server's share of each key exchange alone, in this process: X25519 key generation and
 * agreement, plus for the hybrid the ML-KEM-768 import (its validity check) and
 * encapsulation, and the SHA-256 of both secrets. Microseconds per handshake.
 */
export async function kexServerCrypto(iterations: number): Promise<string> {
  const crypto = await import('node:crypto');
  const clientKem = crypto.generateKeyPairSync('ml-kem-768').publicKey.export({ format: 'raw-public' });
  const clientX = crypto.generateKeyPairSync('x25519').publicKey.export({ format: 'raw-public' });
  const x25519 = (): Buffer => {
    const ours = crypto.generateKeyPairSync('x25519');
    const peer = crypto.createPublicKey({ key: clientX, format: 'raw-public', asymmetricKeyType: 'x25519' });
    return crypto.diffieHellman({ privateKey: ours.privateKey, publicKey: peer });
  };
  const hybrid = (): Buffer => {
    const kem = crypto.createPublicKey({ key: clientKem, format: 'raw-public', asymmetricKeyType: 'ml-kem-768' });
    const { sharedKey } = crypto.encapsulate(kem);
    return crypto.createHash('sha256').update(sharedKey).update(x25519()).digest();
  };
  const micros = (work: () => Buffer): number => {
    for (let i = 0; i < 100; i += 1) work();
    const started = process.cpuUsage();
    for (let i = 0; i < iterations; i += 1) work();
    const used = process.cpuUsage(started);
    return (used.user + used.system) / iterations;
  };
  const classic = micros(x25519);
  const pq = micros(hybrid);
  return (
    `Server-side key exchange crypto alone, ${iterations} iterations each, CPU time in this process (node ${process.versions.node}, OpenSSL ${process.versions.openssl}):\n\n` +
    table(['kex', 'CPU µs per handshake'], [['curve25519-sha256 (X25519)', classic.toFixed(0)], ['mlkem768x25519-sha256 (ML-KEM-768 + X25519)', pq.toFixed(0)]]) +
    `\n\nML-KEM adds ${(pq - classic).toFixed(0)} µs of server CPU per handshake.`
  );
}
