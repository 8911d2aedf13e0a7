import { logTime, type ServerLogLine } from './attribution.js';
import type { ClusterObserver, PodRecord } from './clusterObserver.js';
import type { Operation } from './loadGenerator.js';

/** One stopping pod's drain, each step as epoch ms (undefined: not seen). */
export interface DrainTimeline {
  readonly pod: string;
  readonly deleted?: number;
  readonly killingEvent?: number;
  readonly endpointNotReady?: number;
  readonly kubeProxyRemoved?: number;
  readonly sigterm?: number;
  readonly listenerClosed?: number;
  readonly readiness502?: number;
  /** What the readiness path answered first once the drain began: 502, or a refused connection if the process was already gone. */
  readonly readinessAnswer?: string;
  readonly kubeletSaw502?: number;
  readonly endpointRemoved?: number;
  readonly endpointNotServing?: number;
  readonly lastAccepted?: number;
  readonly lastBytesMetric?: number;
  readonly lastClosed?: number;
  readonly stopped?: number;
  readonly exited?: number;
  readonly gone?: number;
  /** From the `draining` and `stopped` log lines. */
  readonly connectionsAtSigterm?: number;
  readonly finished?: number;
  readonly cut?: number;
  readonly drainMs?: number;
  /** Load operations it served whose TCP connection was made after kube-proxy had (visibly) stopped sending it new ones. */
  readonly connectedAfterRemoval: number;
  /** Load operations it served whose TCP connection was made after its deletion (the preStop sleep, before kube-proxy caught up). */
  readonly connectedAfterDeletion: number;
  /** Load operations it served that were still running at its deletion. */
  readonly inFlightAtDeletion: number;
}

const STEPS: ReadonlyArray<[keyof DrainTimeline, string]> = [
  ['deleted', 'pod deleted (watch: deletionTimestamp)'],
  ['killingEvent', 'kubelet `Killing` event: preStop sleep starts'],
  ['endpointNotReady', 'EndpointSlice: ready=false, terminating=true'],
  ['kubeProxyRemoved', "kube-proxy: pod gone from the Service's nft chain"],
  ['lastAccepted', 'last connection accepted (log `authenticated`)'],
  ['sigterm', 'SIGTERM (log `shutdown requested`)'],
  ['listenerClosed', 'SSH listener closed (log `draining`)'],
  ['readiness502', 'readiness path stops answering 200 (host poll, 250 ms)'],
  ['kubeletSaw502', "kubelet's readiness probe answered 502 (/metrics, 1 s)"],
  ['endpointNotServing', 'EndpointSlice: serving=false'],
  ['lastBytesMetric', 'last growth of git_sshd_bytes_total{sent} (1 s scrape)'],
  ['lastClosed', 'last connection closed (log `connection closed`)'],
  ['stopped', 'drain over (log `stopped`)'],
  ['exited', 'container exit (kubelet, whole seconds)'],
  ['endpointRemoved', 'EndpointSlice: endpoint removed'],
  ['gone', 'pod object deleted'],
];

function firstAfter<T extends { at: number }>(items: readonly T[], after: number, match: (item: T) => boolean): number | undefined {
  return items.find((item) => item.at >= after && match(item))?.at;
}

function lastLog(lines: readonly ServerLogLine[], msg: string): ServerLogLine | undefined {
  return [...lines].reverse().find((line) => line.msg === msg);
}

/** The drain of one pod, assembled from what the observer saw; `containerID` picks one container's life when it restarted. */
export function drainTimeline(observer: ClusterObserver, pod: PodRecord, operations: readonly Operation[], containerID?: string): DrainTimeline {
  const lines = containerID ? pod.logs.filter((line) => line.container_id === containerID) : pod.logs;
  const deleted = pod.deletionSeenAt;
  const from = deleted ?? 0;
  const shutdown = lastLog(lines, 'shutdown requested');
  const draining = lastLog(lines, 'draining');
  const stopped = lastLog(lines, 'stopped');
  const signalAt = shutdown ? logTime(shutdown) : from;
  const removed = pod.ip ? observer.kubeProxy.endpoints.get(pod.ip)?.goneAt : undefined;
  const accepted = lines.filter((line) => line.msg === 'authenticated').map(logTime);
  const closed = lines.filter((line) => line.msg === 'connection closed').map(logTime);
  const served = operations.filter((op) => op.servedBy === pod.name);
  const connected = served.map((op) => op.connections.at(-1)?.connectedAt ?? op.startedAt);
  let lastBytesMetric: number | undefined;
  for (let index = 1; index < pod.metrics.length; index++) {
    if (pod.metrics[index]!.bytesSent > pod.metrics[index - 1]!.bytesSent) lastBytesMetric = pod.metrics[index]!.at;
  }
  const readinessChange = pod.readiness.find((answer) => answer.at >= signalAt - 1000 && answer.answer !== '200');
  const killing = observer.events.find((event) => event.pod === pod.name && event.reason === 'Killing' && event.observedAt >= from - 1000);
  const exit = [...pod.exits].reverse().find((candidate) => containerID === undefined || candidate.containerID === containerID);
  return {
    pod: pod.name,
    ...(deleted !== undefined ? { deleted } : {}),
    ...(killing ? { killingEvent: killing.observedAt } : {}),
    ...defined('endpointNotReady', firstAfter(pod.endpoint, from, (state) => state.conditions?.ready !== true)),
    ...defined('kubeProxyRemoved', removed),
    ...defined('sigterm', shutdown ? logTime(shutdown) : undefined),
    ...defined('listenerClosed', draining ? logTime(draining) : undefined),
    ...defined('readiness502', readinessChange?.at),
    ...defined('readinessAnswer', readinessChange?.answer),
    ...defined('kubeletSaw502', pod.metrics.find((sample) => sample.kubeletReadiness502 > 0)?.at),
    ...defined('endpointRemoved', firstAfter(pod.endpoint, from, (state) => state.conditions === undefined)),
    ...defined('endpointNotServing', firstAfter(pod.endpoint, from, (state) => state.conditions?.serving !== true)),
    ...defined('lastAccepted', accepted.length > 0 ? Math.max(...accepted) : undefined),
    ...defined('lastBytesMetric', lastBytesMetric),
    ...defined('lastClosed', closed.length > 0 ? Math.max(...closed) : undefined),
    ...defined('stopped', stopped ? logTime(stopped) : undefined),
    ...defined('exited', exit?.finishedAt),
    ...defined('gone', pod.goneAt),
    ...defined('connectionsAtSigterm', draining?.connections as number | undefined),
    ...defined('finished', stopped?.finished as number | undefined),
    ...defined('cut', stopped?.cut as number | undefined),
    ...defined('drainMs', stopped?.drain_ms as number | undefined),
    connectedAfterRemoval: removed === undefined ? 0 : connected.filter((at) => at > removed).length,
    connectedAfterDeletion: deleted === undefined ? 0 : connected.filter((at) => at > deleted).length,
    inFlightAtDeletion: deleted === undefined ? 0 : served.filter((op) => op.startedAt < deleted && (op.endedAt ?? Infinity) > deleted).length,
  };
}

function defined<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined || (typeof value === 'number' && Number.isNaN(value)) ? {} : ({ [key]: value } as Record<K, V>);
}

function seconds(at: number | undefined, origin: number): string {
  return at === undefined ? '-' : `${((at - origin) / 1000).toFixed(2)}`;
}

/**
 * A markdown table: one row per step, one column per pod, in seconds after `origin` (the
 * moment the test acted: `helm upgrade`, `kubectl delete pod`...).
 */
export function formatTimelines(title: string, origin: number, timelines: readonly DrainTimeline[]): string {
  const header = `| step (s after ${title}) | ${timelines.map((timeline) => timeline.pod).join(' | ')} |`;
  const rule = `|---|${timelines.map(() => '---:').join('|')}|`;
  const rows = STEPS.map(([key, label]) => `| ${label} | ${timelines.map((timeline) => seconds(timeline[key] as number | undefined, origin)).join(' | ')} |`);
  const counts: Array<[string, (timeline: DrainTimeline) => string]> = [
    ['first readiness answer after SIGTERM', (timeline) => timeline.readinessAnswer ?? '-'],
    ['connections open at SIGTERM', (timeline) => String(timeline.connectionsAtSigterm ?? '-')],
    ['finished during the drain / cut', (timeline) => `${timeline.finished ?? '-'} / ${timeline.cut ?? '-'}`],
    ['drain (ms, log `stopped`)', (timeline) => String(timeline.drainMs ?? '-')],
    ['load operations in flight at deletion', (timeline) => String(timeline.inFlightAtDeletion)],
    ['load connections made after deletion / after kube-proxy removal', (timeline) => `${timeline.connectedAfterDeletion} / ${timeline.connectedAfterRemoval}`],
  ];
  const countRows = counts.map(([label, value]) => `| ${label} | ${timelines.map(value).join(' | ')} |`);
  return [header, rule, ...rows, ...countRows].join('\n');
}
