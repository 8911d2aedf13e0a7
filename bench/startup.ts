/**
 * The first minutes of a user, timed: `npm start` to listening (and `node dist/main.js`,
 * and OpenSSH's sshd beside them), the up-to-date check that spares the rebuild, and the
 * users CLI. Wall time and CPU time (user + system of the whole process tree), median of
 * BENCH_STARTUP_RUNS (5); host keys exist already, as on every start after the first.
 *
 *   npm run bench:startup
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { treeCpuSeconds } from './lib/procfs.js';
import { median, table } from './lib/stats.js';

const ROOT = resolve(import.meta.dirname, '..');
const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 5);
const TIMEOUT_MS = 120_000;

interface Sample {
  readonly wall: number;
  readonly cpu: number;
}

/** Starts a server and resolves when a line of its output matches; then stops it. */
async function untilListening(command: string, args: string[], env: Record<string, string>, ready: RegExp): Promise<Sample> {
  const started = performance.now();
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  try {
    await new Promise<void>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`${command} did not listen within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      for (const stream of [child.stdout, child.stderr]) {
        createInterface({ input: stream }).on('line', (line) => {
          if (!ready.test(line)) return;
          clearTimeout(timer);
          done();
        });
      }
      child.once('exit', (code) => fail(new Error(`${command} exited with ${code} before listening`)));
    });
    return { wall: (performance.now() - started) / 1000, cpu: treeCpuSeconds(child.pid!) };
  } finally {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
  }
}

/** A port free on 127.0.0.1 now (OpenSSH takes no port 0). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  return port;
}

/** A command that runs to its end, timed by bash's `time` (children included). */
function timed(command: string, env: Record<string, string>): Sample {
  const result = spawnSync('bash', ['-c', `TIMEFORMAT='%R %U %S'; time (${command}) >/dev/null`], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: TIMEOUT_MS,
  });
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}`);
  const [wall, user, system] = result.stderr.trim().split('\n').at(-1)!.split(' ').map(Number) as [number, number, number];
  return { wall, cpu: user + system };
}

async function samples(measure: (run: number) => Promise<Sample> | Sample): Promise<Sample> {
  const all: Sample[] = [];
  for (let run = 0; run < RUNS; run++) all.push(await measure(run));
  return { wall: median(all.map((s) => s.wall)), cpu: median(all.map((s) => s.cpu)) };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'git-sshd-bench-startup-'));
  try {
    const env = { GIT_SSHD_DATA_DIR: join(work, 'data'), GIT_SSHD_LISTEN: '127.0.0.1:0', GIT_SSHD_WEB_LISTEN: '', NPM_CONFIG_UPDATE_NOTIFIER: 'false' };
    // The first start generates the host keys; every start measured here reuses them.
    await untilListening(process.execPath, ['dist/main.js'], env, /"listening"/);
    const rows: Array<[string, Sample]> = [];
    rows.push(['up-to-date check (node scripts/build.mjs)', await samples(() => timed('node scripts/build.mjs', env))]);
    rows.push(['npm start -> listening', await samples(() => untilListening('npm', ['start'], env, /"listening"/))]);
    rows.push(['node dist/main.js -> listening', await samples(() => untilListening(process.execPath, ['dist/main.js'], env, /"listening"/))]);
    if (existsSync('/usr/sbin/sshd') && process.getuid?.() === 0) {
      const dir = join(work, 'openssh');
      mkdirSync(dir);
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
      writeFileSync(join(dir, 'sshd_config'), `Port ${await freePort()}\nListenAddress 127.0.0.1\nHostKey ${join(dir, 'host_key')}\nPidFile none\nUsePAM no\nLogLevel INFO\n`);
      mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
      const sshd = ['-D', '-e', '-f', join(dir, 'sshd_config')];
      rows.push(['OpenSSH sshd -D -> listening', await samples(() => untilListening('/usr/sbin/sshd', sshd, {}, /Server listening/))]);
    }
    for (let run = 0; run < RUNS; run++) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, `key${run}`)]);
    rows.push(['npm run add-user', await samples((run) => timed(`npm run --silent add-user -- --name user${run} --key ${join(work, `key${run}.pub`)}`, env))]);
    rows.push(['npm run list-users', await samples(() => timed('npm run --silent list-users', env))]);
    rows.push(['npm run remove-user', await samples((run) => timed(`npm run --silent remove-user -- --name user${run}`, env))]);

    process.stdout.write(`${RUNS} runs each, medians; ${cpus().length} cores, load average ${loadavg()[0]?.toFixed(1)} at the end; node ${process.version}\n\n`);
    process.stdout.write(`${table(['step', 'wall s', 'CPU s'], rows.map(([name, s]) => [name, s.wall.toFixed(2), s.cpu.toFixed(2)]))}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
