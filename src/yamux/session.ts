import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { decodeHeader, encodeHeader, Flag, FrameType, GoAway, HEADER_SIZE, YamuxProtocolError, type FrameHeader } from './frame.js';
import { YamuxStream, type StreamHost } from './stream.js';

export interface YamuxSessionOptions {
  /** Ping the peer this often and close the session if a ping is not answered in time; 0 = off. */
  readonly keepAliveMs?: number;
  readonly pingTimeoutMs?: number;
}

export class YamuxSessionClosed extends Error {
  readonly code = 'ERR_YAMUX_SESSION_CLOSED';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'YamuxSessionClosed';
  }
}

/**
 * The client side of a hashicorp/yamux session over one connection (odd stream ids are
 * ours, even ones the server's). Emits `stream` for streams the server opens, `close`
 * (with the error, if any) once the connection is gone.
 */
export class YamuxSession extends EventEmitter<{ stream: [YamuxStream]; close: [Error | undefined] }> implements StreamHost {
  private readonly streams = new Map<number, YamuxStream>();
  private nextId = 1;
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private closedWith: Error | undefined | null = null;
  private goneAway = false;
  private pingId = 0;
  private readonly pings = new Map<number, () => void>();
  private readonly keepAlive: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Duplex,
    private readonly options: YamuxSessionOptions = {},
  ) {
    super();
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => this.terminate(err));
    socket.on('close', () => this.terminate(new YamuxSessionClosed('yamux connection closed')));
    socket.on('end', () => this.terminate(new YamuxSessionClosed('yamux connection ended by the peer')));
    if (options.keepAliveMs) {
      this.keepAlive = setInterval(() => {
        this.ping(options.pingTimeoutMs ?? 10_000).catch((err: unknown) => this.terminate(new YamuxSessionClosed('yamux keep-alive ping not answered', { cause: err })));
      }, options.keepAliveMs).unref();
    }
  }

  get open(): boolean {
    return this.closedWith === null;
  }

  /** Whether new streams may be opened (the session is open and the peer did not go away). */
  get usable(): boolean {
    return this.open && !this.goneAway;
  }

  openStream(): YamuxStream {
    if (!this.open) throw new YamuxSessionClosed('yamux session is closed', { cause: this.closedWith });
    if (this.goneAway) throw new YamuxSessionClosed('the yamux peer went away');
    const stream = new YamuxStream(this, this.nextId);
    this.nextId += 2;
    this.streams.set(stream.id, stream);
    this.sendFrame({ type: FrameType.windowUpdate, flags: Flag.syn, streamId: stream.id, length: 0 }).catch((err: unknown) => stream.abort(err as Error));
    return stream;
  }

  /** Round trip of a ping, in milliseconds. */
  async ping(timeoutMs: number): Promise<number> {
    const id = (this.pingId = (this.pingId + 1) >>> 0);
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(id);
        reject(new YamuxSessionClosed('yamux ping timed out'));
      }, timeoutMs);
      this.pings.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
      this.sendFrame({ type: FrameType.ping, flags: Flag.syn, streamId: 0, length: id }).catch((err: unknown) => {
        clearTimeout(timer);
        this.pings.delete(id);
        reject(err as Error);
      });
    });
    return performance.now() - started;
  }

  /** Tells the peer we are going away, then closes the connection and every stream. */
  close(): void {
    if (!this.open) return;
    this.socket.end(encodeHeader({ type: FrameType.goAway, flags: 0, streamId: 0, length: GoAway.normal }));
    // A peer that never closes its side must not keep the socket.
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.terminate(undefined);
  }

  /** Writes a frame; resolves once the connection can take more (its own backpressure). */
  sendFrame(header: FrameHeader, body?: Buffer): Promise<void> {
    if (!this.open) return Promise.reject(new YamuxSessionClosed('yamux session is closed', { cause: this.closedWith }));
    const frame = body ? Buffer.concat([encodeHeader(header), body]) : encodeHeader(header);
    if (this.socket.write(frame)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.off('close', gone);
        resolve();
      };
      const gone = (err: Error | undefined): void => {
        this.socket.off('drain', done);
        reject(err ?? new YamuxSessionClosed('yamux session closed'));
      };
      this.socket.on('drain', done);
      this.once('close', gone);
    });
  }

  forget(stream: YamuxStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
  }

  private receive(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingLength += chunk.length;
    try {
      while (this.open && this.pendingLength >= HEADER_SIZE) {
        const head = this.peek(HEADER_SIZE);
        const header = decodeHeader(head, 0);
        const bodyLength = header.type === FrameType.data ? header.length : 0;
        if (this.pendingLength < HEADER_SIZE + bodyLength) return;
        this.take(HEADER_SIZE);
        const body = bodyLength > 0 ? this.take(bodyLength) : undefined;
        this.dispatch(header, body);
      }
    } catch (err) {
      this.fail(err instanceof YamuxProtocolError ? err : new YamuxProtocolError(String(err)));
    }
  }

  private dispatch(header: FrameHeader, body: Buffer | undefined): void {
    switch (header.type) {
      case FrameType.ping:
        if (header.flags & Flag.syn) {
          this.sendFrame({ type: FrameType.ping, flags: Flag.ack, streamId: 0, length: header.length }).catch(() => undefined);
        } else if (header.flags & Flag.ack) {
          this.pings.get(header.length)?.();
          this.pings.delete(header.length);
        }
        return;
      case FrameType.goAway:
        this.goneAway = true;
        return;
      default:
        break;
    }
    let stream = this.streams.get(header.streamId);
    if (!stream && header.flags & Flag.syn) {
      if (header.streamId % 2 === 1 || header.streamId === 0) throw new YamuxProtocolError(`the peer opened stream ${header.streamId}, which is ours to number`);
      stream = new YamuxStream(this, header.streamId);
      this.streams.set(stream.id, stream);
      this.sendFrame({ type: FrameType.windowUpdate, flags: Flag.ack, streamId: stream.id, length: 0 }).catch(() => undefined);
      this.emit('stream', stream);
    }
    // Frames for a stream we already dropped (reset, or closed both ways) are discarded.
    if (!stream) return;
    if (header.type === FrameType.windowUpdate) stream.receiveWindow(header.length);
    if (body && !stream.receiveData(body)) throw new YamuxProtocolError(`stream ${stream.id} received more than its window`);
    if (header.flags & (Flag.fin | Flag.rst)) stream.receiveFlags(header.flags);
  }

  private peek(size: number): Buffer {
    if (this.pending[0]!.length < size) this.pending = [Buffer.concat(this.pending)];
    return this.pending[0]!;
  }

  private take(size: number): Buffer {
    const first = this.peek(size);
    const taken = first.subarray(0, size);
    if (first.length === size) this.pending.shift();
    else this.pending[0] = first.subarray(size);
    this.pendingLength -= size;
    return taken;
  }

  private fail(err: Error): void {
    if (this.open) this.socket.write(encodeHeader({ type: FrameType.goAway, flags: 0, streamId: 0, length: GoAway.protocolError }));
    this.socket.destroy();
    this.terminate(err);
  }

  private terminate(err: Error | undefined): void {
    if (!this.open) return;
    this.closedWith = err;
    clearInterval(this.keepAlive);
    const reason = err ?? new YamuxSessionClosed('yamux session closed');
    for (const stream of [...this.streams.values()]) stream.abort(reason);
    this.streams.clear();
    if (err && !this.socket.destroyed) this.socket.destroy();
    this.emit('close', err);
  }
}
