// Issue 17, item 4: "scale behind a load balancer, roll out a new version, and no clone or
// push in flight fails", measured on a real cluster. Three replicas of the local backend
// serve a continuous stream of real git clones and pushes from the host through the
// Service's ClusterIP (kube-proxy); then a `helm upgrade` with a config change rolls every
// pod, a replica is deleted mid-transfer, and the release is scaled from 3 to 1. Every
// operation is counted and checked, and each stopping pod's drain is timed from the
// cluster's view (watch, EndpointSlice, events, kube-proxy's nftables rules) and the pod's
// own (its JSON log, its readiness path, its /metrics).
//
// Storage: the three replicas share one ReadWriteMany hostPath volume. That works ONLY
// because this cluster has a single node; it is a test arrangement, not advice (see
// load/release.ts).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Deployment } from '@kubernetes/client-node';
import { makeKey, temporaryDir, type ClientKey } from '../helpers/client.js';
import { waitUntil } from '../helpers/wait.js';
import { helmInstall, helmUpgrade } from './lib/chart.js';
import { kubectlJson, kubectlOk, ok } from './lib/cluster.js';
import { testNamespace } from './lib/namespace.js';
import { clusterIP } from './lib/pods.js';
import { clusterGit, clusterUrl } from './lib/sshClient.js';
import { attribute, logTime, servedBy } from './load/attribution.js';
import type { ClusterObserver } from './load/clusterObserver.js';
import { LoadGenerator, makeBigRepository, type Operation, type WorkerPlan } from './load/loadGenerator.js';
import { adminUsersYaml, canReadKubeProxyRules, chartObserver, sharedHostPathClaim } from './load/release.js';
import { formatSummary, writeReport } from './load/report.js';
import { drainTimeline, formatTimelines, type DrainTimeline } from './load/timeline.js';

const MEGABYTE = 1024 * 1024;
const RELEASE = 'git-sshd';
const SELECTOR = `app.kubernetes.io/name=git-sshd,app.kubernetes.io/instance=${RELEASE}`;
const REPO = 'team/big';
const REPO_MEGABYTES = 16;
/**
 * Paced so that each operation lasts seconds however fast the machine is: a plain clone of
 * the 16 MB repository at least 4 s, a slow one 21 s, a push 4 s, a slow push 16 s. A busy
 * machine stretches them (a 32 s clone took 55 s at load 8), and an operation in flight on a
 * stopping pod must end within the chart's defaults: 10 s of preStop sleep + a 45 s drain
 * (60 s terminationGracePeriodSeconds - 10 s - 5 s margin); longer ones are cut by design.
 */
const PLAN: WorkerPlan[] = [
  { kind: 'clone', label: 'clone', count: 2, bytesPerSecond: 4 * MEGABYTE },
  { kind: 'clone', label: 'slow-clone', count: 2, bytesPerSecond: (3 * MEGABYTE) / 4 },
  { kind: 'push', label: 'push', count: 2, bytesPerSecond: MEGABYTE / 4, pushBytes: MEGABYTE },
  { kind: 'push', label: 'slow-push', count: 1, bytesPerSecond: MEGABYTE / 8, pushBytes: 2 * MEGABYTE },
];
/** The preStop sleep of the chart's defaults: a transfer begun this recently is still running when SIGTERM comes. */
const SLOW_CLONE_SPANS_SIGTERM_MS = 6_000;
/** A bound for the cluster to finish one step (a rollout, a drain): far above the 60 s grace of each pod. */
const STEP_TIMEOUT_MS = 600_000;

const namespace = testNamespace(import.meta.filename);
let volume: { dir: string; remove: () => void } | undefined;
// After the namespace (and its pods) are gone: registered after testNamespace's own hook.
after(() => volume?.remove());

describe('rolling update under load (3 replicas, local backend)', { timeout: 1_800_000 }, () => {
  let key: ClientKey;
  let load: LoadGenerator;
  let observer: ClusterObserver;
  const report: string[] = [];
  const phases: Array<{ name: string; from: number; to: number }> = [];
  const kubeProxyReadable = canReadKubeProxyRules();

  function values(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      replicaCount: 3,
      backend: { local: { users: adminUsersYaml(key), persistence: { existingClaim: 'repos', accessModes: ['ReadWriteMany'] } } },
      ...overrides,
    };
  }

  async function configChecksum(): Promise<string | undefined> {
    const deployment = await kubectlJson<V1Deployment>(['-n', namespace.name, 'get', 'deployment', RELEASE]);
    return deployment.spec?.template.metadata?.annotations?.['checksum/config'];
  }

  function servingPods(): Map<string, Operation[]> {
    attribute(load.inFlight(), observer.logsByPod());
    const byPod = new Map<string, Operation[]>();
    for (const op of load.inFlight()) if (op.servedBy) byPod.set(op.servedBy, [...(byPod.get(op.servedBy) ?? []), op]);
    return byPod;
  }

  /** Waits until every pod in `stopping` is gone and `count` pods are live and Ready; returns when that was seen. */
  async function settle(stopping: readonly string[], count: number): Promise<number> {
    await waitUntil(() => `pods ${stopping.join(', ')} gone (${observer.describe()})`, () => stopping.every((name) => observer.pods.get(name)?.goneAt !== undefined), STEP_TIMEOUT_MS, 500);
    await waitUntil(() => `${count} Ready pods (${observer.describe()})`, () => observer.livePods().filter((pod) => pod.readyAt !== undefined).length === count, STEP_TIMEOUT_MS, 500);
    return Date.now();
  }

  /**
   * What every drain must show: no connection cut; the pod out of the Service before its
   * listener closed, from kube-proxy's rules on this node (what decides where a new
   * connection goes; the EndpointSlice as this process saw it is reported beside, and
   * stands in when the rules cannot be read); none of our connections made after kube-proxy
   * dropped it; the readiness path failing once the drain began.
   */
  function checkDrain(timeline: DrainTimeline): void {
    const where = `pod ${timeline.pod}`;
    assert.equal(timeline.cut, 0, `${where}: sessions cut at the end of its drain`);
    assert.ok(timeline.listenerClosed !== undefined, `${where}: no 'draining' line in its log`);
    if (kubeProxyReadable) {
      assert.ok(timeline.kubeProxyRemoved !== undefined && timeline.kubeProxyRemoved < timeline.listenerClosed, `${where}: still in kube-proxy's rules when its listener closed`);
      assert.equal(timeline.connectedAfterRemoval, 0, `${where}: got new connections after kube-proxy dropped it`);
    } else {
      assert.ok(timeline.endpointNotReady !== undefined && timeline.endpointNotReady < timeline.listenerClosed, `${where}: still a ready endpoint when its listener closed`);
    }
    assert.ok(timeline.readiness502 !== undefined, `${where}: its readiness path never failed while it drained`);
  }

  function phaseFigures(name: string, from: number, to: number): string {
    phases.push({ name, from, to });
    const overlapping = (op: Operation): boolean => op.startedAt <= to && (op.endedAt ?? Infinity) >= from;
    return formatSummary(`operations overlapping the ${name}`, load.summary(overlapping));
  }

  function failures(filter: (op: Operation) => boolean): string[] {
    return load.operations.filter((op) => op.outcome === 'failed' && filter(op)).map((op) => `${op.worker} (${op.servedBy ?? 'pod unknown'}): ${op.reason}`);
  }

  before(async () => {
    key = makeKey();
    const work = temporaryDir('git-sshd-k8s-rollout-');
    volume = await sharedHostPathClaim(namespace, 'repos');
    ok('helm install', await helmInstall(namespace.name, RELEASE, { values: values() }));
    const host = await clusterIP(namespace.name, RELEASE);
    const seed = makeBigRepository(work, REPO_MEGABYTES);
    const pushed = await clusterGit(key, { host, port: 22 }, ['push', '-q', clusterUrl({ host, port: 22 }, REPO), 'main'], seed.bare);
    assert.equal(pushed.code, 0, `seed push: ${pushed.stderr}`);
    observer = chartObserver(namespace.name, RELEASE, SELECTOR);
    await observer.start();
    await waitUntil(() => `3 pods followed, with their logs (${observer.describe()})`, () => observer.livePods().filter((pod) => pod.logs.some((line) => line.msg === 'listening')).length === 3, STEP_TIMEOUT_MS, 250);
    if (kubeProxyReadable) await waitUntil(() => `kube-proxy's rules list the 3 pods (${observer.describe()})`, () => observer.kubeProxy.current().length === 3, STEP_TIMEOUT_MS, 250);
    load = new LoadGenerator({ host, port: 22, key, repo: REPO }, PLAN, work, seed.main, seed.bare, namespace.name);
    load.start();
    await load.waitForCompleted(1, STEP_TIMEOUT_MS);
  });

  after(async () => {
    await load?.stop();
    observer?.stop();
    if (report.length > 0) {
      const path = writeReport('rollout', `# Rolling update under load (${new Date().toISOString()})\n\n${report.join('\n\n')}\n`);
      console.log(`\nrollout report written to ${path}`);
    }
  });

  test('helm upgrade with a config change replaces every pod while clones and pushes run, and none fails', async () => {
    const old = observer.livePods().map((pod) => pod.name);
    assert.equal(old.length, 3);
    const checksum = await configChecksum();
    const started = Date.now();
    ok('helm upgrade', await helmUpgrade(namespace.name, RELEASE, { values: values({ config: { sshd: { client_alive_interval: '20s' } } }) }));
    const settled = await settle(old, 3);
    assert.notEqual(await configChecksum(), checksum, 'the config change did not change checksum/config');
    const replaced = observer.livePods().map((pod) => pod.name);
    assert.deepEqual(replaced.filter((name) => old.includes(name)), [], 'pods were not replaced');
    await load.settledBefore(settled, STEP_TIMEOUT_MS);
    attribute(load.operations, observer.logsByPod());

    const timelines = old.map((name) => drainTimeline(observer, observer.pods.get(name)!, load.operations));
    const table = formatTimelines('helm upgrade', started, timelines);
    const figures = phaseFigures('rolling update', started, settled);
    report.push(`## helm upgrade (config change): 3 pods replaced\n\n${figures}\n\n${table}`);
    console.log(`\n${figures}\n\n${table}\n`);

    assert.deepEqual(failures((op) => op.startedAt <= settled && (op.endedAt ?? Infinity) >= started), []);
    for (const timeline of timelines) checkDrain(timeline);
    assert.ok(timelines.some((timeline) => timeline.inFlightAtDeletion > 0), 'no operation was in flight on a pod when it was deleted: the rollout proved nothing');
  });

  test('kubectl delete pod mid-transfer: what the pod was serving completes, through its SIGTERM and drain', async () => {
    let victim: string | undefined;
    // A slow clone needs 21 s at least: one begun under 6 s ago still runs at SIGTERM, 10 s after the delete.
    await waitUntil('a pod serving a slow clone that has just begun', () => {
      const now = Date.now();
      const candidates = [...servingPods()].filter(([, ops]) => ops.some((op) => op.label === 'slow-clone' && now - op.startedAt < SLOW_CLONE_SPANS_SIGTERM_MS));
      victim = candidates.sort((a, b) => b[1].length - a[1].length)[0]?.[0];
      return victim !== undefined;
    }, STEP_TIMEOUT_MS, 250);
    const inFlight = servingPods().get(victim!) ?? [];
    const started = Date.now();
    await kubectlOk(['-n', namespace.name, 'delete', 'pod', victim!, '--wait=false']);
    const settled = await settle([victim!], 3);
    await load.settledBefore(settled, STEP_TIMEOUT_MS);
    attribute(load.operations, observer.logsByPod());

    const timeline = drainTimeline(observer, observer.pods.get(victim!)!, load.operations);
    const table = formatTimelines('kubectl delete pod', started, [timeline]);
    const detail = inFlight.map((op) => `| ${op.worker} | ${op.label} | ${((started - op.startedAt) / 1000).toFixed(1)} | ${(((op.endedAt ?? started) - started) / 1000).toFixed(1)} | ${op.outcome} |`);
    const inFlightTable = [`| in flight on ${victim} at the delete | kind | running before (s) | ran on after (s) | outcome |`, '|---|---|---:|---:|---|', ...detail].join('\n');
    const figures = phaseFigures('pod delete', started, settled);
    report.push(`## kubectl delete pod ${victim} mid-transfer\n\n${figures}\n\n${table}\n\n${inFlightTable}`);
    console.log(`\n${figures}\n\n${table}\n\n${inFlightTable}\n`);

    for (const op of inFlight) {
      assert.equal(op.outcome, 'ok', `${op.worker}, in flight on ${victim} when it was deleted: ${op.reason}`);
      assert.equal(op.servedBy, victim, `${op.worker} was not served by ${victim} after all`);
    }
    // An operation in flight may already be past its transfer (a clone's fsck runs after the
    // connection closed), so each must end with the pod's summary line, and the slow clone
    // this test waited for must be among those whose connection the pod closed after the delete.
    const victimLogs = new Map([[victim!, observer.pods.get(victim!)!.logs]]);
    const summaryOf = (op: Operation) => {
      const connection = op.connections.at(-1);
      return connection ? servedBy(connection, victimLogs)?.summary : undefined;
    };
    const unsummarized = inFlight.filter((op) => summaryOf(op) === undefined).map((op) => op.worker);
    assert.deepEqual(unsummarized, [], `${victim} did not log the end of every connection it was serving`);
    const servedThroughDelete = inFlight.filter((op) => logTime(summaryOf(op)!) >= started);
    assert.ok(servedThroughDelete.some((op) => op.label === 'slow-clone'), `no slow clone on ${victim} ran on past the delete: ${detail.join(' ')}`);
    assert.deepEqual(failures((op) => op.startedAt <= settled && (op.endedAt ?? Infinity) >= started), []);
    checkDrain(timeline);
    assert.ok((timeline.connectionsAtSigterm ?? 0) >= 1 && timeline.finished === timeline.connectionsAtSigterm, `the drain after SIGTERM had no transfer to finish: ${JSON.stringify(timeline)}`);
  });

  test('scale from 3 to 1 under load: the two stopping pods finish what they serve', async () => {
    const before = observer.livePods().map((pod) => pod.name);
    assert.equal(before.length, 3);
    const started = Date.now();
    ok('helm upgrade to 1 replica', await helmUpgrade(namespace.name, RELEASE, { values: values({ replicaCount: 1, config: { sshd: { client_alive_interval: '20s' } } }) }));
    await waitUntil(() => `two pods stopping (${observer.describe()})`, () => before.filter((name) => observer.pods.get(name)?.deletionSeenAt !== undefined).length === 2, STEP_TIMEOUT_MS, 250);
    const stopping = before.filter((name) => observer.pods.get(name)?.deletionSeenAt !== undefined);
    const settled = await settle(stopping, 1);
    assert.deepEqual(observer.livePods().map((pod) => pod.name), before.filter((name) => !stopping.includes(name)), 'the pod kept was replaced');
    await load.settledBefore(settled, STEP_TIMEOUT_MS);
    attribute(load.operations, observer.logsByPod());

    const timelines = stopping.map((name) => drainTimeline(observer, observer.pods.get(name)!, load.operations));
    const table = formatTimelines('helm upgrade replicaCount=1', started, timelines);
    const figures = phaseFigures('scale-down', started, settled);
    report.push(`## scale from 3 to 1\n\n${figures}\n\n${table}`);
    console.log(`\n${figures}\n\n${table}\n`);

    assert.deepEqual(failures((op) => op.startedAt <= settled && (op.endedAt ?? Infinity) >= started), []);
    for (const timeline of timelines) checkDrain(timeline);
  });

  test('over the whole run: 0 failed operations, every clone fsck-clean, every push on its branch', async () => {
    await load.stop();
    const unmatched = attribute(load.operations, observer.logsByPod());
    const summary = load.summary();
    const pushes = await load.verifyPushes(join(volume!.dir, 'repos', `${REPO}.git`));
    const byPod = new Map<string, number>();
    for (const op of load.operations) byPod.set(op.servedBy ?? '(not found in any log)', (byPod.get(op.servedBy ?? '(not found in any log)') ?? 0) + 1);
    const figures = formatSummary('whole run', summary);
    const lines = [
      figures,
      `Pushes checked afterwards (branch tips through the Service, history and fsck on the volume): ${pushes.commits} commits on ${pushes.branches} branches, ${pushes.missing.length} missing.`,
      `Operations by serving pod: ${[...byPod].map(([pod, count]) => `${pod} ${count}`).join(', ')}.`,
      `Phases: ${phases.map((phase) => `${phase.name} ${((phase.to - phase.from) / 1000).toFixed(0)} s`).join(', ')}.`,
      kubeProxyReadable ? `kube-proxy's rules read ${observer.kubeProxy.polls} times.` : `kube-proxy's rules could not be read (${observer.kubeProxy.unavailable ?? 'nft unavailable'}): the EndpointSlice stands in for them.`,
      `The observing process: event loop at most ${observer.maxEventLoopLagMs} ms late; watches restarted ${observer.rewatches} times from where they were, ${observer.resyncs.length} times from the current state${observer.resyncs.length ? ` (${observer.resyncSummary()})` : ''}; ${observer.relistFound} lists every 5 s found what the watches had not delivered yet.`,
    ];
    report.unshift(`## Figures\n\n${lines.join('\n\n')}`);
    console.log(`\n${lines.join('\n')}\n`);

    assert.deepEqual(failures(() => true), []);
    assert.ok(summary.ok >= 20, `only ${summary.ok} operations completed`);
    assert.deepEqual(pushes.missing, []);
    assert.equal(pushes.commits, load.operations.filter((op) => op.kind === 'push' && op.outcome === 'ok').length);
    assert.deepEqual(unmatched.map((op) => op.worker), [], 'operations whose connection no pod logged');
    // The server's side agrees: every session of every operation exited 0.
    for (const pod of observer.pods.values()) {
      for (const line of pod.logs.filter((candidate) => candidate.msg === 'connection closed' && candidate.user === 'alice')) {
        const sessions = (line.sessions ?? []) as Array<{ exit_status?: number; error?: string }>;
        assert.ok(sessions.every((session) => session.exit_status === 0 && !session.error), `${pod.name}: ${JSON.stringify(line)}`);
      }
    }
    assert.deepEqual(observer.errors.filter((error) => !/aborted/i.test(error)), []);
  });
});
