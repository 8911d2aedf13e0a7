import type { OnReadOpts, Socket } from 'node:net';
import { SMALL_CHUNK } from './forward.js';

/** Below this much room left in a buffer, a small read is handed out as it is rather than gathered on. */
const MIN_ROOM = 4096;
/**
 * How long a small read waits for what follows it. git writes a side-band packet's data
 * right after its header, so that usually arrives within microseconds and ends the wait;
 * the time runs out only where nothing follows (a flush packet, the end of a response).
 */
const GATHER_MS = 1;

/** The error a consumer sees when the socket was closed before its end (as `stream.finished` names it). */
function prematureClose(): Error {
  return Object.assign(new Error('output closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/**
 * A socket's incoming data as chunks read into two buffers that are used again and again,
 * where a stream would allocate a fresh one per read (garbage that kept Node's collector
 * busy for a fifth to a third of a clone's CPU: docs/benchmarks-datapath.md).
 *
 * A chunk stays valid until the consumer asks for the next one: the socket does not read
 * while the consumer holds a chunk (so backpressure reaches the writer as with a pipe), and
 * a read never lands in the buffer region handed out. That region stays untouched even if
 * the consumer never asks again (it gave up while a write still referenced the chunk) and
 * `drain()` reads on: the next read then always goes to the other buffer, or past the chunk.
 *
 * A read below SMALL_CHUNK bytes waits up to GATHER_MS for what follows it and goes out
 * with it (git writes a side-band header apart from its data): waiting one turn of the
 * event loop, as `forward` does for streams, let half of all chunks in a clone go out as
 * a 5-byte header alone.
 */
export class ReusedBufferReader {
  readonly onread: OnReadOpts;
  private readonly buffers: readonly [Buffer, Buffer];
  /** Where the next read lands: this buffer, from this offset (what Node was last given). */
  private landing: 0 | 1 = 0;
  private landingOffset = 0;
  /** Bytes [collectStart, landingOffset) of the landing buffer were read and not handed out yet. */
  private collectStart = 0;
  /** A chunk ready for the consumer. */
  private ready: Buffer | undefined;
  /** The buffer holding the chunk the consumer has, or -1. */
  private held: 0 | 1 | -1 = -1;
  private gathering: NodeJS.Timeout | undefined;
  private discarding = false;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private socket: Socket | undefined;

  constructor(bufferSize: number) {
    if (bufferSize < 2 * MIN_ROOM) throw new RangeError(`buffer size ${bufferSize} is below ${2 * MIN_ROOM}`);
    this.buffers = [Buffer.allocUnsafeSlow(bufferSize), Buffer.allocUnsafeSlow(bufferSize)];
    this.onread = { buffer: () => this.nextLanding(), callback: (nread) => this.onRead(nread) };
  }

  /** Starts taking `socket`'s events; it must have been made with this reader's `onread`. */
  attach(socket: Socket): void {
    this.socket = socket;
    socket.on('end', () => {
      this.ended = true;
      this.collect();
      this.notify();
    });
    socket.on('error', (err: Error) => {
      this.failure ??= err;
      this.notify();
    });
    socket.on('close', () => {
      if (!this.ended) this.failure ??= prematureClose();
      this.notify();
    });
  }

  /**
   * The chunks until the socket's end. Each is valid until the next is asked for; a
   * consumer that stops early leaves its last chunk untouched for good.
   */
  async *chunks(signal: AbortSignal): AsyncGenerator<Buffer> {
    const onAbort = (): void => this.notify();
    signal.addEventListener('abort', onAbort);
    try {
      for (;;) {
        signal.throwIfAborted();
        if (this.failure) throw this.failure;
        const chunk = this.ready;
        if (chunk !== undefined && !this.discarding) {
          this.ready = undefined;
          this.held = chunk.buffer === this.buffers[0].buffer ? 0 : 1;
          yield chunk;
          // Asked for the next: the consumer is done with this one.
          this.held = -1;
          if (!this.ended) this.socket?.resume();
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** From now on reads are dropped: for a writer that must not die of a closed socket. Ends `chunks` at the socket's end. */
  drain(): void {
    if (this.discarding) return;
    this.discarding = true;
    this.ready = undefined;
    clearTimeout(this.gathering);
    this.socket?.resume();
    this.notify();
  }

  destroy(): void {
    clearTimeout(this.gathering);
    this.socket?.destroy();
  }

  private nextLanding(): Buffer {
    const buffer = this.buffers[this.landing];
    return this.landingOffset === 0 ? buffer : buffer.subarray(this.landingOffset);
  }

  /** Returns whether to read on (false stops reading until the consumer asks for more). */
  private onRead(nread: number): boolean {
    this.landingOffset += nread;
    if (this.discarding) {
      // Never where a chunk the consumer had may still be referenced.
      this.landing = this.held === 0 ? 1 : 0;
      this.landingOffset = 0;
      this.collectStart = 0;
      return true;
    }
    const collected = this.landingOffset - this.collectStart;
    const room = this.buffers[this.landing].length - this.landingOffset;
    if (collected < SMALL_CHUNK && room >= MIN_ROOM) {
      this.gathering ??= setTimeout(() => this.endGathering(), GATHER_MS);
      return true;
    }
    this.collect();
    // Nothing is held while reading, so the other buffer is free for the read after this chunk.
    this.landing = this.landing === 0 ? 1 : 0;
    this.landingOffset = 0;
    this.collectStart = 0;
    this.notify();
    return false;
  }

  /** Nothing followed a small read in time: what was gathered goes out. */
  private endGathering(): void {
    this.gathering = undefined;
    if (this.discarding || this.landingOffset === this.collectStart) return;
    // The next read lands past this chunk, in the same buffer, once the consumer asks for more.
    this.socket?.pause();
    this.collect();
    this.notify();
  }

  /** Makes what was read and not handed out the ready chunk. */
  private collect(): void {
    clearTimeout(this.gathering);
    this.gathering = undefined;
    if (this.landingOffset === this.collectStart) return;
    this.ready = this.buffers[this.landing].subarray(this.collectStart, this.landingOffset);
    this.collectStart = this.landingOffset;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
