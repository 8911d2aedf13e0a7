import { join } from 'node:path';
import { run, temporaryDir, type RunResult } from '../../helpers/client.js';

/**
 * The cluster the Kubernetes tests run against, from the environment that
 * test/k8s/cluster/up.sh writes (cluster.env) and scripts/test-k8s.sh exports:
 * KUBECONFIG (admin), GIT_SSHD_K8S_BIN (kubectl, helm), GIT_SSHD_K8S_IMAGE (git-sshd,
 * imported into containerd), GIT_SSHD_K8S_APISERVER and GIT_SSHD_K8S_CA (to use a pod's
 * token from the host).
 */
export interface ClusterEnv {
  readonly kubeconfig: string;
  readonly bin: string;
  readonly image: string;
  readonly apiserver: string;
  readonly ca: string;
}

export function clusterEnv(): ClusterEnv {
  const names = ['KUBECONFIG', 'GIT_SSHD_K8S_BIN', 'GIT_SSHD_K8S_IMAGE', 'GIT_SSHD_K8S_APISERVER', 'GIT_SSHD_K8S_CA'] as const;
  const missing = names.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(`no test cluster: ${missing.join(', ')} not set (run \`npm run test:k8s\`, or source the cluster's cluster.env and set GIT_SSHD_K8S_IMAGE)`);
  }
  return {
    kubeconfig: process.env.KUBECONFIG!,
    bin: process.env.GIT_SSHD_K8S_BIN!,
    image: process.env.GIT_SSHD_K8S_IMAGE!,
    apiserver: process.env.GIT_SSHD_K8S_APISERVER!,
    ca: process.env.GIT_SSHD_K8S_CA!,
  };
}

export interface CommandOptions {
  readonly input?: string;
  /** A bound on the command, not an expectation (default 5 minutes). */
  readonly timeoutMs?: number;
  /** Another kubeconfig (a ServiceAccount's token, say). */
  readonly kubeconfig?: string;
}

/** helm's cache, config and data of this test process, not the user's. */
let helmHome: string | undefined;

function tool(name: 'kubectl' | 'helm', args: string[], options: CommandOptions): Promise<RunResult> {
  const env = clusterEnv();
  helmHome ??= temporaryDir('git-sshd-k8s-helm-');
  return run(join(env.bin, name), args, {
    env: { KUBECONFIG: options.kubeconfig ?? env.kubeconfig, HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_DATA_HOME: join(helmHome, 'data') },
    timeoutMs: options.timeoutMs ?? 300_000,
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
}

export function kubectl(args: string[], options: CommandOptions = {}): Promise<RunResult> {
  return tool('kubectl', args, options);
}

export function helm(args: string[], options: CommandOptions = {}): Promise<RunResult> {
  return tool('helm', args, options);
}

/** Fails with the command and its stderr unless it exits 0; its stdout otherwise. */
export function ok(what: string, result: RunResult): string {
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${result.stderr.slice(-4000)}${result.stdout.slice(-2000)}`);
  return result.stdout;
}

export async function kubectlOk(args: string[], options: CommandOptions = {}): Promise<string> {
  return ok(`kubectl ${args.join(' ')}`, await kubectl(args, options));
}

export async function kubectlJson<T>(args: string[], options: CommandOptions = {}): Promise<T> {
  return JSON.parse(await kubectlOk([...args, '-o', 'json'], options)) as T;
}

export async function helmOk(args: string[], options: CommandOptions = {}): Promise<string> {
  return ok(`helm ${args.join(' ')}`, await helm(args, options));
}

/** `kubectl apply -f -` of objects given as JS values (a List of them). */
export async function apply(namespace: string | undefined, objects: object[]): Promise<string> {
  const list = { apiVersion: 'v1', kind: 'List', items: objects };
  return kubectlOk([...(namespace ? ['-n', namespace] : []), 'apply', '-f', '-'], { input: JSON.stringify(list) });
}
