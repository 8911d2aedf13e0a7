import type { Socket } from 'node:net';
import { frameProxyHeader, type InvalidReason, type ProxyHeader } from './header.js';

export type ReadFailure = InvalidReason | 'timeout' | 'truncated' | 'shutdown';

export type ReadOutcome =
  | { readonly kind: 'header'; readonly header: ProxyHeader }
  /** No header: the first bytes were something else, or nothing came within the timeout. */
  | { readonly kind: 'absent'; readonly silent: boolean }
  /** The peer closed the connection without sending a byte (a load balancer's TCP health check). */
  | { readonly kind: 'closed' }
  | { readonly kind: 'failed'; readonly reason: ReadFailure; readonly detail: string };

export interface ReadOptions {
  /** How long the whole header may take, and how long a silent client is waited for. */
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/**
 * Reads a PROXY header, if there is one, off the front of a fresh socket. Resolves once
 * it is known; the socket is then paused with every byte after the header put back, so
 * that ssh2 reads exactly what the client sent.
 */
export function readProxyHeader(socket: Socket, options: ReadOptions): Promise<ReadOutcome> {
  return new Promise((resolve) => {
    let buffered: Buffer = Buffer.alloc(0);
    let done = false;

    const finish = (outcome: ReadOutcome, rest?: Buffer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
      // Paused before the listener goes: a flowing socket with no listener drops its data.
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      if (rest && rest.length > 0) socket.unshift(rest);
      resolve(outcome);
    };

    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const frame = frameProxyHeader(buffered);
      switch (frame.state) {
        case 'incomplete':
          return;
        case 'absent':
          finish({ kind: 'absent', silent: false }, buffered);
          return;
        case 'header':
          finish({ kind: 'header', header: frame.header }, buffered.subarray(frame.length));
          return;
        case 'invalid':
          finish({ kind: 'failed', reason: frame.reason, detail: frame.detail });
      }
    };
    const onEnd = (): void => {
      if (buffered.length === 0) finish({ kind: 'closed' });
      else finish({ kind: 'failed', reason: 'truncated', detail: `connection closed after ${buffered.length} bytes of a PROXY header` });
    };
    const onAbort = (): void => finish({ kind: 'failed', reason: 'shutdown', detail: 'the server is shutting down' });
    const timer = setTimeout(() => {
      if (buffered.length === 0) finish({ kind: 'absent', silent: true });
      else finish({ kind: 'failed', reason: 'timeout', detail: `PROXY header incomplete after ${options.timeoutMs} ms (${buffered.length} bytes)` });
    }, options.timeoutMs);

    if (options.signal.aborted) {
      onAbort();
      return;
    }
    options.signal.addEventListener('abort', onAbort, { once: true });
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}
