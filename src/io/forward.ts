import { addAbortSignal, type Readable } from 'node:stream';

/**
 * Copies `from` chunk by chunk into `send`, waiting for each to be taken (so the peer's
 * backpressure reaches the producer), and resolves once the last one was.
 */
export async function forward(from: Readable, send: (chunk: Buffer) => Promise<void>, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  // Also stop while the source is quiet, not only while a write waits.
  addAbortSignal(signal, from);
  try {
    for await (const chunk of from) {
      await send(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    }
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw err;
  }
}
