import type { Socket } from 'node:net';
import type { Logger } from '../logging/logger.js';
import type { Metrics, ProxyHeaderResult, RejectReason } from '../monitoring/metrics.js';
import { peerOf, type ClientAddress, type Endpoint } from '../server/address.js';
import { frameProxyHeader } from './header.js';
import type { ProxyPolicyResolver } from './policy.js';
import { readProxyHeader, type ReadOutcome } from './reader.js';

export interface ProxyGateOptions {
  readonly policies: ProxyPolicyResolver;
  readonly headerTimeoutMs: number;
  /** Sockets allowed to wait for their header at once (beyond it new ones are refused). */
  readonly maxPending: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Aborted when everything still open must close now. */
  readonly signal: AbortSignal;
  /** Where a socket goes once we know who the client is. */
  readonly next: (socket: Socket, client: ClientAddress, acceptedAt: number) => void;
}

/**
 * Stands between the listener and the SSH server when PROXY protocol is on: finds out who
 * the client really is before ssh2 writes a byte, and refuses what the policy forbids.
 */
export class ProxyGate {
  private readonly options: ProxyGateOptions;
  private waiting = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(options: ProxyGateOptions) {
    this.options = options;
  }

  accept(socket: Socket): void {
    const acceptedAt = performance.now();
    const peer = peerOf(socket);
    const policy = this.options.policies.policyFor(peer.ip);
    if (policy === 'reject') {
      this.options.next(socket, peer, acceptedAt);
      this.refuseHeaderIfSent(socket, peer);
      return;
    }
    if (this.waiting >= this.options.maxPending) {
      this.refuse(socket, peer, 'max_startups', 'too many connections waiting for their PROXY header', policy);
      return;
    }
    this.waiting += 1;
    void readProxyHeader(socket, { timeoutMs: this.options.headerTimeoutMs, signal: this.options.signal }).then((outcome) => {
      this.waiting -= 1;
      this.decide(socket, peer, policy, outcome, acceptedAt);
      if (this.waiting === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    });
  }

  /** Connections accepted but still waiting for their header (the drain waits for them too). */
  get pending(): number {
    return this.waiting;
  }

  /** Resolves once no connection is waiting for its header; each has been handed on or closed. */
  idle(): Promise<void> {
    if (this.waiting === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private decide(socket: Socket, peer: Endpoint, policy: 'use' | 'require' | 'ignore', outcome: ReadOutcome, acceptedAt: number): void {
    const { metrics, log } = this.options;
    const waited = (performance.now() - acceptedAt) / 1000;
    if (outcome.kind === 'failed') {
      if (outcome.reason === 'shutdown') socket.destroy();
      else this.refuse(socket, peer, `proxy_header_${outcome.reason}`, outcome.detail, policy);
      return;
    }
    const record = (result: ProxyHeaderResult): void => {
      metrics.proxyHeaders.inc({ result });
      metrics.proxyHeaderWait.observe({ result }, waited);
    };
    if (outcome.kind === 'closed') {
      record('closed');
      log.debug({ remote_ip: peer.ip, remote_port: peer.port }, 'connection closed before any byte (load balancer health check?)');
      socket.destroy();
      return;
    }
    if (outcome.kind === 'absent') {
      if (policy === 'require') {
        const detail = outcome.silent ? `nothing received within ${this.options.headerTimeoutMs} ms` : 'the client spoke first without a header';
        this.refuse(socket, peer, 'proxy_header_missing', detail, policy);
        return;
      }
      record('absent');
      this.options.next(socket, peer, acceptedAt);
      return;
    }
    const { header } = outcome;
    if (policy === 'ignore') {
      record('ignored');
      this.options.next(socket, peer, acceptedAt);
      return;
    }
    if (header.kind === 'local') {
      record('local');
      this.options.next(socket, peer, acceptedAt);
      return;
    }
    record(header.version === 1 ? 'v1' : 'v2');
    this.options.next(socket, { ...header.source, via: peer }, acceptedAt);
  }

  /**
   * Policy `reject` waits for nothing, so a client that waits for our banner pays no
   * delay; a header, if one comes, is caught in the first bytes. This runs after ssh2 took
   * the socket: ssh2 has paused it by then (its listener comes after its crypto set-up), so
   * ours is first in line and adding it does not start the flow early.
   */
  private refuseHeaderIfSent(socket: Socket, peer: Endpoint): void {
    if (socket.destroyed) return;
    socket.prependOnceListener('data', (chunk: Buffer) => {
      if (frameProxyHeader(chunk).state === 'absent') {
        this.options.metrics.proxyHeaders.inc({ result: 'absent' });
        this.options.metrics.proxyHeaderWait.observe({ result: 'absent' }, 0);
        return;
      }
      this.refuse(socket, peer, 'proxy_header_not_allowed', 'PROXY header from a source that may not send one', 'reject');
    });
  }

  private refuse(socket: Socket, peer: Endpoint, reason: RejectReason, detail: string, policy: string): void {
    this.options.metrics.connectionsRejected.inc({ reason });
    this.options.log.warn({ remote_ip: peer.ip, remote_port: peer.port, reason, detail, proxy_policy: policy }, 'connection refused: PROXY protocol');
    socket.destroy();
  }
}
