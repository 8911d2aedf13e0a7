import type { Socket } from 'node:net';
import type { Connection as Ssh2Connection, Session as Ssh2Session } from 'ssh2';
import type { AccessBackend } from '../backends/backend.js';
import type { GitTransport } from '../git/transport.js';
import type { Logger } from '../logging/logger.js';
import { PublicKeyAuth, type AuthOutcome } from './auth.js';
import { Session, type SessionRecord } from './session.js';

/** Failed authentication attempts before we disconnect (OpenSSH's MaxAuthTries default). */
const MAX_AUTH_FAILURES = 6;
/** Sessions kept for the summary line of a long multiplexed connection; the rest are counted. */
const MAX_RECORDS = 50;
/** How long a connection told to close may take before its socket is destroyed. */
const CLOSE_TIMEOUT_MS = 2000;

export interface ConnectionOptions {
  readonly client: Ssh2Connection;
  readonly socket: Socket;
  readonly user: string;
  readonly publicKeyAlgorithms: readonly string[];
  readonly concurrentSessionsLimit: number;
  readonly backend: AccessBackend;
  readonly transport: GitTransport;
  /** Child logger carrying the correlation id and client address. */
  readonly log: Logger;
  readonly correlationId: string;
  readonly clientVersion: string;
  /** Aborted to stop this connection and everything it runs. */
  readonly signal: AbortSignal;
}

/**
 * One authenticated-or-not SSH connection: authentication, the channel loop with its
 * session limit, and the one summary line logged when it ends.
 */
export class Connection {
  private readonly options: ConnectionOptions;
  private readonly abort = new AbortController();
  private readonly auth: PublicKeyAuth;
  private readonly sessions = new Set<Promise<SessionRecord | undefined>>();
  private readonly records: SessionRecord[] = [];
  private recordsDropped = 0;
  private lastAuthOutcome: AuthOutcome | undefined;
  private authFailures = 0;
  private readonly startedAt = performance.now();
  private negotiated: Record<string, string> = {};
  private closeReason: string | undefined;
  private stopping = false;
  readonly closed: Promise<void>;

  constructor(options: ConnectionOptions) {
    this.options = options;
    const { client, log } = options;
    this.auth = new PublicKeyAuth({ user: options.user, allowedAlgorithms: options.publicKeyAlgorithms, backend: options.backend, log, signal: this.abort.signal });
    const onStop = (): void => this.stop('server stopping');
    options.signal.addEventListener('abort', onStop, { once: true });

    this.closed = new Promise((resolve) => {
      client.on('close', () => {
        options.signal.removeEventListener('abort', onStop);
        this.abort.abort(new Error('connection closed'));
        void Promise.allSettled(this.sessions).then(() => {
          this.logSummary();
          resolve();
        });
      });
    });

    // ssh2 answers a keepalive timeout or a protocol error by only half-closing the socket;
    // a peer that stops reading would keep everything open. stop() also destroys it.
    client.on('error', (err: Error & { level?: string }) => {
      log.debug({ err: { message: err.message, level: err.level } }, 'connection error');
      this.stop(err.level === 'client-timeout' ? 'keepalive timeout' : err.message);
    });
    client.on('end', () => this.stop('client ended the connection'));
    client.on('handshake', (negotiated) => {
      this.negotiated = {
        kex: negotiated.kex,
        host_key: negotiated.serverHostKey,
        cipher: negotiated.cs.cipher,
        mac: negotiated.cs.mac,
      };
      log.debug(this.negotiated, 'handshake done');
    });
    client.on('authentication', (ctx) => {
      if (this.abort.signal.aborted) {
        ctx.reject();
        return;
      }
      this.auth.handle(ctx).then(
        (outcome) => {
          this.lastAuthOutcome = outcome;
          log.debug({ method: ctx.method, outcome }, 'authentication attempt');
          // Clients open with method "none" to learn the methods; that is not a failure.
          // Nor is our own failure to look a key up (a system error, not the user's).
          const failed = outcome !== 'accepted' && outcome !== 'key_acceptable' && outcome !== 'backend_error';
          if (failed && ctx.method !== 'none') {
            this.authFailures += 1;
            if (this.authFailures >= MAX_AUTH_FAILURES) this.stop('too many authentication failures');
          }
        },
        (err: unknown) => {
          log.error({ err }, 'authentication failed unexpectedly');
          ctx.reject();
        },
      );
    });
    client.on('ready', () => {
      const identity = this.auth.identity;
      log.info({ user: identity?.username, key_fingerprint: identity?.keyFingerprint }, 'authenticated');
    });
    client.on('session', (accept, reject) => this.openSession(accept, reject));
    // The server may have begun stopping while this client was still sending its banner.
    if (options.signal.aborted) this.stop('server stopping');
    client.on('tcpip', (_accept, reject, info) => {
      log.info({ dest: `${info.destIP}:${info.destPort}` }, 'refused port forwarding');
      reject();
    });
    client.on('openssh.streamlocal', (_accept, reject) => {
      log.info('refused unix socket forwarding');
      reject();
    });
    client.on('request', (_accept, reject, name) => {
      log.info({ request: name }, 'refused global request');
      reject?.();
    });
  }

  private openSession(accept: () => Ssh2Session, reject: () => void): void {
    const identity = this.auth.identity;
    if (!identity || this.abort.signal.aborted) return reject();
    if (this.sessions.size >= this.options.concurrentSessionsLimit) {
      this.options.log.warn({ limit: this.options.concurrentSessionsLimit }, 'too many concurrent sessions');
      return reject();
    }
    const session = new Session({
      session: accept(),
      socket: this.options.socket,
      identity,
      backend: this.options.backend,
      transport: this.options.transport,
      log: this.options.log,
      signal: this.abort.signal,
      correlationId: this.options.correlationId,
      onViolation: (reason) => this.stop(reason),
    });
    const done = session.done.then((record) => {
      this.sessions.delete(done);
      if (record && this.records.length < MAX_RECORDS) this.records.push(record);
      else if (record) this.recordsDropped += 1;
      return record;
    });
    this.sessions.add(done);
  }

  /** Ends the connection now: sessions are aborted, their git processes killed. */
  stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = true;
    this.closeReason ??= reason;
    this.abort.abort(new Error(reason));
    this.options.client.end();
    // end() only half-closes: a peer that never closes its side must not hold us open.
    setTimeout(() => this.options.socket.destroy(), CLOSE_TIMEOUT_MS).unref();
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
        bytes_in: socket.bytesRead,
        bytes_out: socket.bytesWritten,
        duration_ms: Math.round(performance.now() - this.startedAt),
        ...(this.closeReason ? { close_reason: this.closeReason } : {}),
      },
      'connection closed',
    );
  }
}
