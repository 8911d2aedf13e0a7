import { setImmediate as nextTurn } from 'node:timers/promises';
import { addAbortSignal, Readable } from 'node:stream';

/**
 * A chunk this small is most likely the first part of a write still coming: git writes
 * each side-band packet's 5-byte header and its data with two system calls, and
 * reading between them made an SSH packet (and a socket write) of the header alone.
 */
export const SMALL_CHUNK = 64;

/**
 * Copies `from` chunk by chunk into `send`, waiting for each to be taken (so the peer's
 * backpressure reaches the producer), and resolves once the last one was. `from` is a
 * stream, or chunks that each stay valid only until the next is asked for (a
 * ReusedBufferReader's): `send` must have copied or sent a chunk when it resolves.
 */
export async function forward(from: Readable | AsyncIterable<Buffer>, send: (chunk: Buffer) => Promise<void>, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  const chunks = from instanceof Readable ? gathered(from, signal) : from;
  try {
    for await (const chunk of chunks) await send(chunk);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw err;
  }
}

/** A stream's chunks; a small one waits one turn of the event loop for what follows it (docs/benchmarks-datapath.md). */
async function* gathered(from: Readable, signal: AbortSignal): AsyncGenerator<Buffer> {
  // Also stop while the source is quiet, not only while a write waits.
  addAbortSignal(signal, from);
  for await (const read of from) {
    let chunk = typeof read === 'string' ? Buffer.from(read) : (read as Buffer);
    if (chunk.length < SMALL_CHUNK) {
      // One turn of the event loop lets the rest of the write arrive; what did goes with it.
      await nextTurn();
      const more = from.read() as Buffer | null;
      if (more !== null) chunk = Buffer.concat([chunk, more]);
    }
    yield chunk;
  }
}
