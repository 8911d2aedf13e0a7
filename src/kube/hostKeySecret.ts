import { ApiException, CoreV1Api, KubeConfig, Watch, type V1Secret } from '@kubernetes/client-node';
import { ERR_HOST_KEYS, GitSshdError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { generateHostKeySet, logLoadedHostKey, parseHostKey, type HostKey } from '../ssh/hostkeys/hostKeys.js';

export interface HostKeySecretOptions {
  readonly name: string;
  readonly namespace: string;
  readonly kubeConfig: KubeConfig;
  readonly log: Logger;
  /** Aborted when the server stops: the watch ends. */
  readonly signal: AbortSignal;
  /** Makes a fresh key set by file name; injected so tests can count or fix it. */
  readonly generate?: () => Record<string, string>;
}

/** Re-watch after an error: from this, doubling up to REWATCH_MAX_MS while it keeps failing. */
const REWATCH_MS = 2_000;
const REWATCH_MAX_MS = 60_000;

/**
 * Host keys shared by every replica through one Kubernetes Secret, so that a client
 * behind the load balancer meets the same keys whichever pod it reaches. The first
 * replica to find the Secret missing creates it; one that loses that race (409) reads the
 * winner's keys. The Secret is watched, and rotated keys are handed on for new connections.
 */
export class HostKeySecret {
  private readonly options: HostKeySecretOptions;
  private readonly api: CoreV1Api;
  private lastVersion: string | undefined;

  /** With the pod's service account, or KUBECONFIG / ~/.kube/config outside a cluster. */
  static inCluster(options: Omit<HostKeySecretOptions, 'kubeConfig'>): HostKeySecret {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    return new HostKeySecret({ ...options, kubeConfig });
  }

  constructor(options: HostKeySecretOptions) {
    this.options = options;
    this.api = options.kubeConfig.makeApiClient(CoreV1Api);
  }

  /** The keys in the Secret, creating it with a new key set if it does not exist yet. */
  async load(): Promise<HostKey[]> {
    const { name, namespace, log } = this.options;
    let secret = await this.read();
    if (!secret) {
      const generated = (this.options.generate ?? generateHostKeySet)();
      const body: V1Secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'git-sshd' } },
        type: 'Opaque',
        data: Object.fromEntries(Object.entries(generated).map(([file, text]) => [file, Buffer.from(text).toString('base64')])),
      };
      try {
        secret = await this.api.createNamespacedSecret({ namespace, body });
        log.info({ host_keys_secret: name, namespace }, 'created the host key secret');
      } catch (err) {
        if (!(err instanceof ApiException) || err.code !== 409) throw this.failure('cannot create', err);
        // Another replica created it first: its keys are the ones to serve.
        log.info({ host_keys_secret: name, namespace }, 'another replica created the host key secret first; using its keys');
        secret = await this.read();
        if (!secret) throw this.failure('cannot read', new Error('the secret vanished after a conflict'));
      }
    }
    this.lastVersion = secret.metadata?.resourceVersion;
    const keys = this.keysOf(secret);
    for (const key of keys) logLoadedHostKey(log, key);
    return keys;
  }

  /** Calls `onRotate` with the new keys whenever the Secret changes (until the signal aborts). */
  watch(onRotate: (keys: HostKey[]) => void): void {
    const { name, namespace, log, signal } = this.options;
    const watch = new Watch(this.options.kubeConfig);
    let current: AbortController | undefined;
    let delay = REWATCH_MS;
    const again = (): void => {
      setTimeout(() => void start(), delay).unref();
      delay = Math.min(delay * 2, REWATCH_MAX_MS);
    };
    const start = async (): Promise<void> => {
      if (signal.aborted) return;
      try {
        current = await watch.watch(
          `/api/v1/namespaces/${namespace}/secrets`,
          { fieldSelector: `metadata.name=${name}` },
          (phase, object: V1Secret) => {
            delay = REWATCH_MS;
            if ((phase !== 'ADDED' && phase !== 'MODIFIED') || object.metadata?.resourceVersion === this.lastVersion) return;
            this.lastVersion = object.metadata?.resourceVersion;
            try {
              const keys = this.keysOf(object);
              for (const key of keys) logLoadedHostKey(log, key);
              onRotate(keys);
            } catch (err) {
              log.error({ err, host_keys_secret: name }, 'the changed host key secret has no usable key; keeping the current keys');
            }
          },
          (err: unknown) => {
            if (signal.aborted) return;
            if (err) log.warn({ err, host_keys_secret: name, retry_ms: delay }, 'host key secret watch ended; watching again');
            again();
          },
        );
      } catch (err) {
        log.warn({ err, host_keys_secret: name, retry_ms: delay }, 'cannot watch the host key secret; retrying');
        again();
      }
    };
    signal.addEventListener('abort', () => current?.abort(), { once: true });
    void start();
  }

  private async read(): Promise<V1Secret | undefined> {
    try {
      return await this.api.readNamespacedSecret({ name: this.options.name, namespace: this.options.namespace });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw this.failure('cannot read', err);
    }
  }

  private keysOf(secret: V1Secret): HostKey[] {
    const keys: HostKey[] = [];
    for (const [file, encoded] of Object.entries(secret.data ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
      if (file.endsWith('.pub')) continue;
      try {
        const key = parseHostKey(Buffer.from(encoded, 'base64'), `secret/${this.options.name}/${file}`);
        if (!keys.some((other) => other.type === key.type)) keys.push(key);
      } catch (err) {
        this.options.log.error({ host_keys_secret: this.options.name, file, reason: (err as Error).message }, 'skipped host key in the secret that could not be loaded');
      }
    }
    if (keys.length === 0) throw new GitSshdError(ERR_HOST_KEYS, `no usable host key in secret ${this.options.namespace}/${this.options.name}`);
    return keys;
  }

  private failure(what: string, err: unknown): GitSshdError {
    const detail = err instanceof ApiException ? `HTTP ${err.code}` : (err as Error).message;
    return new GitSshdError(ERR_HOST_KEYS, `${what} host key secret ${this.options.namespace}/${this.options.name}: ${detail}`, { cause: err });
  }
}
