/**
 * What PROXY protocol costs a client. Sequential runs, alternating the set-ups, median and
 * p90 wall time of:
 *   - `git ls-remote` (the OpenSSH client sends its banner at once) direct with PROXY off,
 *     direct with policy `use` (no header: the first bytes end the wait), and through
 *     HAProxy with and without send-proxy-v2 (the header's own cost, beside HAProxy's hop);
 *   - `ssh-keyscan` (waits for the server to speak first) with PROXY off, with `use` (it waits
 *     out proxy_header_timeout: the unavoidable price of `use`), and from a source outside
 *     `proxy_allowed` (policy `reject`, which does not wait).
 * It also prints the server's own figure, git_sshd_proxy_header_wait_seconds.
 *
 *   npm run bench:proxy                  # 20 runs of each
 *   BENCH_RUNS=50 npm run bench:proxy
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gitLocal, makeKey, makeWorkTree, run, sshCommand, type ClientKey } from '../test/helpers/client.js';
import { startHaproxy } from '../test/helpers/loadBalancers.js';
import { adminUsers, TestServer } from '../test/helpers/server.js';

const RUNS = Math.max(3, Math.min(200, Number(process.env.BENCH_RUNS ?? 20)));
const REPO = 'team/app.git';

async function startServer(key: ClientKey, sshd: Record<string, unknown>): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'git-sshd-bench-'));
  mkdirSync(join(dir, 'data', 'repos', 'team'), { recursive: true });
  gitLocal(['clone', '-q', '--bare', makeWorkTree(), join(dir, 'data', 'repos', REPO)]);
  return TestServer.start({ dir, users: adminUsers(key), config: { log_level: 'info', sshd } });
}

async function timed(command: string, args: string[], env: Record<string, string> = {}): Promise<number> {
  const started = performance.now();
  const result = await run(command, args, { env, timeoutMs: 30_000 });
  if (result.code !== 0) throw new Error(`${command} failed: ${result.stderr}`);
  return performance.now() - started;
}

function lsRemote(key: ClientKey, port: number): Promise<number> {
  return timed('git', ['ls-remote', `ssh://git@127.0.0.1:${port}/${REPO}`], {
    GIT_SSH_COMMAND: sshCommand(key, port),
    GIT_CONFIG_NOSYSTEM: '1',
  });
}

function keyscan(port: number): Promise<number> {
  return timed('ssh-keyscan', ['-t', 'ed25519', '-p', String(port), '127.0.0.1']);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

async function main(): Promise<void> {
  const key = makeKey();
  const off = await startServer(key, { proxy_protocol: false });
  const use = await startServer(key, { proxy_protocol: true, proxy_policy: 'use' });
  const notAllowed = await startServer(key, { proxy_protocol: true, proxy_allowed: ['10.0.0.0/8'] });
  const lbPlain = await startHaproxy(off.port, '127.0.0.3', [{ name: 'plain', sendProxy: '' }]);
  const lbProxy = await startHaproxy(use.port, '127.0.0.3', [{ name: 'v2', sendProxy: 'send-proxy-v2' }]);
  const scenarios: Array<[string, () => Promise<number>]> = [
    ['git ls-remote, direct, PROXY off', () => lsRemote(key, off.port)],
    ['git ls-remote, direct, policy use (no header)', () => lsRemote(key, use.port)],
    ['git ls-remote, HAProxy without header, PROXY off', () => lsRemote(key, lbPlain.ports.plain!)],
    ['git ls-remote, HAProxy send-proxy-v2, policy use', () => lsRemote(key, lbProxy.ports.v2!)],
    ['ssh-keyscan, PROXY off', () => keyscan(off.port)],
    ['ssh-keyscan, policy use (waits out the 500 ms timeout)', () => keyscan(use.port)],
    ['ssh-keyscan, source not in proxy_allowed (reject: no wait)', () => keyscan(notAllowed.port)],
  ];
  const figures = new Map<string, number[]>(scenarios.map(([name]) => [name, []]));
  try {
    for (const [, scenario] of scenarios) await scenario(); // warm-up
    for (let i = 0; i < RUNS; i += 1) {
      for (const [name, scenario] of scenarios) figures.get(name)!.push(await scenario());
    }
    console.log(`PROXY protocol latency: ${RUNS} sequential runs each, alternating, proxy_header_timeout 500ms\n`);
    console.log('| scenario | median ms | p90 ms |');
    console.log('|---|---|---|');
    for (const [name, values] of figures) console.log(`| ${name} | ${percentile(values, 50).toFixed(1)} | ${percentile(values, 90).toFixed(1)} |`);
    console.log('\nserver side, git_sshd_proxy_header_wait_seconds (accept -> decision), mean per result:');
    const metric = (name: string, labels: string) => use.metric(`git_sshd_proxy_header_wait_seconds_${name}`, labels);
    const headerSum = await metric('sum', '{result="v2"}');
    const headerCount = await metric('count', '{result="v2"}');
    console.log(`  with a header (v2): mean ${(((headerSum ?? NaN) / (headerCount ?? NaN)) * 1000).toFixed(2)} ms over ${headerCount} connections`);
    const quick = await metric('bucket', '{le="0.005",result="absent"}');
    const all = await metric('count', '{result="absent"}');
    console.log(`  without a header: ${quick} of ${all} decided within 5 ms (clients that speak first); the other ${(all ?? 0) - (quick ?? 0)} waited out the timeout (ssh-keyscan)`);
  } finally {
    await lbPlain.stop();
    await lbProxy.stop();
    for (const server of [off, use, notAllowed]) await server.dispose();
  }
}

await main();
