import type { Logger } from '../logging/logger.js';
import type { Lifecycle } from './lifecycle.js';

export interface DrainTarget {
  /** Stop taking new connections. */
  stopAccepting(): Promise<void>;
  /** Resolves when no connection is left. */
  allClosed(): Promise<void>;
  readonly connectionCount: number;
  /** Milliseconds since the oldest open connection was accepted. */
  oldestConnectionAgeMs(): number;
}

export interface ShutdownOptions {
  readonly lifecycle: Lifecycle;
  readonly target: DrainTarget;
  readonly gracePeriodMs: number;
  readonly log: Logger;
  /** How long to wait for connections to close once they have been told to. */
  readonly closeTimeoutMs?: number;
}

const sleep = (ms: number): Promise<'timeout'> =>
  new Promise((resolve) => setTimeout(() => resolve('timeout'), ms).unref());

/**
 * The drain: stop accepting, let live connections finish for up to the grace period
 * (ending early when the last one closes), then abort the root signal so that whatever
 * is still open is closed.
 */
export async function drain(options: ShutdownOptions): Promise<void> {
  const { lifecycle, target, log } = options;
  if (!lifecycle.moveTo('draining')) return;
  const openAtSignal = target.connectionCount;
  const oldestAgeMs = target.oldestConnectionAgeMs();
  const started = performance.now();
  log.info({ connections: openAtSignal, oldest_connection_age_ms: oldestAgeMs, grace_period_ms: options.gracePeriodMs }, 'draining');
  await target.stopAccepting();
  const outcome = await Promise.race([target.allClosed().then(() => 'closed' as const), sleep(options.gracePeriodMs)]);
  const cut = outcome === 'timeout' ? target.connectionCount : 0;
  lifecycle.root.abort(new Error('server stopping'));
  if (cut > 0) await Promise.race([target.allClosed(), sleep(options.closeTimeoutMs ?? 5000)]);
  lifecycle.moveTo('stopped');
  log.info(
    {
      connections_at_signal: openAtSignal,
      oldest_connection_age_ms: oldestAgeMs,
      finished: Math.max(0, openAtSignal - cut),
      cut,
      drain_ms: Math.round(performance.now() - started),
    },
    'stopped',
  );
}
