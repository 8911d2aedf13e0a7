/**
 * A big users.yml: start, reload and login latency at 10,000 and 100,000 users, against the
 * same server with one user; and how long the event loop stalls during a reload, seen as
 * the slowest liveness probe answered while it runs.
 *
 *   npm run build && node --import tsx bench/users.ts        (BENCH_USERS=10000,100000)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeKey, ssh, temporaryDir, type ClientKey } from '../test/helpers/client.js';
import { TestServer } from '../test/helpers/server.js';
import { bigUsersFile } from './lib/usersFile.js';

const SIZES = (process.env.BENCH_USERS ?? '10000,100000').split(',').map(Number);
const LOGIN_RUNS = 7;

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function loginMs(key: ClientKey, port: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < LOGIN_RUNS; i += 1) {
    const started = performance.now();
    const result = await ssh(key, port);
    if (result.code !== 0) throw new Error(`login failed: ${result.stderr}`);
    times.push(performance.now() - started);
  }
  return median(times);
}

/** Probes liveness every 10 ms until `until` settles; resolves with the slowest answer. */
async function slowestProbe(server: TestServer, until: Promise<unknown>): Promise<{ slowestMs: number; probes: number }> {
  let done = false;
  void until.finally(() => (done = true));
  let slowestMs = 0;
  let probes = 0;
  while (!done) {
    const started = performance.now();
    await server.http('/health');
    slowestMs = Math.max(slowestMs, performance.now() - started);
    probes += 1;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { slowestMs, probes };
}

async function measure(users: number, key: ClientKey): Promise<Record<string, number>> {
  const dir = temporaryDir('git-sshd-bench-users-');
  const file = join(dir, 'data', 'users.yml');
  const me = [`  - name: bencher`, `    keys: ["${key.publicLine}"]`, `    access: { "*": admin }`];
  const text = users > 0 ? bigUsersFile(users, me) : `users:\n${me.join('\n')}\n`;
  (await import('node:fs')).mkdirSync(join(dir, 'data'), { recursive: true });
  writeFileSync(file, text);
  const started = performance.now();
  const server = await TestServer.start({ dir, config: { log_level: 'info' } });
  const startMs = performance.now() - started;
  try {
    const loaded = server.logs.find((line) => line.msg === 'loaded users file');
    const login = await loginMs(key, server.port);
    // The first request of this process pays for its HTTP client; not the server's time.
    for (let i = 0; i < 3; i += 1) await server.http('/health');
    // A typical edit: one user's access changed, one comment added.
    const mark = server.mark();
    const edited = `# edited\n${readFileSync(file, 'utf8').replace('team1/*', 'team1/app')}`;
    const reloadStarted = performance.now();
    writeFileSync(file, edited);
    const reloaded = server.waitForLogSince(mark, (line) => line.msg === 'reloaded users file', 600_000);
    const probe = await slowestProbe(server, reloaded);
    const line = await reloaded;
    const reloadMs = performance.now() - reloadStarted;
    const loginDuring = await loginMs(key, server.port);
    return {
      users,
      start_ms: Math.round(startMs),
      start_parse_ms: Number(loaded?.parse_ms ?? NaN),
      login_ms: Math.round(login),
      reload_ms: Math.round(reloadMs),
      reload_parse_ms: Number(line.parse_ms),
      reload_apply_ms: Number(line.apply_ms),
      reload_changed: Number(line.changed),
      slowest_probe_during_reload_ms: Math.round(probe.slowestMs),
      probes_during_reload: probe.probes,
      login_after_reload_ms: Math.round(loginDuring),
    };
  } finally {
    await server.dispose();
  }
}

const key = makeKey();
const rows: Array<Record<string, number>> = [];
for (const users of [0, ...SIZES]) {
  const row = await measure(users, key);
  rows.push(row);
  console.log(JSON.stringify(row));
}
const baseline = rows[0];
console.log('\n| users | start | parse at start | login (median) | login vs 1 user | reload (edit to taken) | parse / apply | slowest probe during reload | probes answered |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const row of rows) {
  const ratio = baseline ? (Number(row.login_ms) / Number(baseline.login_ms)).toFixed(2) : '';
  console.log(
    `| ${row.users} | ${row.start_ms} ms | ${row.start_parse_ms} ms | ${row.login_ms} ms | ${ratio}x | ${row.reload_ms} ms | ${row.reload_parse_ms} / ${row.reload_apply_ms} ms | ${row.slowest_probe_during_reload_ms} ms | ${row.probes_during_reload} |`,
  );
}
