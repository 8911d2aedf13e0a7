import { setImmediate as nextTurn } from 'node:timers/promises';
import { addAbortSignal, type Readable } from 'node:stream';

/**
 * A chunk this small is most likely the first part of a write still coming: git writes
 * each side-band packet's 5-byte header and its data with two system calls, and
 * reading between them made an SSH packet (and a socket write) of the header alone.
 */
const SMALL_CHUNK = 64;

/**
 * Copies `from` chunk by chunk into `send`, waiting for each to be taken (so the peer's
 * backpressure reaches the producer), and resolves once the last one was. A small chunk
 * waits one turn of the event loop for what follows it (docs/benchmarks-datapath.md).
 */
export async function forward(from: Readable, send: (chunk: Buffer) => Promise<void>, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  // Also stop while the source is quiet, not only while a write waits.
  addAbortSignal(signal, from);
  try {
    for await (const read of from) {
      let chunk = typeof read === 'string' ? Buffer.from(read) : (read as Buffer);
      if (chunk.length < SMALL_CHUNK) {
        // One turn of the event loop lets the rest of the write arrive; what did goes with it.
        await nextTurn();
        const more = from.read() as Buffer | null;
        if (more !== null) chunk = Buffer.concat([chunk, more]);
      }
      await send(chunk);
    }
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw err;
  }
}
