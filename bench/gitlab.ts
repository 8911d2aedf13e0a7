/**
 * Backend gitlab against the internal API fixture, with a simulated Rails latency: what
 * the key cache saves. Sequential `ssh git@host` (discover) and `git ls-remote` runs with
 * gitlab.key_cache_ttl 30s and 0 (off, as gitlab-sshd), alternating; prints the median
 * and p90 wall time and the internal API calls per run.
 *
 *   npm run bench:gitlab                          # 20 runs, 20 ms per API call
 *   BENCH_RUNS=50 BENCH_API_MS=50 npm run bench:gitlab
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gitLocal, makeKey, makeWorkTree, run, ssh, sshCommand, temporaryDir, type ClientKey } from '../test/helpers/client.js';
import { allowedReply, GitlabApiFixture } from '../test/helpers/gitlabApi.js';
import { TestServer } from '../test/helpers/server.js';

const RUNS = Math.max(3, Math.min(200, Number(process.env.BENCH_RUNS ?? 20)));
const API_MS = Math.max(0, Math.min(1000, Number(process.env.BENCH_API_MS ?? 20)));
const RELATIVE = 'group/project.git';

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

async function timed(action: () => Promise<{ code: number | null; stderr: string }>): Promise<number> {
  const started = performance.now();
  const result = await action();
  if (result.code !== 0) throw new Error(result.stderr);
  return performance.now() - started;
}

async function main(): Promise<void> {
  const api = new GitlabApiFixture('bench-secret');
  await api.start();
  const key: ClientKey = makeKey();
  api.users.set(key.publicLine.split(' ')[1]!.replace(/=+$/, ''), { keyId: 1, userId: 1, username: 'bench' });
  api.handlers['/api/v4/internal/allowed'] = () => allowedReply({ relativePath: RELATIVE, projectPath: 'group/project', userId: 1, username: 'bench' });
  // Rails takes time to answer: every fixture reply is delayed.
  for (const [path, handler] of Object.entries(api.handlers)) {
    api.handlers[path] = (req) => {
      const end = Date.now() + API_MS;
      while (Date.now() < end) {
        // A busy wait keeps the fixture synchronous; the fixture runs in this process, not the server's.
      }
      return handler(req);
    };
  }
  const storage = temporaryDir('git-sshd-bench-storage-');
  mkdirSync(join(storage, 'group'), { recursive: true });
  gitLocal(['clone', '-q', '--bare', makeWorkTree(), join(storage, RELATIVE)]);
  const servers = new Map<string, TestServer>();
  for (const ttl of ['30s', '0']) {
    servers.set(
      ttl,
      await TestServer.start({ config: { log_level: 'info', backend: 'gitlab', gitlab_url: api.url, secret: 'bench-secret', gitlab: { storages: { default: storage }, key_cache_ttl: ttl } } }),
    );
  }
  const figures = new Map<string, { times: number[]; calls: number }>();
  try {
    for (let i = 0; i < RUNS; i += 1) {
      for (const [ttl, server] of servers) {
        for (const [op, action] of [
          ['discover', () => ssh(key, server.port)],
          ['git ls-remote', () => run('git', ['ls-remote', `ssh://git@127.0.0.1:${server.port}/${RELATIVE}`], { env: { GIT_SSH_COMMAND: sshCommand(key, server.port) } })],
        ] as const) {
          const name = `${op}, key cache ${ttl === '0' ? 'off (as gitlab-sshd)' : ttl}`;
          const entry = figures.get(name) ?? { times: [], calls: 0 };
          const before = api.requests.length;
          entry.times.push(await timed(action));
          entry.calls += api.requests.length - before;
          figures.set(name, entry);
        }
      }
    }
    console.log(`backend gitlab: ${RUNS} sequential runs each, alternating, internal API answering in ${API_MS} ms\n`);
    console.log('| operation | median ms | p90 ms | API calls per run |');
    console.log('|---|---|---|---|');
    for (const [name, { times, calls }] of figures) {
      console.log(`| ${name} | ${percentile(times, 50).toFixed(1)} | ${percentile(times, 90).toFixed(1)} | ${(calls / times.length).toFixed(2)} |`);
    }
  } finally {
    for (const server of servers.values()) await server.dispose();
    await api.stop();
  }
}

await main();
