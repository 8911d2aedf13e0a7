import { addAbortSignal, type Readable, type Writable } from 'node:stream';

/** Resolves once `to` has taken the chunk, or rejects if `signal` fires first. */
function write(to: Writable, chunk: Buffer, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason ?? new Error('aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    to.write(chunk, (err) => {
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    });
  });
}

/**
 * Copies `from` into `to` without ending `to`, and resolves only when the last byte has
 * been handed on. ssh2 calls a channel write's callback only once the data fits the
 * peer's window, so when this resolves nothing is left queued behind `exit-status`.
 * Waiting for each write also carries the peer's backpressure back to the producer.
 */
export async function forward(from: Readable, to: Writable, signal: AbortSignal): Promise<number> {
  signal.throwIfAborted();
  let bytes = 0;
  // Also stop while the source is quiet, not only while a write waits.
  addAbortSignal(signal, from);
  try {
    for await (const chunk of from) {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      bytes += buffer.length;
      await write(to, buffer, signal);
    }
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw err;
  }
  return bytes;
}

/** Writes one message and waits for it to be taken (used for our own short messages). */
export function writeLine(to: Writable, text: string, signal: AbortSignal): Promise<void> {
  return write(to, Buffer.from(text.endsWith('\n') ? text : `${text}\n`), signal);
}
