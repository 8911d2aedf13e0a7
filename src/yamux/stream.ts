import { Duplex } from 'node:stream';
import { Flag, FrameType, type FrameHeader } from './frame.js';

/** yamux's fixed initial window, both ways, per stream. */
export const INITIAL_WINDOW = 256 * 1024;
/** Larger writes go out as several frames, so one stream cannot hold the socket long. */
const MAX_FRAME_DATA = 64 * 1024;

/** What a stream needs of its session. */
export interface StreamHost {
  sendFrame(header: FrameHeader, body?: Buffer): Promise<void>;
  forget(stream: YamuxStream): void;
  readonly open: boolean;
}

export class YamuxStreamReset extends Error {
  readonly code = 'ERR_YAMUX_STREAM_RESET';

  constructor(message = 'yamux stream reset by the peer') {
    super(message);
    this.name = 'YamuxStreamReset';
  }
}

/**
 * One yamux stream as a Node Duplex. Flow control both ways: writes wait for the peer's
 * window; the peer gets window back only for bytes our reader has taken, so a slow
 * reader stops the sender instead of growing our memory.
 */
export class YamuxStream extends Duplex {
  private sendWindow = INITIAL_WINDOW;
  private recvWindow = INITIAL_WINDOW;
  private pushedTotal = 0;
  private creditedTotal = 0;
  private windowWaiter: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private localClosed = false;
  private remoteClosed = false;
  private reset = false;

  constructor(
    private readonly host: StreamHost,
    readonly id: number,
  ) {
    super({ readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024, allowHalfOpen: true });
  }

  /** Data the peer sent; false if it exceeds the window it was given (a protocol error). */
  receiveData(data: Buffer): boolean {
    if (data.length > this.recvWindow) return false;
    if (this.remoteClosed || this.destroyed) return true;
    this.recvWindow -= data.length;
    this.pushedTotal += data.length;
    this.push(data);
    return true;
  }

  receiveWindow(delta: number): void {
    this.sendWindow += delta;
    if (this.sendWindow > 0 && this.windowWaiter) {
      const waiter = this.windowWaiter;
      this.windowWaiter = undefined;
      waiter.resolve();
    }
  }

  receiveFlags(flags: number): void {
    if (flags & Flag.rst) {
      this.reset = true;
      this.destroy(new YamuxStreamReset());
      return;
    }
    if (flags & Flag.fin && !this.remoteClosed) {
      this.remoteClosed = true;
      this.push(null);
      this.forgetIfDone();
    }
  }

  /** The session ended under this stream. */
  abort(err: Error): void {
    this.reset = true;
    this.destroy(err);
  }

  // Every way of consuming a Readable (read(), flowing 'data', pipe, async iteration) goes
  // through read(); _read alone is not enough, as Node stops calling it until we push.
  override read(size?: number): unknown {
    const chunk: unknown = super.read(size);
    this.credit();
    return chunk;
  }

  override _read(): void {
    this.credit();
  }

  /** Gives the peer back window for what our reader has taken. */
  private credit(): void {
    const consumed = this.pushedTotal - this.readableLength;
    const delta = consumed - this.creditedTotal;
    // As hashicorp/yamux does: update once half the window is used, not per read.
    if (delta < INITIAL_WINDOW / 2 || this.remoteClosed || !this.host.open) return;
    this.creditedTotal += delta;
    this.recvWindow += delta;
    this.host.sendFrame({ type: FrameType.windowUpdate, flags: 0, streamId: this.id, length: delta }).catch(() => undefined);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.sendAll(chunk).then(() => callback(), callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.localClosed = true;
    this.host
      .sendFrame({ type: FrameType.windowUpdate, flags: Flag.fin, streamId: this.id, length: 0 })
      .then(() => {
        this.forgetIfDone();
        callback();
      }, callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (this.windowWaiter) {
      this.windowWaiter.reject(err ?? new Error('yamux stream destroyed'));
      this.windowWaiter = undefined;
    }
    // Not closed cleanly both ways: tell the peer to drop it.
    if (!this.reset && !(this.localClosed && this.remoteClosed) && this.host.open) {
      this.host.sendFrame({ type: FrameType.windowUpdate, flags: Flag.rst, streamId: this.id, length: 0 }).catch(() => undefined);
    }
    this.host.forget(this);
    callback(err);
  }

  private async sendAll(chunk: Buffer): Promise<void> {
    let rest = chunk;
    while (rest.length > 0) {
      if (this.sendWindow === 0) {
        await new Promise<void>((resolve, reject) => {
          this.windowWaiter = { resolve, reject };
        });
      }
      const size = Math.min(rest.length, this.sendWindow, MAX_FRAME_DATA);
      this.sendWindow -= size;
      await this.host.sendFrame({ type: FrameType.data, flags: 0, streamId: this.id, length: size }, rest.subarray(0, size));
      rest = rest.subarray(size);
    }
  }

  private forgetIfDone(): void {
    if (this.localClosed && this.remoteClosed) this.host.forget(this);
  }
}
