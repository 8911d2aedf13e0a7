import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import ssh2, { type Connection as Ssh2Connection, type ClientInfo } from 'ssh2';
import type { Config } from '../config/types.js';
import type { AccessBackend } from '../backends/backend.js';
import type { GitTransport } from '../git/transport.js';
import type { Logger } from '../logging/logger.js';
import { BoundedLabels, clientSoftwareFamily } from '../monitoring/labels.js';
import type { Metrics } from '../monitoring/metrics.js';
import type { ClientAddress } from '../server/address.js';
import type { StartupLimiter } from '../server/startupLimiter.js';
import { buildAlgorithms, serverSigAlgs } from './algorithms.js';
import { Connection } from './connection.js';
import type { HostKey } from './hostkeys/hostKeys.js';
import { PhaseTracker } from './phase.js';

interface Pending {
  readonly remote: ClientAddress;
  readonly log: Logger;
  readonly correlationId: string;
  readonly loginTimer: NodeJS.Timeout | undefined;
  readonly acceptedAt: number;
  readonly phase: PhaseTracker;
  readonly releaseStartup: () => void;
}

export interface SshServerOptions {
  readonly config: Config;
  readonly hostKeys: readonly HostKey[];
  readonly backend: AccessBackend;
  readonly transport: GitTransport;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly startupLimiter: StartupLimiter;
  /** Aborted when everything still open must close now. */
  readonly signal: AbortSignal;
  /** Aborted when the drain begins: idle connections leave, running ones finish. */
  readonly drainSignal: AbortSignal;
  readonly version: string;
}

/** Distinct client software values kept as metric labels. */
const CLIENT_SOFTWARE_LABELS = 50;

/** ssh2 keeps a keepalive of its own; this is how long "off" is, since 0 means its default. */
const KEEPALIVE_OFF_MS = 2 ** 31 - 1;

/**
 * Assembles the SSH protocol side: ssh2's Server, fed sockets that our own listener
 * accepted (so that the login deadline covers a client that never sends a byte, and the
 * PROXY header can be read before the SSH banner). Keeps every live connection.
 */
export class SshServer {
  private readonly options: SshServerOptions;
  /** Replaced when the host keys rotate; connections already open stay on the one they began with. */
  private server: ssh2.Server;
  private readonly pending = new WeakMap<Socket, Pending>();
  private readonly live = new Set<Connection>();
  private readonly sockets = new Set<Socket>();
  private readonly clientSoftware = new BoundedLabels(CLIENT_SOFTWARE_LABELS);
  private closedBytes = { received: 0, sent: 0 };
  private lastBytes = { received: 0, sent: 0 };
  private emptyWaiters: Array<() => void> = [];

  constructor(options: SshServerOptions) {
    this.options = options;
    this.server = this.createServer(options.hostKeys);
    // A socket whose client never sent its banner has no Connection to close it.
    options.signal.addEventListener('abort', () => {
      for (const socket of this.sockets) if (this.pending.has(socket)) socket.destroy();
    }, { once: true });
  }

  /** New connections get these host keys from now on (a rotation picked up without a restart). */
  setHostKeys(keys: readonly HostKey[]): void {
    this.server = this.createServer(keys);
    this.options.log.info({ keys: keys.map((key) => ({ type: key.type, fingerprint: key.fingerprint })) }, 'host keys replaced for new connections');
  }

  private createServer(keys: readonly HostKey[]): ssh2.Server {
    const { sshd } = this.options.config;
    const server = new ssh2.Server(
      {
        hostKeys: keys.map((key) => key.privateKey),
        algorithms: buildAlgorithms(sshd),
        // patches/ssh2+1.17.0+002+interop.patch: ssh2 advertised a fixed (and misspelt) list.
        serverSigAlgs: serverSigAlgs(sshd),
        ident: `git-sshd_${this.options.version}`,
        keepaliveInterval: sshd.clientAliveIntervalMs > 0 ? sshd.clientAliveIntervalMs : KEEPALIVE_OFF_MS,
        keepaliveCountMax: sshd.clientAliveCountMax,
      } as ssh2.ServerConfig,
      (client, info) => this.onConnection(client, info),
    );
    server.on('error', (err: Error) => this.options.log.error({ err }, 'ssh server error'));
    return server;
  }

  /** Open connections, counting those whose client has not sent its banner yet. */
  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Bytes read and written on SSH sockets since start, open ones included. */
  bytes(): { received: number; sent: number } {
    let { received, sent } = this.closedBytes;
    for (const socket of this.sockets) {
      received += socket.bytesRead;
      sent += socket.bytesWritten;
    }
    // bytesWritten counts what is still queued, and a destroy discards the queue: a counter
    // must never go down, or Prometheus reads a reset.
    this.lastBytes = { received: Math.max(received, this.lastBytes.received), sent: Math.max(sent, this.lastBytes.sent) };
    return this.lastBytes;
  }

  /** The age of the oldest open connection, in milliseconds (0 when none is open). */
  oldestConnectionAgeMs(): number {
    let oldest = 0;
    for (const connection of this.live) oldest = Math.max(oldest, connection.ageMs);
    return Math.round(oldest);
  }

  /**
   * Takes over a socket our listener accepted. `remote` is the client as PROXY protocol
   * named it (or the socket's peer); `acceptedAt` is when the listener took the socket.
   */
  handleSocket(socket: Socket, remote: ClientAddress, acceptedAt = performance.now()): void {
    const { metrics, config } = this.options;
    const admission = this.options.startupLimiter.admit(remote.ip);
    if (!admission.admitted) {
      metrics.connectionsRejected.inc({ reason: admission.reason });
      this.options.log.warn(
        { remote_ip: remote.ip, remote_port: remote.port, reason: admission.reason, unauthenticated: this.options.startupLimiter.unauthenticated },
        'connection refused: too many unauthenticated connections',
      );
      socket.destroy();
      return;
    }
    const correlationId = randomUUID();
    const log = this.options.log.child({
      correlation_id: correlationId,
      remote_ip: remote.ip,
      remote_port: remote.port,
      ...(remote.via ? { proxy_ip: remote.via.ip, proxy_port: remote.via.port } : {}),
    });
    const phase = new PhaseTracker(metrics.connections);
    metrics.inFlightConnections.inc();
    this.sockets.add(socket);
    const graceMs = config.sshd.loginGraceTimeMs;
    // The deadline runs from accept, so time spent waiting for a PROXY header counts too.
    const loginTimer =
      graceMs > 0
        ? setTimeout(() => {
            log.info({ login_grace_time_ms: graceMs }, 'closing connection not authenticated in time');
            metrics.connectionsDropped.inc({ reason: 'login_grace_time' });
            socket.destroy();
          }, Math.max(0, graceMs - (performance.now() - acceptedAt)))
        : undefined;
    socket.once('close', () => {
      clearTimeout(loginTimer);
      admission.release();
      phase.end();
      metrics.inFlightConnections.dec();
      this.sockets.delete(socket);
      this.closedBytes = { received: this.closedBytes.received + socket.bytesRead, sent: this.closedBytes.sent + socket.bytesWritten };
      this.notifyIfEmpty();
    });
    this.pending.set(socket, { remote, log, correlationId, loginTimer, acceptedAt, phase, releaseStartup: admission.release });
    this.server.injectSocket(socket);
  }

  private onConnection(client: Ssh2Connection, info: ClientInfo): void {
    const socket = socketOf(client);
    const pending = socket && this.pending.get(socket);
    if (!socket || !pending) {
      this.options.log.error('ssh connection without a known socket; closing it');
      client.on('error', () => undefined);
      client.end();
      return;
    }
    this.pending.delete(socket);
    client.once('ready', () => {
      clearTimeout(pending.loginTimer);
      pending.releaseStartup();
    });
    const clientVersion = info.header.versions.software.slice(0, 64);
    this.options.metrics.clientSoftware.inc({ software: this.clientSoftware.label(clientSoftwareFamily(clientVersion)) });
    const { sshd } = this.options.config;
    const connection = new Connection({
      client,
      socket,
      user: this.options.config.user,
      publicKeyAlgorithms: sshd.publicKeyAlgorithms,
      concurrentSessionsLimit: sshd.concurrentSessionsLimit,
      maxAuthTries: sshd.maxAuthTries,
      backend: this.options.backend,
      transport: this.options.transport,
      log: pending.log,
      metrics: this.options.metrics,
      phase: pending.phase,
      acceptedAt: pending.acceptedAt,
      correlationId: pending.correlationId,
      clientIp: pending.remote.ip,
      clientVersion,
      // Once the connection is closing for a reason of its own, the login deadline must not count it again.
      onStopping: () => clearTimeout(pending.loginTimer),
      signal: this.options.signal,
      drainSignal: this.options.drainSignal,
    });
    this.live.add(connection);
    void connection.closed.then(() => {
      this.live.delete(connection);
      this.notifyIfEmpty();
    });
  }

  /** Resolves when every connection has closed and logged its summary. */
  allClosed(): Promise<void> {
    if (this.live.size === 0 && this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  private notifyIfEmpty(): void {
    if (this.live.size > 0 || this.sockets.size > 0) return;
    const waiters = this.emptyWaiters;
    this.emptyWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/**
 * ssh2 emits 'connection' only once the client's version line has arrived, with no
 * reference to the socket we injected; its Connection keeps that socket as `_sock`
 * (ssh2 1.17, pinned). This is the one place that relies on it.
 */
function socketOf(client: Ssh2Connection): Socket | undefined {
  const socket = (client as unknown as { _sock?: Socket })._sock;
  return socket && typeof socket.destroy === 'function' ? socket : undefined;
}
