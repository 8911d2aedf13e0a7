import { mkdirSync } from 'node:fs';
import type { AccessBackend } from './backends/backend.js';
import { GitlabApiClient } from './backends/gitlab/apiClient.js';
import { GitlabBackend } from './backends/gitlab/gitlabBackend.js';
import { LocalBackend } from './backends/local/localBackend.js';
import { UsersStore } from './backends/local/usersStore.js';
import { loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { GitSshdError } from './errors.js';
import { LocalGitTransport } from './git/localTransport.js';
import { Lifecycle } from './lifecycle/lifecycle.js';
import { drain } from './lifecycle/shutdown.js';
import { createLogger, type Logger } from './logging/logger.js';
import { Metrics } from './monitoring/metrics.js';
import { MonitoringServer } from './monitoring/server.js';
import { Listener } from './server/listener.js';
import { peerOf } from './server/address.js';
import { ProxyGate } from './proxy/gate.js';
import { ProxyPolicyResolver } from './proxy/policy.js';
import { StartupLimiter } from './server/startupLimiter.js';
import { loadHostKeys } from './ssh/hostkeys/hostKeys.js';
import { SshServer } from './ssh/server.js';
import { readVersion } from './version.js';
import { Registry } from 'prom-client';

const EXIT_CONFIG = 2;
const EXIT_START = 1;

/** The composition root: config, then every object, wired; then signals. */
async function start(config: Config, warnings: readonly string[], log: Logger): Promise<void> {
  const version = readVersion();
  const lifecycle = new Lifecycle();
  for (const warning of warnings) log.warn(warning);

  // The Kubernetes client is loaded only when it is used: it is most of a cold start otherwise.
  const keySecret = config.kube.hostKeysSecret
    ? (await import('./kube/hostKeySecret.js')).HostKeySecret.inCluster({
        name: config.kube.hostKeysSecret,
        namespace: config.kube.namespace,
        log,
        signal: lifecycle.root.signal,
      })
    : undefined;
  const hostKeys = keySecret ? await keySecret.load() : loadHostKeys({ files: config.sshd.hostKeyFiles, dataDir: config.local.dataDir, log });
  const transport = new LocalGitTransport({ baseEnv: config.gitEnv, log });
  // git runs in process groups of its own, which do not die with us: take them along.
  process.on('exit', () => transport.killAll());
  let ssh: SshServer | undefined;
  const metrics = new Metrics(
    new Registry(),
    {
      lifecycleState: () => lifecycle.state,
      drainSeconds: () => lifecycle.drainSeconds,
      bytes: () => ssh?.bytes() ?? { received: 0, sent: 0 },
    },
    version,
  );
  const backend = await createBackend(config, metrics, version, log);
  // Up first, answering 502 on readiness until the SSH port listens; a port taken is fatal.
  const monitoring = config.sshd.webListen
    ? new MonitoringServer({
        address: config.sshd.webListen,
        readinessPath: config.sshd.readinessProbe,
        livenessPath: config.sshd.livenessProbe,
        lifecycle,
        registry: metrics.registry,
        log,
      })
    : undefined;
  if (monitoring) {
    const bound = await monitoring.listen();
    log.info({ address: bound.address, port: bound.port }, 'monitoring server listening');
  }
  const { sshd } = config;
  const startupLimiter = new StartupLimiter({ maxStartups: sshd.maxStartups, perSource: sshd.perSourceMaxStartups });
  ssh = new SshServer({
    config,
    hostKeys,
    backend,
    transport,
    log,
    metrics,
    startupLimiter,
    signal: lifecycle.root.signal,
    drainSignal: lifecycle.drain.signal,
    version,
  });
  const sshServer = ssh;
  keySecret?.watch((keys) => sshServer.setHostKeys(keys));
  const proxyGate = sshd.proxyProtocol
    ? new ProxyGate({
        policies: new ProxyPolicyResolver({ policy: sshd.proxyPolicy, allowed: sshd.proxyAllowed }),
        headerTimeoutMs: sshd.proxyHeaderTimeoutMs,
        maxPending: sshd.maxStartups.full,
        log,
        metrics,
        signal: lifecycle.root.signal,
        next: (socket, client, acceptedAt) => sshServer.handleSocket(socket, client, acceptedAt),
      })
    : undefined;
  const listener = new Listener({
    address: config.sshd.listen,
    log,
    onSocket: proxyGate ? (socket) => proxyGate.accept(socket) : (socket) => sshServer.handleSocket(socket, peerOf(socket)),
  });

  const address = await listener.listen();
  lifecycle.moveTo('ready');
  log.info({ address: address.address, port: address.port, version, backend: config.backend, config: config.source }, 'listening');

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      log.flush();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    log.info({ signal }, 'shutdown requested');
    void drain({
      lifecycle,
      log,
      gracePeriodMs: config.sshd.gracePeriodMs,
      target: {
        stopAccepting: () => listener.close(),
        // A connection still waiting for its PROXY header was accepted before the signal:
        // it is handed to the SSH server (or closed) first, then waited for like the rest.
        allClosed: async () => {
          await proxyGate?.idle();
          await sshServer.allClosed();
        },
        get connectionCount() {
          return sshServer.connectionCount + (proxyGate?.pending ?? 0);
        },
        oldestConnectionAgeMs: () => sshServer.oldestConnectionAgeMs(),
      },
    })
      .then(() => Promise.all([backend.close(), monitoring?.close()]))
      .catch((err: unknown) => log.error({ err }, 'error while stopping'))
      .then(() => {
        log.flush();
        process.exitCode = 0;
        setTimeout(() => process.exit(0), 50).unref();
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function createBackend(config: Config, metrics: Metrics, version: string, log: Logger): Promise<AccessBackend> {
  if (config.backend === 'gitlab') {
    const api = new GitlabApiClient({
      gitlabUrl: config.gitlabUrl,
      relativeUrlRoot: config.gitlabRelativeUrlRoot,
      secret: config.secret,
      basicAuth: { user: config.httpSettings.user, password: config.httpSettings.password },
      readTimeoutMs: config.httpSettings.readTimeoutMs,
      ...(config.httpSettings.caFile ? { caFile: config.httpSettings.caFile } : {}),
      caDirs: [config.httpSettings.caPath, config.sslCertDir].filter((dir) => dir !== ''),
      userAgent: `git-sshd/${version}`,
      log,
      metrics,
    });
    return new GitlabBackend({
      api,
      storages: config.gitlab.storages,
      keyCache: { ttlMs: config.gitlab.keyCacheTtlMs, max: config.gitlab.keyCacheSize },
      pat: config.pat,
      localPush: config.gitlab.localPush,
      log,
    });
  }
  mkdirSync(config.local.reposDir, { recursive: true, mode: 0o750 });
  const users = await UsersStore.open({
    file: config.local.usersFile,
    createIfMissing: !config.local.usersFileExplicit,
    keyPolicy: { allowedAlgorithms: config.sshd.publicKeyAlgorithms, minRsaKeyBits: config.sshd.minRsaKeyBits },
    log,
  });
  users.watch();
  return new LocalBackend({ users, reposDir: config.local.reposDir, gitEnv: config.gitEnv, log });
}

function main(): void {
  let loaded;
  try {
    loaded = loadConfig({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() });
  } catch (err) {
    process.stderr.write(`git-sshd: ${(err as Error).message}\n`);
    process.exit(EXIT_CONFIG);
  }
  const log = createLogger(loaded.config);
  // Every socket, connection and channel has its own error listener; reaching these means
  // a bug. Log it with its stack, then exit so that the orchestrator restarts us clean.
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception');
    log.flush();
    process.exit(EXIT_START);
  });
  process.on('unhandledRejection', (reason) => {
    log.fatal({ err: reason }, 'unhandled promise rejection');
    log.flush();
    process.exit(EXIT_START);
  });
  start(loaded.config, loaded.warnings, log).catch((err: unknown) => {
    const message = err instanceof GitSshdError ? err.message : (err as Error).message;
    log.fatal({ err }, 'cannot start');
    log.flush();
    process.stderr.write(`git-sshd: cannot start: ${message}\n`);
    setTimeout(() => process.exit(EXIT_START), 50);
  });
}

main();
