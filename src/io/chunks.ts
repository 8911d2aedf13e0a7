import type { Readable } from 'node:stream';

/**
 * The chunks of `from` as an async iterator that only reads what it is asked for (so
 * backpressure holds) and, unlike `for await` on the stream itself, leaves the stream
 * open when the consumer stops early: a session's channel must outlive one command.
 */
export async function* chunksOf(from: Readable, signal: AbortSignal): AsyncGenerator<Buffer> {
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  let ended = from.readableEnded;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  const onEnd = (): void => {
    ended = true;
    notify();
  };
  const onError = (err: Error): void => {
    failure = err;
    notify();
  };
  from.on('readable', notify);
  from.on('end', onEnd);
  from.on('close', onEnd);
  from.on('error', onError);
  signal.addEventListener('abort', notify);
  try {
    for (;;) {
      signal.throwIfAborted();
      if (failure) throw failure;
      const chunk = from.read() as Buffer | string | null;
      if (chunk !== null) {
        yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        continue;
      }
      if (ended || from.readableEnded) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    from.off('readable', notify);
    from.off('end', onEnd);
    from.off('close', onEnd);
    from.off('error', onError);
    signal.removeEventListener('abort', notify);
  }
}
