import { KubeConfig, Watch, type CoreV1Event, type V1EndpointSlice, type V1Pod } from '@kubernetes/client-node';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { killGroup, spawnGroup } from '../../helpers/processes.js';
import { clusterEnv } from '../lib/cluster.js';
import type { ServerLogLine } from './attribution.js';
import { KubeProxyView } from './kubeProxyView.js';

/** What our own readiness path answered, each time the answer changed (a status code or a connection error). */
export interface Answer {
  readonly at: number;
  readonly answer: string;
}

export interface EndpointState {
  readonly at: number;
  /** Absent: no EndpointSlice lists the pod any more. */
  readonly conditions?: { ready: boolean; serving: boolean; terminating: boolean };
}

export interface MetricsSample {
  readonly at: number;
  readonly inFlight: number;
  readonly bytesSent: number;
  readonly sessionsCut: number;
  readonly state: string;
  /** Readiness answers of 502 given to the kubelet (`User-Agent: kube-probe/...`). */
  readonly kubeletReadiness502: number;
}

export interface ObservedEvent {
  readonly observedAt: number;
  /** The event's own stamp (eventTime, else lastTimestamp): seconds or microseconds, per source. */
  readonly stampedAt: number;
  readonly reason: string;
  readonly message: string;
  readonly pod: string;
}

/** Everything seen about one pod, each stamped with the host's clock when seen (epoch ms). */
export interface PodRecord {
  readonly name: string;
  ip?: string;
  createdAt: number;
  readyAt?: number;
  /** When the watch first showed a deletionTimestamp (the kubelet starts the preStop hook then). */
  deletionSeenAt?: number;
  deletionTimestamp?: number;
  restartCount: number;
  /** The container's exits, from its terminated state (the kubelet's stamp, whole seconds). */
  exits: Array<{ finishedAt: number; exitCode: number; reason?: string; containerID?: string }>;
  /** When the pod object was deleted from the API (the kubelet confirmed the containers stopped). */
  goneAt?: number;
  readonly logs: ServerLogLine[];
  readonly readiness: Answer[];
  readonly endpoint: EndpointState[];
  readonly metrics: MetricsSample[];
  /** Containers whose log is being (or was) streamed. */
  readonly streamed: Set<string>;
}

export interface ObserverOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** Label selector of the release's pods. */
  readonly selector: string;
  readonly service: string;
  readonly servicePortName: string;
  readonly container: string;
  readonly monitoringPort: number;
  readonly readinessPath: string;
  readonly pollMs?: number;
}

const REWATCH_MS = 100;
const LAG_TICK_MS = 100;

/**
 * Watches a release's pods, their EndpointSlice and events through the API, follows every
 * container's log from its first line, polls each pod's readiness path and /metrics from
 * the host (the pods' IPs are reachable on the bridge), and reads kube-proxy's rules for
 * the Service: the raw material of a drain timeline.
 */
export class ClusterObserver {
  readonly pods = new Map<string, PodRecord>();
  readonly events: ObservedEvent[] = [];
  readonly kubeProxy: KubeProxyView;
  readonly errors: string[] = [];
  private readonly watches: AbortController[] = [];
  private readonly logStreams = new Set<ChildProcess>();
  private readonly seenEvents = new Set<string>();
  /** The container each pod runs now (by containerID), to tell a log stream cut short from one whose container exited. */
  private readonly currentContainer = new Map<string, string>();
  private readonly slices = new Map<string, Map<string, { ready: boolean; serving: boolean; terminating: boolean }>>();
  private poller: NodeJS.Timeout | undefined;
  private lagTimer: NodeJS.Timeout | undefined;
  /** Watches started again (after client-node's 30 s inactivity timeout, mostly). */
  rewatches = 0;
  /**
   * The longest the test process's event loop was late (ms): every time here is when this
   * process saw something, so a stalled loop would make the cluster look late.
   */
  maxEventLoopLagMs = 0;
  private ticks = 0;
  private stopped = false;

  constructor(private readonly options: ObserverOptions) {
    this.kubeProxy = new KubeProxyView(options.namespace, options.service, options.servicePortName);
  }

  async start(): Promise<void> {
    const { namespace, selector, service } = this.options;
    await Promise.all([
      this.watch(`/api/v1/namespaces/${namespace}/pods`, { labelSelector: selector }, (phase, pod: V1Pod) => this.onPod(phase, pod)),
      this.watch(`/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`, { labelSelector: `kubernetes.io/service-name=${service}` }, (phase, slice: V1EndpointSlice) => this.onSlice(phase, slice)),
      this.watch(`/api/v1/namespaces/${namespace}/events`, {}, (phase, event: CoreV1Event) => this.onEvent(phase, event)),
    ]);
    this.kubeProxy.start();
    this.poller = setInterval(() => this.poll(), this.options.pollMs ?? 250);
    let expected = performance.now() + LAG_TICK_MS;
    this.lagTimer = setInterval(() => {
      const now = performance.now();
      this.maxEventLoopLagMs = Math.max(this.maxEventLoopLagMs, Math.round(now - expected));
      expected = now + LAG_TICK_MS;
    }, LAG_TICK_MS);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.poller);
    clearInterval(this.lagTimer);
    this.kubeProxy.stop();
    for (const controller of this.watches) controller.abort();
    for (const child of this.logStreams) void killGroup(child);
  }

  /** The logs of every pod seen, by pod name: for matching operations with the pod that served them. */
  logsByPod(): Map<string, ServerLogLine[]> {
    return new Map([...this.pods.values()].map((pod) => [pod.name, pod.logs]));
  }

  livePods(): PodRecord[] {
    return [...this.pods.values()].filter((pod) => pod.goneAt === undefined && pod.deletionSeenAt === undefined);
  }

  /**
   * A watch kept open for the whole test: client-node ends one after 30 s without data (a
   * quiet EndpointSlice), so it is started again at once, from the last resourceVersion seen
   * so that no change falls in the gap (from scratch after a 410 Gone).
   */
  private async watch(path: string, query: Record<string, string>, onObject: (phase: string, object: any) => void): Promise<void> {
    const watcher = new Watch(this.options.kubeConfig);
    let resourceVersion: string | undefined;
    const begin = async (): Promise<void> => {
      if (this.stopped) return;
      const again = (): void => {
        this.rewatches++;
        if (!this.stopped) setTimeout(() => void begin(), REWATCH_MS).unref();
      };
      try {
        const controller = await watcher.watch(
          path,
          // No allowWatchBookmarks: with it, this cluster's apiserver (etcd 3.4, no RequestWatchProgress) refuses the watch.
          { ...query, ...(resourceVersion ? { resourceVersion } : {}) },
          (phase, object) => {
            if (phase === 'ERROR') {
              // 410 Gone: the resourceVersion is too old; anything else is worth seeing.
              if (object?.code !== 410) this.errors.push(`watch ${path}: ${object?.message ?? JSON.stringify(object)}`);
              resourceVersion = undefined;
              return;
            }
            if (object?.metadata?.resourceVersion) resourceVersion = object.metadata.resourceVersion;
            if (phase !== 'BOOKMARK') onObject(phase, object);
          },
          (err: unknown) => {
            if (err && !this.stopped && (err as Error).name !== 'TimeoutError' && (err as Error).name !== 'AbortError') this.errors.push(`watch ${path}: ${String(err)}`);
            again();
          },
        );
        this.watches.push(controller);
      } catch (err) {
        this.errors.push(`watch ${path}: ${String(err)}`);
        again();
      }
    };
    await begin();
  }

  private record(pod: V1Pod): PodRecord {
    const name = pod.metadata!.name!;
    let record = this.pods.get(name);
    if (!record) {
      record = {
        name,
        createdAt: pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : Date.now(),
        restartCount: 0,
        exits: [],
        logs: [],
        readiness: [],
        endpoint: [],
        metrics: [],
        streamed: new Set(),
      };
      this.pods.set(name, record);
    }
    return record;
  }

  private onPod(phase: string, pod: V1Pod): void {
    // BOOKMARK and ERROR carry no pod.
    if (!['ADDED', 'MODIFIED', 'DELETED'].includes(phase) || !pod.metadata?.name) return;
    const now = Date.now();
    const record = this.record(pod);
    if (pod.status?.podIP) record.ip = pod.status.podIP;
    if (pod.metadata?.deletionTimestamp && record.deletionSeenAt === undefined) {
      record.deletionSeenAt = now;
      record.deletionTimestamp = new Date(pod.metadata.deletionTimestamp).getTime();
    }
    const ready = pod.status?.conditions?.find((condition) => condition.type === 'Ready')?.status === 'True';
    if (ready && record.readyAt === undefined) record.readyAt = now;
    const status = pod.status?.containerStatuses?.find((container) => container.name === this.options.container);
    if (status) {
      record.restartCount = status.restartCount;
      for (const state of [status.lastState?.terminated, status.state?.terminated]) {
        if (!state?.finishedAt) continue;
        const finishedAt = new Date(state.finishedAt).getTime();
        if (!record.exits.some((exit) => exit.containerID === state.containerID && exit.finishedAt === finishedAt)) {
          record.exits.push({ finishedAt, exitCode: state.exitCode, ...(state.reason ? { reason: state.reason } : {}), ...(state.containerID ? { containerID: state.containerID } : {}) });
        }
      }
      if (status.state?.running && status.containerID) this.currentContainer.set(record.name, status.containerID);
      else this.currentContainer.delete(record.name);
      if (status.state?.running && status.containerID && !record.streamed.has(status.containerID)) {
        record.streamed.add(status.containerID);
        this.follow(record, status.containerID);
      }
    }
    if (phase === 'DELETED' && record.goneAt === undefined) record.goneAt = now;
  }

  /**
   * Streams the running container's log from its first line until it exits (`kubectl logs
   * -f`, which ends when the container does). A restarted container is a new stream (its
   * predecessor's lines stay in `logs`, each tagged with its container). A stream that ends
   * while the same container still runs is started again; lines already read are skipped.
   */
  private follow(record: PodRecord, containerID: string, seen = new Set<string>()): void {
    if (this.stopped) return;
    const env = clusterEnv();
    const child = spawnGroup(join(env.bin, 'kubectl'), ['-n', this.options.namespace, 'logs', '-f', record.name, '-c', this.options.container], {
      env: { ...process.env, KUBECONFIG: env.kubeconfig },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    this.logStreams.add(child);
    createInterface({ input: child.stdout! }).on('line', (text) => {
      if (!text || seen.has(text)) return;
      seen.add(text);
      record.logs.push(parseLine(text, containerID));
    });
    child.once('close', () => {
      this.logStreams.delete(child);
      const current = this.currentContainer.get(record.name);
      if (!this.stopped && current === containerID && record.goneAt === undefined) {
        setTimeout(() => this.follow(record, containerID, seen), REWATCH_MS).unref();
      }
    });
  }

  private onSlice(phase: string, slice: V1EndpointSlice): void {
    if (!['ADDED', 'MODIFIED', 'DELETED'].includes(phase) || !slice.metadata?.name) return;
    const name = slice.metadata!.name!;
    const members = new Map<string, { ready: boolean; serving: boolean; terminating: boolean }>();
    if (phase !== 'DELETED') {
      for (const endpoint of slice.endpoints ?? []) {
        const pod = endpoint.targetRef?.kind === 'Pod' ? endpoint.targetRef.name : undefined;
        if (!pod) continue;
        const { ready = false, serving = false, terminating = false } = endpoint.conditions ?? {};
        members.set(pod, { ready, serving, terminating });
      }
    }
    this.slices.set(name, members);
    const now = Date.now();
    const listed = new Map<string, { ready: boolean; serving: boolean; terminating: boolean }>();
    for (const slicePods of this.slices.values()) for (const [pod, conditions] of slicePods) listed.set(pod, conditions);
    for (const record of this.pods.values()) {
      const last = record.endpoint.at(-1);
      const conditions = listed.get(record.name);
      if (JSON.stringify(last?.conditions) === JSON.stringify(conditions)) continue;
      if (!last && !conditions) continue;
      record.endpoint.push(conditions ? { at: now, conditions } : { at: now });
    }
  }

  private onEvent(phase: string, event: CoreV1Event): void {
    if (!['ADDED', 'MODIFIED'].includes(phase)) return;
    const key = `${event.metadata?.uid}/${event.count ?? event.series?.count ?? 1}`;
    if (this.seenEvents.has(key) || event.involvedObject?.kind !== 'Pod') return;
    this.seenEvents.add(key);
    const stamp = event.eventTime ?? event.lastTimestamp ?? event.firstTimestamp;
    this.events.push({
      observedAt: Date.now(),
      stampedAt: stamp ? new Date(stamp).getTime() : Number.NaN,
      reason: event.reason ?? '',
      message: event.message ?? '',
      pod: event.involvedObject.name ?? '',
    });
  }

  private poll(): void {
    const scrape = this.ticks++ % 4 === 0;
    for (const record of this.pods.values()) {
      if (!record.ip || record.goneAt !== undefined) continue;
      void this.probe(record);
      if (scrape) void this.scrape(record);
    }
  }

  private async probe(record: PodRecord): Promise<void> {
    let answer: string;
    try {
      const response = await fetch(`http://${record.ip}:${this.options.monitoringPort}${this.options.readinessPath}`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      answer = String(response.status);
    } catch (err) {
      answer = errorCode(err);
    }
    if (record.readiness.at(-1)?.answer !== answer) record.readiness.push({ at: Date.now(), answer });
  }

  private async scrape(record: PodRecord): Promise<void> {
    try {
      const response = await fetch(`http://${record.ip}:${this.options.monitoringPort}/metrics`, { signal: AbortSignal.timeout(2000) });
      const body = await response.text();
      const sample = (name: string): number => Number(body.match(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm'))?.[1] ?? Number.NaN);
      const state = ['starting', 'ready', 'draining', 'stopped'].find((candidate) => sample(`git_sshd_lifecycle_state{state="${candidate}"}`) === 1) ?? 'unknown';
      record.metrics.push({
        at: Date.now(),
        inFlight: sample('gitlab_shell_sshd_in_flight_connections'),
        bytesSent: sample('git_sshd_bytes_total{direction="sent"}'),
        sessionsCut: sample('git_sshd_sessions_cut_at_shutdown_total'),
        state,
        kubeletReadiness502: sample('git_sshd_probe_requests_total{probe="readiness",code="502",client="kubelet"}') || 0,
      });
    } catch {
      // A pod that stopped answering: the readiness record says when and how.
    }
  }
}

function parseLine(text: string, containerID: string): ServerLogLine {
  try {
    return { ...(JSON.parse(text) as ServerLogLine), container_id: containerID };
  } catch {
    return { msg: text, raw: true, container_id: containerID };
  }
}

function errorCode(err: unknown): string {
  const cause = (err as { cause?: { code?: string } }).cause;
  if (cause?.code) return cause.code;
  if ((err as Error).name === 'TimeoutError') return 'timeout';
  return (err as Error).message;
}
