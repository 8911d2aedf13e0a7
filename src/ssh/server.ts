import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import ssh2, { type Connection as Ssh2Connection, type ClientInfo } from 'ssh2';
import type { Config } from '../config/types.js';
import type { AccessBackend } from '../backends/backend.js';
import type { GitTransport } from '../git/transport.js';
import type { Logger } from '../logging/logger.js';
import { buildAlgorithms } from './algorithms.js';
import { Connection } from './connection.js';
import type { HostKey } from './hostkeys/hostKeys.js';

/** The client's address as we report it (PROXY protocol will replace the socket's). */
export interface RemoteAddress {
  readonly ip: string;
  readonly port: number;
}

interface Pending {
  readonly remote: RemoteAddress;
  readonly log: Logger;
  readonly correlationId: string;
  readonly loginTimer: NodeJS.Timeout | undefined;
}

export interface SshServerOptions {
  readonly config: Config;
  readonly hostKeys: readonly HostKey[];
  readonly backend: AccessBackend;
  readonly transport: GitTransport;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly version: string;
}

/** ssh2 keeps a keepalive of its own; this is how long "off" is, since 0 means its default. */
const KEEPALIVE_OFF_MS = 2 ** 31 - 1;

/**
 * Assembles the SSH protocol side: ssh2's Server, fed sockets that our own listener
 * accepted (so that the login deadline covers a client that never sends a byte, and the
 * PROXY header can be read before the SSH banner). Keeps every live connection.
 */
export class SshServer {
  private readonly options: SshServerOptions;
  private readonly server: ssh2.Server;
  private readonly pending = new WeakMap<Socket, Pending>();
  private readonly live = new Set<Connection>();

  constructor(options: SshServerOptions) {
    this.options = options;
    const { sshd } = options.config;
    this.server = new ssh2.Server(
      {
        hostKeys: options.hostKeys.map((key) => key.privateKey),
        algorithms: buildAlgorithms(sshd),
        ident: `git-sshd_${options.version}`,
        keepaliveInterval: sshd.clientAliveIntervalMs > 0 ? sshd.clientAliveIntervalMs : KEEPALIVE_OFF_MS,
        keepaliveCountMax: sshd.clientAliveCountMax,
      } as ssh2.ServerConfig,
      (client, info) => this.onConnection(client, info),
    );
    this.server.on('error', (err: Error) => options.log.error({ err }, 'ssh server error'));
  }

  get connectionCount(): number {
    return this.live.size;
  }

  /** Takes over a socket our listener accepted. */
  handleSocket(socket: Socket, remote: RemoteAddress): void {
    const correlationId = randomUUID();
    const log = this.options.log.child({ correlation_id: correlationId, remote_ip: remote.ip, remote_port: remote.port });
    const graceMs = this.options.config.sshd.loginGraceTimeMs;
    const loginTimer =
      graceMs > 0
        ? setTimeout(() => {
            log.info({ login_grace_time_ms: graceMs }, 'closing connection not authenticated in time');
            socket.destroy();
          }, graceMs)
        : undefined;
    socket.once('close', () => clearTimeout(loginTimer));
    this.pending.set(socket, { remote, log, correlationId, loginTimer });
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
    client.once('ready', () => clearTimeout(pending.loginTimer));
    const connection = new Connection({
      client,
      socket,
      user: this.options.config.user,
      publicKeyAlgorithms: this.options.config.sshd.publicKeyAlgorithms,
      concurrentSessionsLimit: this.options.config.sshd.concurrentSessionsLimit,
      backend: this.options.backend,
      transport: this.options.transport,
      log: pending.log,
      correlationId: pending.correlationId,
      clientVersion: info.header.versions.software.slice(0, 64),
      signal: this.options.signal,
    });
    this.live.add(connection);
    void connection.closed.then(() => this.live.delete(connection));
  }

  /** Resolves when every live connection has closed. */
  async allClosed(): Promise<void> {
    await Promise.all([...this.live].map((connection) => connection.closed));
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
