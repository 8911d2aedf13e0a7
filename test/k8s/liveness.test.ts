// Issue 17, item 5, on a real cluster:
//  - a pod whose monitoring port stops answering is restarted by its liveness probe, while
//    its SSH port, on the same process, still serves git: the port is blackholed inside the
//    pod's own network namespace (nftables, entered from the node), which is what a wedged
//    HTTP server or a stray firewall rule looks like to the kubelet; SIGSTOP would not do,
//    it freezes SSH too;
//  - a draining pod leaves the Service before its SSH listener closes (the chart's preStop
//    sleep), shown from kube-proxy's own rules on the node and the EndpointSlice, against
//    the time the server logged its drain and the time the host saw the port refuse.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gitLocal, makeKey, temporaryDir, type ClientKey } from '../helpers/client.js';
import { waitUntil } from '../helpers/wait.js';
import { helmInstall } from './lib/chart.js';
import { kubectlOk, ok } from './lib/cluster.js';
import { testNamespace } from './lib/namespace.js';
import { clusterIP } from './lib/pods.js';
import { clusterGit, clusterUrl } from './lib/sshClient.js';
import { logTime } from './load/attribution.js';
import type { Answer, ClusterObserver } from './load/clusterObserver.js';
import { blockPort, podNetns, tcpAnswer, unblockPort } from './load/podNetwork.js';
import { adminUsersYaml, canReadKubeProxyRules, chartObserver } from './load/release.js';
import { writeReport } from './load/report.js';
import { drainTimeline, formatTimelines } from './load/timeline.js';

const RELEASE = 'git-sshd';
const SELECTOR = `app.kubernetes.io/name=git-sshd,app.kubernetes.io/instance=${RELEASE}`;
const SSH_PORT = 2222;
const MONITORING_PORT = 9122;
const STEP_TIMEOUT_MS = 600_000;
/**
 * How often the host tries the pod's SSH port directly. Each try is a connection closed
 * before authenticating, which the server's per-source penalties count (1 s each, refused
 * from 15 s accrued): one every 1.5 s never accrues, so the host is never refused for it.
 */
const LISTENER_POLL_MS = 1500;

const namespace = testNamespace(import.meta.filename);

function seconds(at: number | undefined, origin: number): string {
  return at === undefined ? '-' : ((at - origin) / 1000).toFixed(2);
}

describe('probes and the preStop sleep on a real cluster (2 replicas)', { timeout: 1_500_000 }, () => {
  let key: ClientKey;
  let observer: ClusterObserver;
  let service: string;
  const report: string[] = [];
  const blocked: string[] = [];
  const kubeProxyReadable = canReadKubeProxyRules();

  /** Clones `repo` straight from a pod's IP (not through the Service): that pod's SSH answers. */
  async function cloneFrom(ip: string, repo: string): Promise<{ code: number | null; stderr: string }> {
    const dir = temporaryDir('git-sshd-k8s-clone-');
    const cloned = await clusterGit(key, { host: ip, port: SSH_PORT }, ['clone', '-q', clusterUrl({ host: ip, port: SSH_PORT }, repo), `${dir}/clone`]);
    return { code: cloned.code, stderr: cloned.stderr };
  }

  /** A one-commit repository pushed straight to one pod (each keeps its own on an emptyDir here). */
  async function pushSmallRepository(ip: string, repo: string): Promise<void> {
    const work = temporaryDir('git-sshd-k8s-work-');
    gitLocal(['init', '-q', '-b', 'main', work]);
    gitLocal(['-c', 'user.name=T', '-c', 'user.email=t@e', 'commit', '-q', '--allow-empty', '-m', 'first'], work);
    const pushed = await clusterGit(key, { host: ip, port: SSH_PORT }, ['push', '-q', clusterUrl({ host: ip, port: SSH_PORT }, repo), 'main'], work);
    assert.equal(pushed.code, 0, `push to ${ip}: ${pushed.stderr}`);
  }

  before(async () => {
    key = makeKey();
    ok(
      'helm install',
      await helmInstall(namespace.name, RELEASE, {
        values: { replicaCount: 2, backend: { local: { users: adminUsersYaml(key), persistence: { enabled: false } } } },
      }),
    );
    service = await clusterIP(namespace.name, RELEASE);
    observer = chartObserver(namespace.name, RELEASE, SELECTOR);
    await observer.start();
    await waitUntil(() => `2 Ready pods followed (${observer.describe()})`, () => observer.livePods().filter((pod) => pod.readyAt !== undefined && pod.ip).length === 2, STEP_TIMEOUT_MS, 250);
  });

  after(async () => {
    for (const netns of blocked) await unblockPort(netns);
    observer?.stop();
    if (report.length > 0) {
      const path = writeReport('liveness', `# Liveness and preStop on a real cluster (${new Date().toISOString()})\n\n${report.join('\n\n')}\n`);
      console.log(`\nliveness report written to ${path}`);
    }
  });

  test('a pod whose monitoring port stops answering is restarted by its liveness probe; SSH serves until then', async () => {
    const pod = observer.livePods()[0]!;
    const ip = pod.ip!;
    await pushSmallRepository(ip, 'team/live');
    const restartsBefore = pod.restartCount;
    const firstContainer = [...pod.streamed][0];

    const netns = await podNetns(ip);
    const started = Date.now();
    blocked.push(netns);
    await blockPort(netns, MONITORING_PORT);
    // Blackholed, not refused: the probe times out, as with a wedged server.
    assert.equal(await tcpAnswer(ip, MONITORING_PORT), 'timeout');
    const whileBlocked = await cloneFrom(ip, 'team/live');
    assert.equal(whileBlocked.code, 0, `SSH on the pod whose monitoring port is blocked: ${whileBlocked.stderr}`);
    const sshServedAt = Date.now();

    await waitUntil(() => `the liveness probe restarts the container (${observer.describe()})`, () => pod.restartCount > restartsBefore, STEP_TIMEOUT_MS, 250);
    const restartedAt = Date.now();
    await unblockPort(netns);
    blocked.splice(blocked.indexOf(netns), 1);
    await waitUntil(() => `the restarted container Ready again (${observer.describe()})`, () => pod.readiness.at(-1)?.answer === '200' && observer.livePods().some((candidate) => candidate.name === pod.name), STEP_TIMEOUT_MS, 250);
    const readyAgain = pod.readiness.at(-1)!.at;
    await waitUntil(() => `the pod back in the EndpointSlice as ready (${observer.describe()})`, () => pod.endpoint.at(-1)?.conditions?.ready === true, STEP_TIMEOUT_MS, 250);

    const events = observer.events.filter((event) => event.pod === pod.name && event.observedAt >= started);
    const livenessFailed = events.find((event) => event.reason === 'Unhealthy' && /liveness/i.test(event.message));
    const readinessFailed = events.find((event) => event.reason === 'Unhealthy' && /readiness/i.test(event.message));
    const killing = events.find((event) => event.reason === 'Killing');
    const outOfService = pod.endpoint.find((state) => state.at >= started && state.conditions?.ready !== true);
    const firstLog = firstContainer ? pod.logs.filter((line) => line.container_id === firstContainer) : [];
    const shutdown = firstLog.find((line) => line.msg === 'shutdown requested');
    const stopped = firstLog.find((line) => line.msg === 'stopped');
    const exit = pod.exits.find((candidate) => candidate.containerID === firstContainer);
    const rows: Array<[string, number | undefined]> = [
      ['monitoring port blackholed in the pod netns', started],
      ['clone from the same pod over SSH succeeded', sshServedAt],
      ['kubelet event: readiness probe failed', readinessFailed?.observedAt],
      ['EndpointSlice: ready=false (out of the Service)', outOfService?.at],
      ['kubelet event: liveness probe failed', livenessFailed?.observedAt],
      ['kubelet event: Killing (will be restarted)', killing?.observedAt],
      ['old container: SIGTERM (log `shutdown requested`)', shutdown ? logTime(shutdown) : undefined],
      ['old container: drain over (log `stopped`)', stopped ? logTime(stopped) : undefined],
      ['old container exit (kubelet, whole seconds)', exit?.finishedAt],
      ['restartCount rose (watch)', restartedAt],
      ['rule removed; readiness path 200 again', readyAgain],
    ];
    const table = [`| step (s after blocking port ${MONITORING_PORT}) | pod ${pod.name} |`, '|---|---:|', ...rows.map(([label, at]) => `| ${label} | ${seconds(at, started)} |`)].join('\n');
    report.push(`## Liveness: monitoring port blackholed\n\nrestartCount ${restartsBefore} -> ${pod.restartCount}; old container exit code ${exit?.exitCode ?? '-'}.\n\n${table}`);
    console.log(`\n${table}\n`);

    assert.ok(pod.restartCount > restartsBefore);
    assert.ok(livenessFailed, 'no liveness probe failure event');
    assert.ok(killing && /liveness/i.test(killing.message), `the kill was not for the liveness probe: ${killing?.message}`);
    // The kubelet stops it like any other: SIGTERM, a drain, exit 0.
    assert.ok(shutdown, 'the old container was not told to stop (no `shutdown requested` in its log)');
    assert.equal(exit?.exitCode, 0);
  });

  test("a deleted pod leaves kube-proxy's rules before its SSH listener closes; meanwhile it still serves directly", async () => {
    await waitUntil(() => `2 Ready pods (${observer.describe()})`, () => observer.livePods().filter((pod) => pod.readiness.at(-1)?.answer === '200' && pod.endpoint.at(-1)?.conditions?.ready === true).length === 2, STEP_TIMEOUT_MS, 250);
    if (kubeProxyReadable) await waitUntil(() => `kube-proxy's rules list both pods (${observer.describe()})`, () => observer.kubeProxy.current().length === 2, STEP_TIMEOUT_MS, 250);
    const [victim, survivor] = observer.livePods();
    const ip = victim!.ip!;
    for (const pod of [victim!, survivor!]) await pushSmallRepository(pod.ip!, 'team/drain');
    const rulesBefore = observer.kubeProxy.current().sort();
    assert.equal(rulesBefore.length, kubeProxyReadable ? 2 : 0);

    // The host's own view of the victim's SSH listener, polled slowly (see LISTENER_POLL_MS).
    const listener: Answer[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const answer = await tcpAnswer(ip, SSH_PORT);
        if (listener.at(-1)?.answer !== answer) listener.push({ at: Date.now(), answer });
        await new Promise((resolve) => setTimeout(resolve, LISTENER_POLL_MS));
      }
    })();

    const started = Date.now();
    await kubectlOk(['-n', namespace.name, 'delete', 'pod', victim!.name, '--wait=false']);
    // While the preStop sleep runs: out of the Service, yet its listener still serves a clone.
    let servedDirectly: { code: number | null; stderr: string; at: number } | undefined;
    let rulesDuring: string[] = [];
    if (kubeProxyReadable) {
      await waitUntil(() => `the victim gone from kube-proxy's rules (${observer.describe()})`, () => !observer.kubeProxy.current().includes(ip), STEP_TIMEOUT_MS, 100);
      rulesDuring = observer.kubeProxy.current().sort();
      const at = Date.now();
      servedDirectly = { ...(await cloneFrom(ip, 'team/drain')), at };
    }
    // Through the Service meanwhile: every new connection lands on the survivor.
    const viaService: Array<number | null> = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      viaService.push((await clusterGit(key, { host: service, port: 22 }, ['ls-remote', clusterUrl({ host: service, port: 22 }, 'team/drain')])).code);
    }
    await waitUntil(() => `the victim gone (${observer.describe()})`, () => victim!.goneAt !== undefined, STEP_TIMEOUT_MS, 250);
    polling = false;
    await poller;

    const timeline = drainTimeline(observer, victim!, []);
    const refusedAt = listener.find((answer) => answer.at >= started && answer.answer !== 'open')?.at;
    const table = formatTimelines('kubectl delete pod', started, [timeline]);
    const extra = [
      `| host: SSH port ${SSH_PORT} of ${victim!.name} refused (TCP poll every ${LISTENER_POLL_MS / 1000} s) | ${seconds(refusedAt, started)} |`,
      `| clone straight from the victim's IP, once out of kube-proxy's rules | ${seconds(servedDirectly?.at, started)} (${servedDirectly ? (servedDirectly.code === 0 ? 'served' : 'failed') : 'not tried'}) |`,
    ].join('\n');
    report.push(`## preStop: out of the Service before the listener closes\n\nkube-proxy's rules for the Service: before ${rulesBefore.join(', ')}; during the drain ${kubeProxyReadable ? rulesDuring.join(', ') : '(not readable)'}.\n\n${table}\n\n| more | s |\n|---|---:|\n${extra}`);
    console.log(`\n${table}\n${extra}\n`);

    assert.ok(timeline.listenerClosed !== undefined, 'no `draining` line in the victim log');
    if (kubeProxyReadable) {
      assert.ok(timeline.kubeProxyRemoved !== undefined && timeline.kubeProxyRemoved < timeline.listenerClosed, "the pod was still in kube-proxy's rules when its listener closed");
    } else {
      console.log(`kube-proxy's rules not readable here (${observer.kubeProxy.unavailable}): only the EndpointSlice was checked`);
      assert.ok(timeline.endpointNotReady !== undefined && timeline.endpointNotReady < timeline.listenerClosed, 'the EndpointSlice still listed the pod as ready when its listener closed');
    }
    if (kubeProxyReadable) assert.deepEqual(rulesDuring, [survivor!.ip!], "kube-proxy's rules for the Service while the victim drained");
    // A clone begun before SIGTERM is served to the end, whether or not the drain began meanwhile.
    if (servedDirectly && !(timeline.sigterm !== undefined && timeline.sigterm < servedDirectly.at)) assert.equal(servedDirectly.code, 0, `the victim's SSH during its preStop sleep: ${servedDirectly.stderr}`);
    assert.deepEqual(viaService, [0, 0, 0], 'git through the Service while a replica drained');
    assert.ok(refusedAt === undefined || refusedAt >= timeline.listenerClosed - LISTENER_POLL_MS, 'the host saw the listener refuse before the server said it closed it');
    assert.ok(!victim!.logs.some((line) => line.msg === 'authenticated' && timeline.kubeProxyRemoved !== undefined && logTime(line) > timeline.kubeProxyRemoved + 2000), 'the victim took a connection after it left the Service');
  });
});
