import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, makeKey, makeWorkTree, run, ssh, sshArgs, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { killGroup, spawnGroup } from './helpers/processes.js';
import { adminUsers, TestServer } from './helpers/server.js';
import { within } from './helpers/wait.js';

/**
 * gitlab-sshd's SLI counters keep GitLab's names so that its dashboards and alerts work;
 * those names break two of promtool's style rules (no ":" and a "_total" suffix), and
 * gitlab-sshd's own endpoint draws the same findings. Everything else must lint clean.
 */
const COMPATIBILITY_FINDINGS = new Set(
  ['sessions', 'connections'].flatMap((kind) => [
    `gitlab_sli:shell_sshd_${kind}:total counter metrics should have "_total" suffix`,
    `gitlab_sli:shell_sshd_${kind}:total metric names should not contain ':'`,
    `gitlab_sli:shell_sshd_${kind}:errors_total metric names should not contain ':'`,
  ]),
);

async function promtool(body: string): Promise<{ code: number | null; findings: string[] }> {
  const result = await run('promtool', ['check', 'metrics'], { input: body });
  const findings = `${result.stdout}\n${result.stderr}`.split('\n').map((line) => line.trim()).filter(Boolean);
  return { code: result.code, findings };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('/metrics', () => {
  let server: TestServer;
  let key: ClientKey;

  before(async () => {
    key = makeKey();
    server = await TestServer.start({ users: adminUsers(key) });
  });
  after(() => server.dispose());

  test('before any traffic, every metric is there and promtool finds nothing but the GitLab names', async () => {
    const { body } = await server.http('/metrics');
    for (const name of [
      'gitlab_shell_sshd_in_flight_connections',
      'gitlab_shell_sshd_concurrent_limited_sessions_total',
      'gitlab_shell_sshd_session_duration_seconds',
      'gitlab_shell_sshd_session_established_duration_seconds',
      'gitlab_sli:shell_sshd_sessions:total',
      'gitlab_sli:shell_sshd_sessions:errors_total',
      'gitlab_sli:shell_sshd_connections:total',
      'gitlab_sli:shell_sshd_connections:errors_total',
      'git_sshd_connections',
      'git_sshd_lifecycle_state',
      'git_sshd_drain_duration_seconds',
      'git_sshd_sessions_cut_at_shutdown_total',
      'git_sshd_bytes_total',
      'git_sshd_build_info',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      assert.match(body, new RegExp(`^# TYPE ${name.replace(/[:]/g, '\\:')} `, 'm'), name);
    }
    assert.match(body, /^gitlab_shell_sshd_session_duration_seconds_bucket\{le="5"\} 0$/m);
    assert.match(body, /^gitlab_shell_sshd_session_duration_seconds_bucket\{le="30"\} 0$/m);
    assert.match(body, /^gitlab_shell_sshd_session_established_duration_seconds_bucket\{le="0.5"\} 0$/m);
    const { code, findings } = await promtool(body);
    assert.ok(code === 0 || code === 3, `promtool could not parse the output (exit ${code}): ${findings.join('; ')}`);
    assert.deepEqual(findings.filter((line) => !COMPATIBILITY_FINDINGS.has(line)), []);
  });

  test('a clone, a welcome and a denied command move the counters as they should', async () => {
    const pushed = await git(key, server.port, ['push', '-q', url(server.port, 'team/app'), 'main'], makeWorkTree());
    assert.equal(pushed.code, 0, pushed.stderr);
    const cloned = await git(key, server.port, ['clone', '-q', url(server.port, 'team/app'), join(temporaryDir('git-sshd-m-'), 'c')]);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.equal((await ssh(key, server.port)).code, 0);
    assert.notEqual((await ssh(key, server.port, ['rm', '-rf', '/'])).code, 0);
    await server.waitForLog(() => server.summaries().length >= 4);

    assert.equal(await server.metric('gitlab_sli:shell_sshd_sessions:total'), 4);
    assert.equal(await server.metric('gitlab_sli:shell_sshd_sessions:errors_total'), 0, 'a denial is not an error');
    assert.equal(await server.metric('gitlab_sli:shell_sshd_connections:total'), 4);
    assert.equal(await server.metric('gitlab_shell_sshd_session_duration_seconds_count'), 4);
    assert.equal(await server.metric('gitlab_shell_sshd_session_established_duration_seconds_count'), 4);
    assert.equal(await server.metric('gitlab_shell_sshd_in_flight_connections'), 0);
    assert.equal(await server.metric('git_sshd_commands_total', '{command="git-receive-pack",result="ok"}'), 1);
    assert.equal(await server.metric('git_sshd_commands_total', '{command="git-upload-pack",result="ok"}'), 1);
    assert.equal(await server.metric('git_sshd_commands_total', '{command="welcome",result="ok"}'), 1);
    assert.equal(await server.metric('git_sshd_commands_total', '{command="unknown",result="unknown_command"}'), 1);
    assert.equal(await server.metric('git_sshd_auth_attempts_total', '{method="publickey",outcome="accepted"}'), 4);
    assert.equal(await server.metric('git_sshd_client_software_total', '{software="OpenSSH_9.2"}'), 4);
    assert.equal(await server.metric('git_sshd_negotiated_algorithms_total', '{kind="kex",algorithm="curve25519-sha256"}'), 4);
    assert.ok((await server.metric('git_sshd_bytes_total', '{direction="sent"}'))! > 1000);
    assert.ok((await server.metric('git_sshd_bytes_total', '{direction="received"}'))! > 1000);
    assert.equal(await server.metric('git_sshd_lifecycle_state', '{state="ready"}'), 1);
    assert.equal(await server.metric('git_sshd_build_info', '{version="0.1.0"}'), 1);

    const { code, findings } = await promtool((await server.http('/metrics')).body);
    assert.ok(code === 0 || code === 3, `promtool exit ${code}`);
    assert.deepEqual(findings.filter((line) => !COMPATIBILITY_FINDINGS.has(line)), []);
  });

  test('the connection gauges follow a session: unauthenticated, then active, then gone', async (t) => {
    const mark = server.mark();
    const child = spawnGroup('ssh', [...sshArgs(key, server.port), 'git@127.0.0.1', 'git-upload-pack', 'team/app'], { stdio: ['pipe', 'pipe', 'ignore'] });
    t.after(() => killGroup(child));
    const exited = once(child, 'exit');
    child.stdout!.resume();
    const running = await server.waitForLogSince(mark, (line) => line.msg === 'running git');
    assert.equal(await server.metric('gitlab_shell_sshd_in_flight_connections'), 1);
    assert.equal(await server.metric('git_sshd_connections', '{phase="active"}'), 1);
    assert.equal(await server.metric('git_sshd_connections', '{phase="unauthenticated"}'), 0);
    child.stdin!.end('0000');
    await within('ssh exit', exited);
    // This connection's end: those of the tests before may still be logged after the mark.
    await server.waitForLogSince(mark, (line) => line.msg === 'connection closed' && line.correlation_id === running.correlation_id);
    assert.equal(await server.metric('git_sshd_connections', '{phase="active"}'), 0);
    assert.equal(await server.metric('git_sshd_connections', '{phase="idle"}'), 0);
    assert.equal(await server.metric('gitlab_shell_sshd_in_flight_connections'), 0);
  });
});

describe('scraped by a real Prometheus server', () => {
  let server: TestServer;
  let key: ClientKey;
  let prometheus: ChildProcess;
  let prometheusPort: number;
  let prometheusLog = '';

  before(async () => {
    key = makeKey();
    server = await TestServer.start({ users: adminUsers(key) });
    const dir = temporaryDir('git-sshd-prometheus-');
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        '  - job_name: git-sshd',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${server.monitoringPort}']`,
        '',
      ].join('\n'),
    );
    prometheusPort = await freePort();
    prometheus = spawnGroup(
      'prometheus',
      [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${prometheusPort}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prometheus.stderr!.on('data', (chunk: Buffer) => (prometheusLog = (prometheusLog + chunk.toString()).slice(-4000)));
  });

  after(async () => {
    if (prometheus) await killGroup(prometheus);
    await server?.dispose();
  });

  /** Polls an instant query until `accept` likes the first sample's value (bounded: two minutes, for a loaded machine). */
  async function queryUntil(expr: string, accept: (value: number) => boolean): Promise<number> {
    let last: number | undefined;
    for (let attempt = 0; attempt < 600; attempt++) {
      try {
        const response = await fetch(`http://127.0.0.1:${prometheusPort}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(30_000) });
        const body = (await response.json()) as { data?: { result?: Array<{ value: [number, string] }> } };
        const sample = body.data?.result?.[0];
        if (sample) {
          last = Number(sample.value[1]);
          if (accept(last)) return last;
        }
      } catch {
        // Prometheus is still starting.
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`${expr}: last value ${last}; prometheus said: ${prometheusLog}`);
  }

  test('sees the target up and a counter that moved after a clone', async () => {
    assert.equal(await queryUntil('up{job="git-sshd"}', (value) => value === 1), 1);
    const before = await queryUntil('sum(git_sshd_commands_total{command="git-upload-pack"}) or vector(0)', () => true);
    const pushed = await git(key, server.port, ['push', '-q', url(server.port, 'team/app'), 'main'], makeWorkTree());
    assert.equal(pushed.code, 0, pushed.stderr);
    const cloned = await git(key, server.port, ['clone', '-q', url(server.port, 'team/app'), join(temporaryDir('git-sshd-p-'), 'c')]);
    assert.equal(cloned.code, 0, cloned.stderr);
    const afterClone = await queryUntil('sum(git_sshd_commands_total{command="git-upload-pack"})', (value) => value > before);
    assert.equal(afterClone, before + 1);
    assert.equal(await queryUntil('git_sshd_lifecycle_state{state="ready"}', (value) => value === 1), 1);
  });
});
