import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How long a test waits for something that normally takes milliseconds. Generous: on a
 * loaded CI machine a start, a login or a log line can take seconds; a bound is only
 * there so that a missing event fails the test by name instead of hanging the run.
 */
export const EVENT_TIMEOUT_MS = 60_000;

/** Polls `condition` until it holds; fails, naming `what` (a function: what was seen by then), after `timeoutMs`. */
export async function waitUntil(what: string | (() => string), condition: () => boolean | Promise<boolean>, timeoutMs = EVENT_TIMEOUT_MS, intervalMs = 25): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`${typeof what === 'function' ? what() : what}: not within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

/** `promise`, or a rejection naming `what` after `timeoutMs`. */
export async function within<T>(what: string, promise: Promise<T>, timeoutMs = EVENT_TIMEOUT_MS): Promise<T> {
  const timeout = new AbortController();
  try {
    return await Promise.race([
      promise,
      sleep(timeoutMs, undefined, { signal: timeout.signal }).then(() => {
        throw new Error(`${what}: not within ${timeoutMs} ms`);
      }),
    ]);
  } finally {
    timeout.abort();
  }
}
