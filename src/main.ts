import { mkdirSync, readFileSync } from 'node:fs';
import type { AccessBackend } from './backends/backend.js';
import { certificatesIn, GitlabApiClient } from './backends/gitlab/apiClient.js';
import { GitlabBackend } from './backends/gitlab/gitlabBackend.js';
import { LocalBackend } from './backends/local/localBackend.js';
import { sweepStaleIncoming } from './backends/local/staleIncoming.js';
import { UsersStore } from './backends/local/usersStore.js';
import { loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { GitSshdError } from './errors.js';
import { LocalGitTransport } from './git/localTransport.js';
import { RoutingTransport } from './git/routingTransport.js';
import { GitalyChannels } from './gitaly/channels.js';
import { GitalyTransport } from './gitaly/transport.js';
import { Lifecycle } from './lifecycle/lifecycle.js';
import { drain } from './lifecycle/shutdown.js';
import { createLogger, type Logger } from './logging/logger.js';
import { GitalyMetrics } from './monitoring/gitalyMetrics.js';
import { Metrics } from './monitoring/metrics.js';
import { MonitoringServer } from './monitoring/server.js';
import { Listener } from './server/listener.js';
import { peerOf } from './server/address.js';
import { ProxyGate } from './proxy/gate.js';
import { ProxyPolicyResolver } from './proxy/policy.js';
import { SourcePenalties } from './server/sourcePenalties.js';
import { SpawnHelper } from './spawn/spawnHelper.js';
import { StartupLimiter } from './server/startupLimiter.js';
import { loadHostKeys, type HostKey } from './ssh/hostkeys/hostKeys.js';
import { announceHostKey, clientHostFor } from './ssh/hostkeys/knownHosts.js';
import { runtimeProblem, sshNativeCrypto } from './ssh/runtime.js';
import { SshServer } from './ssh/server.js';
import { readVersion } from './version.js';
import { Registry } from 'prom-client';

const EXIT_CONFIG = 2;
const EXIT_START = 1;
/** At exit, how long git processes cut at the end of the grace period get to end cleanly. */
const SETTLE_AT_EXIT_MS = 800;
/** How often repositories are swept for partial pushes a crash left. */
const STALE_INCOMING_SWEEP_MS = 3_600_000;

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
  const localTransport = new LocalGitTransport({ baseEnv: config.gitEnv, uploadPack: config.uploadPack, log, spawnHelper: new SpawnHelper({ log }) });
  // git runs in process groups of its own, which do not die with us: take them along.
  process.on('exit', () => localTransport.killAll());
  let ssh: SshServer | undefined;
  let penalties: SourcePenalties | undefined;
  const metrics = new Metrics(
    new Registry(),
    {
      lifecycleState: () => lifecycle.state,
      drainSeconds: () => lifecycle.drainSeconds,
      bytes: () => ssh?.bytes() ?? { received: 0, sent: 0 },
      penalisedSources: () => penalties?.activeCount ?? 0,
    },
    version,
  );
  const backend = await createBackend(config, metrics, version, log);
  const gitalyChannels = config.backend === 'gitlab' && config.gitlab.gitTransport === 'gitaly' ? createGitalyChannels(config, metrics, log) : undefined;
  const transport = new RoutingTransport({
    local: localTransport,
    gitaly: gitalyChannels
      ? new GitalyTransport({ channels: gitalyChannels, startTimeoutMs: config.gitlab.gitalyStartTimeoutMs, clientName: 'git-sshd', log, metrics: gitalyChannels.metrics })
      : undefined,
  });
  // Up first, answering 502 on readiness until the SSH port listens; a port taken is fatal.
  const monitoring = config.sshd.webListen
    ? new MonitoringServer({
        address: config.sshd.webListen,
        readinessPath: config.sshd.readinessProbe,
        livenessPath: config.sshd.livenessProbe,
        lifecycle,
        registry: metrics.registry,
        log,
        onProbe: (probe, code, client) => metrics.probeRequests.inc({ probe, code, client }),
      })
    : undefined;
  if (monitoring) {
    const bound = await monitoring.listen();
    log.info({ address: bound.address, port: bound.port }, 'monitoring server listening');
  }
  const { sshd } = config;
  const startupLimiter = new StartupLimiter({ maxStartups: sshd.maxStartups, perSource: sshd.perSourceMaxStartups });
  penalties = new SourcePenalties({
    settings: sshd.perSourcePenalties,
    blockSize: sshd.perSourceNetBlockSize,
    log,
    onPenalty: (reason) => metrics.sourcePenalties.inc({ reason }),
  });
  // A load balancer's own connections (no PROXY header, LOCAL, health checks) carry no
  // client's address: penalising it would refuse everyone behind it.
  if (sshd.proxyProtocol) for (const range of sshd.proxyAllowed) penalties.exemptRange(range);
  ssh = new SshServer({
    config,
    hostKeys,
    backend,
    transport,
    log,
    metrics,
    startupLimiter,
    penalties,
    signal: lifecycle.root.signal,
    drainSignal: lifecycle.drain.signal,
    version,
  });
  const sshServer = ssh;
  // Rotated keys are announced like the first ones: users must be able to check them.
  let announce = (_keys: readonly HostKey[]): void => undefined;
  keySecret?.watch((keys) => {
    sshServer.setHostKeys(keys);
    announce(keys);
  });
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
  const nativeCrypto = sshNativeCrypto();
  if (!nativeCrypto) log.warn('ssh2 runs on its slow JavaScript crypto: its native binding did not load (run npm ci again, with python3, make and g++)');
  log.info({ address: address.address, port: address.port, version, node: process.versions.node, native_crypto: nativeCrypto, backend: config.backend, config: config.source }, 'listening');
  announce = (keys) => {
    for (const key of keys) log.info(announceHostKey(key, clientHostFor(address.address), address.port), 'host key');
  };
  announce(hostKeys);

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
      // git got EOF at the cut; what has not ended by itself yet gets SIGTERM before we exit.
      .then(() => Promise.all([backend.close(), monitoring?.close(), localTransport.settle(SETTLE_AT_EXIT_MS), gitalyChannels?.closeAll()]))
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

function createGitalyChannels(config: Config, metrics: Metrics, log: Logger): GitalyChannels {
  const ca = [
    ...(config.httpSettings.caFile ? [readFileSync(config.httpSettings.caFile, 'utf8')] : []),
    ...certificatesIn([config.httpSettings.caPath, config.sslCertDir].filter((dir) => dir !== '')),
  ];
  return new GitalyChannels({
    ca,
    connectTimeoutMs: config.gitlab.gitalyConnectTimeoutMs,
    keepAliveMs: config.gitlab.gitalyKeepAliveMs,
    log,
    metrics: new GitalyMetrics(metrics.registry),
  });
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
      gitTransport: config.gitlab.gitTransport,
      localPush: config.gitlab.localPush,
      log,
    });
  }
  mkdirSync(config.local.reposDir, { recursive: true, mode: 0o750 });
  if (config.local.staleIncomingAfterMs > 0) {
    sweepStaleIncoming({
      reposDir: config.local.reposDir,
      olderThanMs: config.local.staleIncomingAfterMs,
      everyMs: Math.min(STALE_INCOMING_SWEEP_MS, config.local.staleIncomingAfterMs),
      log,
      onRemoved: (count) => metrics.staleIncomingRemoved.inc(count),
    });
  }
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
  const problem = runtimeProblem();
  if (problem) {
    process.stderr.write(`git-sshd: ${problem}\n`);
    process.exit(EXIT_START);
  }
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
