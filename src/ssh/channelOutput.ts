import type { Socket } from 'node:net';
import type { ServerChannel } from 'ssh2';
import type { CommandOutput, OutputStream } from '../io/output.js';

/** How much encrypted data may wait in the socket for a client that has stopped reading. */
const SOCKET_HIGH_WATER = 1024 * 1024;

/** The resend state ssh2 1.17 keeps on a channel for writes that waited for window space. */
interface ResendState {
  _waitWindow?: boolean;
  _chunk?: Buffer;
  _chunkcb?: unknown;
  _chunkErr?: Buffer;
  _chunkcbErr?: unknown;
}

/**
 * The only way output reaches a session channel: stdout and stderr writes are serialized,
 * each resolving once ssh2 has sent it within the client's window, so that when the last
 * one resolves nothing is left to arrive after `exit-status`.
 *
 * Two ssh2 gaps are closed here. ssh2 never clears a write it resent after a window
 * adjust, so once stdout had to wait, a later stderr write that waits makes it send the
 * old stdout bytes again (a corrupt pack); with one write in flight and that state
 * cleared after each, this cannot happen. And ssh2 writes to the socket whatever the
 * client's window allows, however much the socket has queued; we wait for the socket to
 * drain so that a client that stops reading TCP cannot grow our memory.
 */
export class ChannelOutput implements CommandOutput {
  private tail: Promise<void> = Promise.resolve();
  private sent = 0;
  /** Rejects the write in flight: one abort listener for the session, not one per chunk. */
  private rejectWrite: ((reason: unknown) => void) | undefined;

  constructor(
    private readonly channel: ServerChannel,
    private readonly socket: Socket,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', () => this.rejectWrite?.(signal.reason), { once: true });
  }

  get bytes(): number {
    return this.sent;
  }

  write(stream: OutputStream, chunk: Buffer): Promise<void> {
    const next = this.tail.then(() => this.send(stream, chunk));
    this.tail = next.catch(() => undefined);
    return next;
  }

  private async send(stream: OutputStream, chunk: Buffer): Promise<void> {
    this.signal.throwIfAborted();
    if (this.socket.writableLength > SOCKET_HIGH_WATER) await this.socketDrained();
    const target = stream === 'stdout' ? this.channel : this.channel.stderr;
    await new Promise<void>((resolve, reject) => {
      this.rejectWrite = reject;
      target.write(chunk, (err) => {
        this.rejectWrite = undefined;
        if (err) reject(err);
        else resolve();
      });
    });
    this.sent += chunk.length;
    const state = this.channel as unknown as ResendState;
    if (!state._waitWindow) {
      state._chunk = undefined;
      state._chunkcb = undefined;
      state._chunkErr = undefined;
      state._chunkcbErr = undefined;
    }
  }

  private socketDrained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        this.signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        reject(this.signal.reason);
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
      this.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
