import { setMaxListeners } from 'node:events';
import type { Socket } from 'node:net';
import type { Connection as Ssh2Connection, Session as Ssh2Session } from 'ssh2';
import type { AccessBackend } from '../backends/backend.js';
import type { GitTransport } from '../git/transport.js';
import type { Logger } from '../logging/logger.js';
import { LogThrottle } from '../logging/throttle.js';
import { authMethodLabel } from '../monitoring/labels.js';
import type { DropReason, Metrics } from '../monitoring/metrics.js';
import { PublicKeyAuth, type AuthOutcome } from './auth.js';
import { rejectChannel } from './channelOpen.js';
import type { PhaseTracker } from './phase.js';
import { refuseSession } from './refusedSession.js';
import { Session, type SessionRecord } from './session.js';
import type { Held, UserLimit, UserLimits } from './userLimits.js';

/** Sessions kept for the summary line of a long multiplexed connection; the rest are counted. */
const MAX_RECORDS = 50;
/** How long a connection told to close may take before its socket is destroyed. */
const CLOSE_TIMEOUT_MS = 2000;
/**
 * When the drain begins, a connection with no session is closed once it has stayed idle
 * this long: a client that has just authenticated is about to open its session.
 */
const DRAIN_IDLE_MS = 1000;
/**
 * At the end of the grace period: how long a cut session has to deliver its notice and
 * have its channel close acknowledged, then how long the connection's close may take, so
 * that the process exits within a second of the deadline.
 */
const NOTICE_TIMEOUT_MS = 400;
const SHUTDOWN_CLOSE_TIMEOUT_MS = 500;
/** Lines of one kind (a refused request repeated) one connection may log per second. */
const LOG_LINES_PER_SECOND = 10;
const SHUTDOWN_NOTICE = 'git-sshd: the server is shutting down and closed this session; please retry.\n';
/**
 * Also sent as the SSH disconnect message, which needs no channel window: a slow client
 * whose window is full of pack data never gets the stderr notice, but OpenSSH prints this
 * ("Received disconnect from HOST port N:11: ...") as soon as it arrives.
 */
const SHUTDOWN_DISCONNECT = 'git-sshd: the server is shutting down; please retry';
/**
 * A key the backend could not look up (GitLab's API down, or refusing our secret): the
 * connection ends with this rather than "Permission denied", which would have the user
 * doubt a key that is fine. OpenSSH prints a disconnect message even at LogLevel ERROR.
 */
const BACKEND_DISCONNECT = 'git-sshd: your key could not be checked: the server\'s access backend (GitLab\'s internal API) is unreachable or failing; please try again later or contact your administrator';

export interface ConnectionOptions {
  readonly client: Ssh2Connection;
  readonly socket: Socket;
  readonly user: string;
  readonly publicKeyAlgorithms: readonly string[];
  readonly minRsaKeyBits: number;
  readonly concurrentSessionsLimit: number;
  readonly maxAuthTries: number;
  /** Per-user caps on connections and sessions, shared by all connections. */
  readonly userLimits: UserLimits;
  /** 0 = sessions are never closed for being idle. */
  readonly sessionIdleTimeoutMs: number;
  readonly backend: AccessBackend;
  readonly transport: GitTransport;
  /** Child logger carrying the correlation id and client address. */
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly phase: PhaseTracker;
  /** When the socket was accepted (performance.now()). */
  readonly acceptedAt: number;
  readonly correlationId: string;
  /** The client's address as reported (the PROXY header's when there is one). */
  readonly clientIp: string;
  readonly clientVersion: string;
  /** Called once when the connection starts closing. */
  readonly onStopping?: () => void;
  /** Aborted when the server stops: running sessions are cut and the connection closed. */
  readonly signal: AbortSignal;
  /** Aborted when the drain begins: the connection closes once it has nothing running. */
  readonly drainSignal: AbortSignal;
}

/**
 * One authenticated-or-not SSH connection: authentication, the channel loop with its
 * session limit, and the one summary line logged when it ends.
 */
export class Connection {
  private readonly options: ConnectionOptions;
  private readonly abort = new AbortController();
  private readonly auth: PublicKeyAuth;
  private readonly sessions = new Map<Session, Promise<SessionRecord | undefined>>();
  private readonly records: SessionRecord[] = [];
  private recordsDropped = 0;
  private lastAuthOutcome: AuthOutcome | undefined;
  private authFailures = 0;
  private reachedAuthentication = false;
  private serverError = false;
  private readonly startedAt = performance.now();
  private negotiated: Record<string, string> = {};
  private closeReason: string | undefined;
  private stopping = false;
  private sessionsCut = 0;
  private cutting = false;
  /** This connection's place under the per-user connection cap; none when over it. */
  private userConnection: Held | undefined;
  private readonly throttle = new LogThrottle({ perWindow: LOG_LINES_PER_SECOND, windowMs: 1000 });
  readonly closed: Promise<void>;

  constructor(options: ConnectionOptions) {
    this.options = options;
    // One listener per session: concurrent_sessions_limit may well be above node's default of 10.
    setMaxListeners(0, this.abort.signal);
    const { client, log, metrics } = options;
    this.auth = new PublicKeyAuth({ user: options.user, allowedAlgorithms: options.publicKeyAlgorithms, minRsaKeyBits: options.minRsaKeyBits, metrics, backend: options.backend, log, context: { signal: this.abort.signal, correlationId: options.correlationId, clientIp: options.clientIp } });
    const onStop = (): void => void this.cutAndStop();
    const onDrain = (): void => this.leaveWhenIdle(DRAIN_IDLE_MS);
    options.signal.addEventListener('abort', onStop, { once: true });
    options.drainSignal.addEventListener('abort', onDrain, { once: true });

    this.closed = new Promise((resolve) => {
      client.on('close', () => {
        options.signal.removeEventListener('abort', onStop);
        options.drainSignal.removeEventListener('abort', onDrain);
        this.abort.abort(new Error('connection closed'));
        this.userConnection?.release();
        void Promise.allSettled(this.sessions.values()).then(() => {
          if (this.serverError) metrics.sliConnectionErrors.inc();
          this.throttle.flush();
          this.logSummary();
          resolve();
        });
      });
    });

    // ssh2 answers a keepalive timeout or a protocol error by only half-closing the socket;
    // a peer that stops reading would keep everything open. stop() also destroys it.
    client.on('error', (err: Error & { level?: string }) => {
      log.debug({ err: { message: err.message, level: err.level } }, 'connection error');
      if (err.level === 'client-timeout') {
        log.info({ client_alive_count_max: 'exceeded' }, 'client stopped answering keepalives; closing the connection');
        this.drop('keepalive_timeout', 'keepalive timeout');
      } else {
        this.stop(err.message);
      }
    });
    client.on('end', () => this.stop('client ended the connection'));
    client.on('handshake', (negotiated) => {
      // ssh2 emits this on every rekey too; a connection is counted once.
      const first = Object.keys(this.negotiated).length === 0;
      this.negotiated = {
        kex: negotiated.kex,
        host_key: negotiated.serverHostKey,
        cipher: negotiated.cs.cipher,
        // AEAD ciphers (AES-GCM, chacha20-poly1305) have no separate MAC: ssh2 reports "".
        mac: negotiated.cs.mac || 'implicit',
      };
      if (first) {
        for (const [kind, algorithm] of Object.entries(this.negotiated)) metrics.negotiatedAlgorithms.inc({ kind, algorithm });
      }
      log.debug(this.negotiated, 'handshake done');
    });
    client.on('authentication', (ctx) => {
      if (!this.reachedAuthentication) {
        this.reachedAuthentication = true;
        metrics.sliConnections.inc();
      }
      if (this.abort.signal.aborted) {
        ctx.reject();
        return;
      }
      this.auth.handle(ctx).then(
        (outcome) => {
          this.lastAuthOutcome = outcome;
          metrics.authAttempts.inc({ method: authMethodLabel(ctx.method), outcome });
          log.debug({ method: ctx.method, outcome }, 'authentication attempt');
          if (outcome === 'backend_error') {
            this.serverError = true;
            this.drop('backend_error', 'key lookup failed', CLOSE_TIMEOUT_MS, `${BACKEND_DISCONNECT} (correlation id ${options.correlationId})`);
            return;
          }
          // Clients open with method "none" to learn the methods; that is not a failure.
          const failed = outcome !== 'accepted' && outcome !== 'key_acceptable';
          if (failed && ctx.method !== 'none') {
            this.authFailures += 1;
            if (this.authFailures >= options.maxAuthTries) this.drop('max_auth_tries', 'too many authentication failures');
          }
        },
        (err: unknown) => {
          log.error({ err }, 'authentication failed unexpectedly');
          this.serverError = true;
          metrics.authAttempts.inc({ method: authMethodLabel(ctx.method), outcome: 'internal_error' });
          ctx.reject();
        },
      );
    });
    client.on('ready', () => {
      const identity = this.auth.identity;
      metrics.sessionEstablishedDuration.observe((performance.now() - options.acceptedAt) / 1000);
      options.phase.move('idle');
      log.info({ user: identity?.username, key_fingerprint: identity?.keyFingerprint }, 'authenticated');
      if (identity) this.userConnection = options.userLimits.acquire('connections', identity.username);
      // Authenticated during the drain: it may run what it came for, then it leaves.
      if (options.drainSignal.aborted) this.leaveWhenIdle(DRAIN_IDLE_MS);
    });
    client.on('session', (accept, reject) => this.openSession(accept, reject));
    // The server may have begun stopping while this client was still sending its banner.
    if (options.signal.aborted) this.stop('server stopping');
    client.on('tcpip', (_accept, reject, info) => {
      this.throttle.info(log, 'tcpip', { dest: `${info.destIP}:${info.destPort}` }, 'refused port forwarding');
      reject();
    });
    client.on('openssh.streamlocal', (_accept, reject) => {
      this.throttle.info(log, 'streamlocal', {}, 'refused unix socket forwarding');
      reject();
    });
    client.on('request', (_accept, reject, name) => {
      this.throttle.info(log, 'request', { request: name }, 'refused global request');
      reject?.();
    });
  }

  /** How long this connection has been open, in milliseconds. */
  get ageMs(): number {
    return performance.now() - this.options.acceptedAt;
  }

  private openSession(accept: () => Ssh2Session, reject: () => void): void {
    const { metrics, log, client } = this.options;
    const identity = this.auth.identity;
    // While the cut runs, a new session would be killed unannounced: refuse it instead.
    if (!identity || this.abort.signal.aborted || this.cutting) return reject();
    if (this.sessions.size >= this.options.concurrentSessionsLimit) {
      this.throttle.warn(log, 'sessions', { limit: this.options.concurrentSessionsLimit }, 'too many concurrent sessions');
      metrics.concurrentLimitedSessions.inc();
      rejectChannel(client, reject, 'resource_shortage', 'too many concurrent sessions');
      return;
    }
    const userSession = this.userSession(identity.username);
    if (typeof userSession === 'string') {
      void refuseSession(accept(), userSession, log);
      return;
    }
    const openedAt = performance.now();
    metrics.sliSessions.inc();
    const session = new Session({
      session: accept(),
      socket: this.options.socket,
      identity,
      backend: this.options.backend,
      transport: this.options.transport,
      log,
      metrics,
      signal: this.abort.signal,
      correlationId: this.options.correlationId,
      clientIp: this.options.clientIp,
      onViolation: (reason) => this.drop('protocol_violation', reason),
      idleTimeoutMs: this.options.sessionIdleTimeoutMs,
    });
    const done = session.done.then((record) => {
      userSession.release();
      this.sessions.delete(session);
      metrics.sessionDuration.observe((performance.now() - openedAt) / 1000);
      if (record && this.records.length < MAX_RECORDS) this.records.push(record);
      else if (record) this.recordsDropped += 1;
      if (this.sessions.size === 0) {
        this.options.phase.move('idle');
        if (this.options.drainSignal.aborted && !this.cutting) this.stop('server draining');
      }
      return record;
    });
    this.sessions.set(session, done);
    this.options.phase.move('active');
  }

  /**
   * A place under the user's caps for one more session; when this connection is over the
   * user's connection cap, or the user runs as many sessions as allowed, the refusal is
   * counted and logged, and what is returned is the message that tells the user why.
   */
  private userSession(user: string): Held | string {
    const { userLimits, metrics, log } = this.options;
    const limit: UserLimit | undefined = this.userConnection === undefined ? 'connections' : undefined;
    const held = limit ? undefined : userLimits.acquire('sessions', user);
    if (held) return held;
    const refused: UserLimit = limit ?? 'sessions';
    const max = userLimits.limitOf(refused);
    metrics.userLimitRefusals.inc({ limit: refused });
    log.warn({ user, limit: refused, max }, 'user limit reached; session refused');
    return `git-sshd: ${user} already has ${max} ${refused === 'connections' ? 'connections' : 'sessions running'} open (the most one user may have at once); close some or wait for them to finish, then retry.`;
  }

  /**
   * The drain has begun: a connection with nothing running leaves once it has stayed idle
   * for `idleMs` (a client that just authenticated gets to open its session); one with
   * sessions leaves when the last ends.
   */
  private leaveWhenIdle(idleMs: number): void {
    if (this.stopping || !this.auth.identity) return;
    const check = (): void => {
      if (this.sessions.size === 0) this.stop('server draining');
    };
    if (this.sessions.size === 0) setTimeout(check, idleMs).unref();
  }

  /** The grace period is over: each running session gets a notice on stderr, then the connection closes. */
  private async cutAndStop(): Promise<void> {
    if (this.stopping) return;
    this.cutting = true;
    const running = [...this.sessions.keys()].map((session) => session.cut(SHUTDOWN_NOTICE, NOTICE_TIMEOUT_MS));
    const cut = (await Promise.all(running)).filter(Boolean).length;
    if (cut > 0) {
      this.sessionsCut = cut;
      this.options.metrics.sessionsCutAtShutdown.inc(cut);
      this.options.log.warn({ sessions: cut }, 'grace period over: sessions cut');
      this.drop('shutdown', 'server stopping: grace period over', SHUTDOWN_CLOSE_TIMEOUT_MS, SHUTDOWN_DISCONNECT);
    } else {
      this.stop('server stopping', SHUTDOWN_CLOSE_TIMEOUT_MS);
    }
  }

  /** Closes the connection for a reason the server chose, counted by reason. */
  private drop(reason: DropReason, detail: string, closeTimeoutMs = CLOSE_TIMEOUT_MS, toClient?: string): void {
    if (this.stopping) return;
    this.options.metrics.connectionsDropped.inc({ reason });
    // A client that broke the protocol (one flooding past its window) gets nothing more read:
    // TCP's own window then holds it back, instead of this process decrypting and dropping
    // whatever it sends until the connection is gone.
    if (reason === 'protocol_violation') this.options.socket.pause();
    this.stop(detail, closeTimeoutMs, toClient);
  }

  /**
   * Ends the connection now: sessions are aborted, their git processes ended. `toClient`
   * goes in the SSH disconnect message (ssh2 patched in patches/ to carry one).
   */
  stop(reason: string, closeTimeoutMs = CLOSE_TIMEOUT_MS, toClient?: string): void {
    if (this.stopping) return;
    this.stopping = true;
    this.options.onStopping?.();
    this.closeReason ??= reason;
    this.abort.abort(new Error(reason));
    (this.options.client.end as (description?: string) => void).call(this.options.client, toClient);
    // end() only half-closes: a peer that never closes its side must not hold us open.
    setTimeout(() => this.options.socket.destroy(), closeTimeoutMs).unref();
  }

  private logSummary(): void {
    const identity = this.auth.identity;
    const { socket } = this.options;
    this.options.log.info(
      {
        user: identity?.username,
        key_fingerprint: identity?.keyFingerprint,
        client_version: this.options.clientVersion,
        ...this.negotiated,
        auth: identity ? 'success' : (this.lastAuthOutcome ?? 'none'),
        ...(this.authFailures > 0 ? { auth_failures: this.authFailures } : {}),
        sessions: this.records.map((record) => ({
          command: record.command,
          repo: record.repo,
          exit_status: record.exitStatus,
          bytes_in: record.bytesIn,
          bytes_out: record.bytesOut,
          duration_ms: record.durationMs,
          ...(record.error ? { error: record.error } : {}),
        })),
        ...(this.recordsDropped > 0 ? { sessions_not_listed: this.recordsDropped } : {}),
        ...(this.sessionsCut > 0 ? { sessions_cut: this.sessionsCut } : {}),
        bytes_in: socket.bytesRead,
        bytes_out: socket.bytesWritten,
        duration_ms: Math.round(performance.now() - this.startedAt),
        ...(this.closeReason ? { close_reason: this.closeReason } : {}),
      },
      'connection closed',
    );
  }
}
