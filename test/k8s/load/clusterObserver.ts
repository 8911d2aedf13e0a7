import { CoreV1Api, DiscoveryV1Api, KubeConfig, Watch, type CoreV1Event, type V1EndpointSlice, type V1Pod } from '@kubernetes/client-node';
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
const RELIST_MS = 5000;
/** Without data for this long, client-node ends a watch (its own default is 30 s: a quiet EndpointSlice); set on a private field, for client-node has no option for it. */
const WATCH_INACTIVITY_MS = 300_000;

/**
 * Why the apiserver ended a watch that is to be started again from the current state, not
 * an error of the cluster: 410 Gone (the resourceVersion was compacted away) and 504
 * "Too large resource version" (the apiserver's watch cache is behind the resourceVersion
 * asked for: with etcd 3.4 it learns of progress only from changes of the same kind).
 */
export function resumeReason(status: { code?: number; reason?: string; message?: string } | undefined): string | undefined {
  if (status?.code === 410) return 'expired';
  if (status?.code === 504 || /too large resource version/i.test(status?.message ?? '')) return 'ahead of the watch cache';
  return undefined;
}

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
  private relister: NodeJS.Timeout | undefined;
  /** Lists (RELIST_MS) that found a change the watches had not delivered. */
  relistFound = 0;
  /** Lists that failed (the apiserver busy or restarting): not fatal, the watches carry on. */
  readonly relistErrors: string[] = [];
  private lagTimer: NodeJS.Timeout | undefined;
  /** Watches started again from the last resourceVersion seen (after a quiet spell or a closed stream). */
  rewatches = 0;
  /**
   * Watches started again from the current state (resumeReason), each followed by a list
   * that settles what the gap hid: pods and EndpointSlices deleted meanwhile.
   */
  readonly resyncs: string[] = [];
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
    const core = this.options.kubeConfig.makeApiClient(CoreV1Api);
    const discovery = this.options.kubeConfig.makeApiClient(DiscoveryV1Api);
    const sliceSelector = `kubernetes.io/service-name=${service}`;
    const listPods = async (): Promise<void> => {
      const listed = await core.listNamespacedPod({ namespace, labelSelector: selector });
      this.settle('pod', listed, (pod) => this.onPod('MODIFIED', pod), (name) => {
        const record = this.pods.get(name);
        if (record && record.goneAt === undefined) record.goneAt = Date.now();
      });
    };
    const listSlices = async (): Promise<void> => {
      const listed = await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: sliceSelector });
      this.settle('slice', listed, (slice) => this.onSlice('MODIFIED', slice), (name) => this.onSlice('DELETED', { metadata: { name } } as V1EndpointSlice));
    };
    await Promise.all([
      this.watch(`/api/v1/namespaces/${namespace}/pods`, { labelSelector: selector }, (phase, pod: V1Pod) => this.onPod(phase, pod), listPods),
      this.watch(`/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`, { labelSelector: sliceSelector }, (phase, slice: V1EndpointSlice) => this.onSlice(phase, slice), listSlices),
      // Events are only added to: nothing to settle.
      this.watch(`/api/v1/namespaces/${namespace}/events`, {}, (phase, event: CoreV1Event) => this.onEvent(phase, event), async () => {}),
    ]);
    // A safety net under the watches: this cluster's apiserver has been seen to keep a watch
    // open and silent after its etcd watch failed ("required revision has been compacted"),
    // so the state is also listed every few seconds. A change the list finds first is
    // stamped later than the watch would have (at most RELIST_MS), and counted in `relistFound`.
    this.relister = setInterval(() => {
      const before = this.fingerprint();
      void Promise.all([listPods(), listSlices()])
        .then(() => {
          if (this.fingerprint() !== before) this.relistFound++;
        })
        .catch((err: unknown) => {
          if (!this.stopped) this.relistErrors.push(String(err));
        });
    }, RELIST_MS);
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
    clearInterval(this.relister);
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
   * A watch kept open for the whole test. A stream the apiserver or client-node ends (a
   * quiet spell, the apiserver's own timeout) is started again from the last resourceVersion
   * seen, so that no change falls in the gap. One the apiserver ends with a resumeReason is
   * started again from the current state, then `resync` lists what is there to settle what
   * the gap hid; that is recorded in `resyncs`, not in `errors`.
   */
  private async watch(path: string, query: Record<string, string>, onObject: (phase: string, object: any) => void, resync: () => Promise<void>): Promise<void> {
    const watcher = new Watch(this.options.kubeConfig);
    (watcher as unknown as { requestTimeoutMs: number }).requestTimeoutMs = WATCH_INACTIVITY_MS;
    let resourceVersion: string | undefined;
    let resyncAfterStart = false;
    const restart = (delayMs: number): void => {
      if (!this.stopped) setTimeout(() => void begin(), delayMs).unref();
    };
    const fromScratch = (reason: string, retryAfterSeconds: number | undefined): void => {
      this.resyncs.push(`${path.split('/').at(-1)}: ${reason}`);
      resourceVersion = undefined;
      resyncAfterStart = true;
      restart(Math.max(REWATCH_MS, (retryAfterSeconds ?? 0) * 1000));
    };
    const begin = async (): Promise<void> => {
      if (this.stopped) return;
      let endedBy: { reason: string; retryAfterSeconds?: number } | undefined;
      try {
        const controller = await watcher.watch(
          path,
          // No allowWatchBookmarks: with it, this cluster's apiserver (etcd 3.4, no RequestWatchProgress) refuses the watch.
          { ...query, ...(resourceVersion ? { resourceVersion } : {}) },
          (phase, object) => {
            if (phase === 'ERROR') {
              const reason = resumeReason(object);
              if (reason) endedBy = { reason: `${reason}: ${object?.message ?? ''}`.replace(/\d+/g, 'N'), ...(object?.details?.retryAfterSeconds ? { retryAfterSeconds: object.details.retryAfterSeconds } : {}) };
              else this.errors.push(`watch ${path}: ${object?.message ?? JSON.stringify(object)}`);
              return;
            }
            if (object?.metadata?.resourceVersion) resourceVersion = object.metadata.resourceVersion;
            if (phase === 'BOOKMARK') return;
            this.noteVersion(object);
            onObject(phase, object);
          },
          (err: unknown) => {
            if (this.stopped) return;
            const httpReason = resumeReason({ code: (err as { statusCode?: number } | null)?.statusCode });
            if (endedBy ?? httpReason) return fromScratch((endedBy?.reason ?? httpReason)!, endedBy?.retryAfterSeconds);
            if (err && (err as Error).name !== 'TimeoutError' && (err as Error).name !== 'AbortError') this.errors.push(`watch ${path}: ${String(err)}`);
            this.rewatches++;
            restart(REWATCH_MS);
          },
        );
        this.watches.push(controller);
        if (resyncAfterStart) {
          // After the watch is open, so that a change after the list is in the stream.
          resyncAfterStart = false;
          await resync().catch((err: unknown) => this.errors.push(`resync ${path}: ${String(err)}`));
        }
      } catch (err) {
        this.errors.push(`watch ${path}: ${String(err)}`);
        this.rewatches++;
        restart(REWATCH_MS);
      }
    };
    await begin();
  }

  /** The newest resourceVersion seen of each pod and slice (`kind/name`), by watch or list. */
  private readonly versions = new Map<string, number>();

  private noteVersion(object: { kind?: string; metadata?: { name?: string; resourceVersion?: string } } | undefined, kind = object?.kind): void {
    const name = object?.metadata?.name;
    const version = Number(object?.metadata?.resourceVersion);
    if (!kind || !name || !Number.isFinite(version)) return;
    const key = `${kind.toLowerCase() === 'endpointslice' ? 'slice' : kind.toLowerCase()}/${name}`;
    this.versions.set(key, Math.max(this.versions.get(key) ?? 0, version));
  }

  /**
   * Applies a list: objects newer than what the watch delivered, and the absence of those
   * the watch last saw before the list's snapshot (one it saw after, e.g. a pod created
   * while the list was on its way, is not taken for gone). resourceVersions are etcd
   * revisions here (the API calls them opaque; this test cluster is etcd's).
   */
  private settle<T extends { metadata?: { name?: string; resourceVersion?: string } }>(
    kind: 'pod' | 'slice',
    listed: { items: T[]; metadata?: { resourceVersion?: string } },
    apply: (object: T) => void,
    remove: (name: string) => void,
  ): void {
    const snapshot = Number(listed.metadata?.resourceVersion);
    if (!Number.isFinite(snapshot)) return;
    const present = new Set<string>();
    for (const object of listed.items) {
      const name = object.metadata?.name;
      if (!name) continue;
      present.add(name);
      if (Number(object.metadata?.resourceVersion) > (this.versions.get(`${kind}/${name}`) ?? 0)) {
        this.noteVersion(object, kind);
        apply(object);
      }
    }
    for (const [key, version] of this.versions) {
      const [objectKind, name] = key.split('/') as [string, string];
      if (objectKind !== kind || present.has(name) || version > snapshot) continue;
      remove(name);
    }
  }

  /** What the lists can change: pods' readiness, deletion and presence, and the slices' members. */
  private fingerprint(): string {
    const pods = [...this.pods.values()].map((pod) => `${pod.name}:${pod.readyAt !== undefined}:${pod.deletionSeenAt !== undefined}:${pod.goneAt !== undefined}:${pod.restartCount}`);
    return JSON.stringify([pods, [...this.slices.entries()].map(([name, members]) => [name, [...members.entries()]])]);
  }

  /** The resyncs, counted by watch and reason. */
  resyncSummary(): string {
    const counts = new Map<string, number>();
    for (const resync of this.resyncs) counts.set(resync, (counts.get(resync) ?? 0) + 1);
    return [...counts].map(([resync, count]) => `${count}x ${resync}`).join('; ');
  }

  /** One line on what the observer has seen: for a failed wait's message. */
  describe(): string {
    const pods = [...this.pods.values()].map((pod) =>
      `${pod.name} ip=${pod.ip ?? '-'} ready=${pod.readyAt !== undefined} deleting=${pod.deletionSeenAt !== undefined} gone=${pod.goneAt !== undefined} restarts=${pod.restartCount} logs=${pod.logs.length} readiness=${pod.readiness.at(-1)?.answer ?? '-'}`,
    );
    return `pods [${pods.join('; ')}]; watches restarted ${this.rewatches}, resynced [${this.resyncSummary()}]; lists that found what the watches missed ${this.relistFound}, failed ${this.relistErrors.length}; errors [${this.errors.join('; ')}]`;
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
