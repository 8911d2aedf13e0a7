import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import { temporaryDir, type RunResult } from '../../helpers/client.js';
import { waitUntil } from '../../helpers/wait.js';
import { clusterEnv, kubectl, kubectlJson, kubectlOk } from './cluster.js';

/** How long a test waits for the cluster to do something (a pod to start, an endpoint to go). */
export const CLUSTER_TIMEOUT_MS = 300_000;

export async function getPods(namespace: string, selector: string): Promise<V1Pod[]> {
  return (await kubectlJson<{ items: V1Pod[] }>(['-n', namespace, 'get', 'pods', '-l', selector])).items;
}

export function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') ?? false;
}

/** Waits until exactly `count` pods match, all Ready and none terminating; returns them. */
export async function waitForReadyPods(namespace: string, selector: string, count: number, timeoutMs = CLUSTER_TIMEOUT_MS): Promise<V1Pod[]> {
  let pods: V1Pod[] = [];
  await waitUntil(
    `${count} Ready pod(s) ${selector} in ${namespace}`,
    async () => {
      pods = await getPods(namespace, selector);
      return pods.length === count && pods.every((pod) => isReady(pod) && !pod.metadata?.deletionTimestamp);
    },
    timeoutMs,
    1_000,
  );
  return pods;
}

export function exec(namespace: string, pod: string, command: string[], input?: string): Promise<RunResult> {
  return kubectl(['-n', namespace, 'exec', ...(input !== undefined ? ['-i'] : []), pod, '--', ...command], input !== undefined ? { input } : {});
}

export async function podLogs(namespace: string, pod: string, options: { previous?: boolean } = {}): Promise<string> {
  return kubectlOk(['-n', namespace, 'logs', pod, ...(options.previous ? ['--previous'] : [])]);
}

/** The JSON lines of a git-sshd log (pino), parsed; other lines are skipped. */
export function logRecords(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

export async function clusterIP(namespace: string, service: string): Promise<string> {
  const object = await kubectlJson<V1Service>(['-n', namespace, 'get', 'service', service]);
  const ip = object.spec?.clusterIP;
  if (!ip || ip === 'None') throw new Error(`service ${namespace}/${service} has no ClusterIP`);
  return ip;
}

/** The addresses of the Service's ready endpoints (EndpointSlices), sorted. */
export async function readyEndpoints(namespace: string, service: string): Promise<string[]> {
  const slices = await kubectlJson<{ items: V1EndpointSlice[] }>(['-n', namespace, 'get', 'endpointslices', '-l', `kubernetes.io/service-name=${service}`]);
  return slices.items
    .flatMap((slice) => slice.endpoints ?? [])
    .filter((endpoint) => endpoint.conditions?.ready === true)
    .flatMap((endpoint) => endpoint.addresses)
    .sort();
}

/** The pod's ServiceAccount token, read inside the pod (where the kubelet projected it). */
export async function podToken(namespace: string, pod: string): Promise<string> {
  const result = await exec(namespace, pod, ['cat', '/var/run/secrets/kubernetes.io/serviceaccount/token']);
  if (result.code !== 0 || !result.stdout.trim()) throw new Error(`cannot read the token in ${namespace}/${pod}: ${result.stderr}`);
  return result.stdout.trim();
}

/** A kubeconfig file that talks to the apiserver from the host with `token` and nothing else. */
export function tokenKubeconfig(token: string): string {
  const env = clusterEnv();
  const file = join(temporaryDir('git-sshd-k8s-token-'), 'kubeconfig');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server: env.apiserver, 'certificate-authority': env.ca } }],
      users: [{ name: 'token', user: { token } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'token' } }],
      'current-context': 'test',
    }),
    { mode: 0o600 },
  );
  return file;
}
