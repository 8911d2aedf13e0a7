// The rollout test's instruments, checked without a cluster: on loopback against a local git-sshd,
// the load generator must count a transfer cut mid-way and a refused connection as
// failures, and its push check must notice a push that is not there, or its "0 failures"
// on the cluster would prove nothing; and kube-proxy's rules must be read right.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, makeKey, temporaryDir, url, type ClientKey } from '../helpers/client.js';
import { killGroup } from '../helpers/processes.js';
import { adminUsers, TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { attribute, type ServerLogLine } from './load/attribution.js';
import { resumeReason } from './load/clusterObserver.js';
import { endpointsOf } from './load/kubeProxyView.js';
import { LoadGenerator, makeBigRepository, type WorkerPlan } from './load/loadGenerator.js';

const MEGABYTE = 1024 * 1024;
const REPO = 'team/big';
/** A slow clone of the 4 MB repository lasts about 8 s: long enough to be in flight when the server is stopped. */
const PLAN: WorkerPlan[] = [
  { kind: 'clone', label: 'clone', count: 1, bytesPerSecond: 0 },
  { kind: 'clone', label: 'slow-clone', count: 2, bytesPerSecond: MEGABYTE / 2 },
  { kind: 'push', label: 'push', count: 2, bytesPerSecond: MEGABYTE / 4, pushBytes: MEGABYTE / 2 },
];

async function serverWithRepository(key: ClientKey, seed: string): Promise<TestServer> {
  const server = await TestServer.start({ users: adminUsers(key), config: { sshd: { grace_period: '120s' } } });
  const pushed = await git(key, server.port, ['push', '-q', url(server.port, REPO), 'main'], seed);
  assert.equal(pushed.code, 0, pushed.stderr);
  return server;
}

function logsOf(server: TestServer): Map<string, ServerLogLine[]> {
  return new Map([['local', server.logs as ServerLogLine[]]]);
}

describe('load generator on loopback', { timeout: 600_000 }, () => {
  let key: ClientKey;
  let work: string;
  let seed: { bare: string; main: string };
  const servers: TestServer[] = [];

  before(() => {
    key = makeKey();
    work = temporaryDir('git-sshd-load-');
    seed = makeBigRepository(work, 4);
  });
  after(async () => {
    for (const server of servers) await server.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  test('counts clones and pushes, fsck-checks clones, finds every push, and names the server of each', async () => {
    const server = await serverWithRepository(key, seed.bare);
    servers.push(server);
    const load = new LoadGenerator({ host: '127.0.0.1', port: server.port, key, repo: REPO }, PLAN, join(work, 'steady'), seed.main, seed.bare, 'steady');
    load.start();
    try {
      await load.waitForCompleted(2, 300_000);
    } finally {
      await load.stop();
    }
    const summary = load.summary();
    assert.equal(summary.failed, 0, JSON.stringify(load.operations.filter((op) => op.outcome === 'failed').map((op) => op.reason)));
    assert.equal(summary.rejected, 0);
    assert.ok(summary.attempted >= 10, `attempted ${summary.attempted}`);
    const pushes = await load.verifyPushes(join(server.reposDir, `${REPO}.git`));
    assert.deepEqual(pushes.missing, []);
    assert.equal(pushes.branches, 2);
    assert.equal(pushes.commits, summary.byLabel.push!.ok);
    await waitUntil('every connection summarised', () => server.summaries().length >= summary.attempted + 1);
    assert.deepEqual(attribute(load.operations, logsOf(server)).map((op) => op.id), []);

    // A push that is not on the server is found: the checker can fail.
    const branch = load.operations.find((op) => op.kind === 'push' && op.outcome === 'ok')!.branch!;
    rmSync(join(server.reposDir, `${REPO}.git`, 'refs', 'heads', ...branch.split('/')), { force: true });
    const packedRefs = join(server.reposDir, `${REPO}.git`, 'packed-refs');
    rmSync(packedRefs, { force: true });
    assert.ok((await load.verifyPushes(join(server.reposDir, `${REPO}.git`))).missing.some((line) => line.startsWith(`${branch}:`)));
  });

  test('a drain lets transfers in flight finish; a connection refused afterwards is a failure', async () => {
    const server = await serverWithRepository(key, seed.bare);
    servers.push(server);
    const load = new LoadGenerator({ host: '127.0.0.1', port: server.port, key, repo: REPO }, PLAN, join(work, 'drain'), seed.main, seed.bare, 'drain');
    load.start();
    try {
      await load.waitForCompleted(1, 300_000);
      await waitUntil('two slow clones authenticated and in flight', () => {
        attribute(load.inFlight(), logsOf(server));
        return load.inFlight().filter((op) => op.label === 'slow-clone' && op.servedBy === 'local').length === 2;
      }, 120_000, 100);
      const inFlight = load.inFlight().filter((op) => op.servedBy === 'local');
      const signalledAt = Date.now();
      await server.stop('SIGTERM');
      await load.settledBefore(signalledAt, 300_000);
      for (const op of inFlight) assert.equal(op.outcome, 'ok', `${op.worker}: ${op.reason}`);
      await waitUntil('an operation refused after the drain', () => load.operations.some((op) => op.startedAt > signalledAt && op.outcome === 'failed'), 120_000, 100);
    } finally {
      await load.stop();
    }
    const stopped = server.logs.find((line) => line.msg === 'stopped')!;
    assert.equal(stopped.cut, 0);
  });

  test('a server killed mid-transfer shows as failed operations', async () => {
    const server = await serverWithRepository(key, seed.bare);
    servers.push(server);
    const load = new LoadGenerator({ host: '127.0.0.1', port: server.port, key, repo: REPO }, PLAN, join(work, 'kill'), seed.main, seed.bare, 'kill');
    load.start();
    try {
      await waitUntil('a slow clone in flight', () => {
        attribute(load.inFlight(), logsOf(server));
        return load.inFlight().some((op) => op.label === 'slow-clone' && op.servedBy === 'local');
      }, 120_000, 100);
      const inFlight = load.inFlight().filter((op) => op.label === 'slow-clone' && op.servedBy === 'local');
      const killedAt = Date.now();
      await killGroup(server.child);
      await load.settledBefore(killedAt, 300_000);
      for (const op of inFlight) assert.equal(op.outcome, 'failed', `${op.worker} survived a SIGKILL of its server`);
    } finally {
      await load.stop();
    }
  });
});

// Shaped like `nft list table ip kube-proxy` from kube-proxy v1.37's nftables mode.
const RULESET = `table ip kube-proxy {
	comment "rules for kube-proxy"
	chain service-AAAAAAAA-ns1/git-sshd/tcp/ssh {
		ip daddr 10.96.12.34 tcp dport 22 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		meta l4proto tcp dnat ip addr . port to numgen random mod 3 map { 0 : 10.244.0.5 . 2222, 1 : 10.244.0.6 . 2222, 2 : 10.244.0.7 . 2222 }
	}
	chain service-BBBBBBBB-ns1/git-sshd-monitoring/tcp/http {
		meta l4proto tcp dnat to 10.244.0.9:9122
	}
	chain service-CCCCCCCC-ns2/git-sshd/tcp/ssh {
		meta l4proto tcp dnat to 10.244.0.8:2222
	}
	chain service-DDDDDDDD-ns3/sticky/tcp/ssh {
		ip saddr @affinity-XXXXXXXX-ns3/sticky/tcp/ssh__10.244.0.10/2222 goto endpoint-XXXXXXXX-ns3/sticky/tcp/ssh__10.244.0.10/2222
		numgen random mod 1 vmap { 0 : goto endpoint-XXXXXXXX-ns3/sticky/tcp/ssh__10.244.0.10/2222 }
	}
}
`;

test("kube-proxy's endpoints for one Service port, in each form it writes", () => {
  assert.deepEqual(endpointsOf(RULESET, 'ns1/git-sshd/tcp/ssh'), ['10.244.0.5', '10.244.0.6', '10.244.0.7']);
  assert.deepEqual(endpointsOf(RULESET, 'ns2/git-sshd/tcp/ssh'), ['10.244.0.8']);
  assert.deepEqual(endpointsOf(RULESET, 'ns3/sticky/tcp/ssh'), ['10.244.0.10']);
  assert.deepEqual(endpointsOf(RULESET, 'ns4/git-sshd/tcp/ssh'), []);
});

test('the observer starts a watch again from the current state on the Status objects that call for it, and only on those', () => {
  // As the apiserver sends them: a compacted resourceVersion, and a watch cache behind the one asked for.
  assert.equal(resumeReason({ code: 410, reason: 'Expired', message: 'too old resource version: 1 (1571)' }), 'expired');
  assert.equal(resumeReason({ code: 504, reason: 'Timeout', message: 'Too large resource version: 1573, current: 1571' }), 'ahead of the watch cache');
  assert.equal(resumeReason({ message: 'Timeout: Too large resource version: 312, current: 1' }), 'ahead of the watch cache');
  assert.equal(resumeReason({ code: 500, reason: 'InternalError', message: 'etcdserver: request timed out' }), undefined);
  assert.equal(resumeReason({ code: 403, reason: 'Forbidden', message: 'pods is forbidden' }), undefined);
  assert.equal(resumeReason(undefined), undefined);
});
