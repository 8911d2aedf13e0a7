import { GitSshdError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { GitalyMetrics } from '../monitoring/gitalyMetrics.js';
import { parseGitalyAddress } from './address.js';
import { raceAbort } from './abort.js';
import { GitalyChannel } from './channel.js';

export const ERR_GITALY_UNAVAILABLE = 'ERR_GITALY_UNAVAILABLE';
export const GITALY_UNAVAILABLE = 'The git server, Gitaly, is not available at this time. Please contact your administrator.';

export interface ChannelPoolOptions {
  readonly ca: readonly string[];
  readonly connectTimeoutMs: number;
  readonly keepAliveMs: number;
  readonly log: Logger;
  readonly metrics: GitalyMetrics;
}

/**
 * One channel per (address, token), as gitlab-shell caches them, shared by every session;
 * a channel that died is dropped and the next call dials again.
 */
export class GitalyChannels {
  private readonly channels = new Map<string, Promise<GitalyChannel>>();
  /** Dials are shared by every caller waiting for them, so no one caller's signal may stop one. */
  private readonly closing = new AbortController();

  constructor(private readonly options: ChannelPoolOptions) {}

  get metrics(): GitalyMetrics {
    return this.options.metrics;
  }

  async get(address: string, token: string, signal: AbortSignal): Promise<GitalyChannel> {
    const key = `${address}\0${token}`;
    const cached = this.channels.get(key);
    if (cached) {
      const channel = await cached.catch(() => undefined);
      if (channel?.alive) return channel;
      if (this.channels.get(key) === cached) this.channels.delete(key);
    }
    signal.throwIfAborted();
    const opening = this.open(address, this.closing.signal);
    this.channels.set(key, opening);
    try {
      const channel = await raceAbort(opening, signal);
      channel.once('close', (err) => {
        if (this.channels.get(key) === opening) this.channels.delete(key);
        this.options.log.info({ gitaly_address: address, err }, 'Gitaly connection closed');
      });
      return channel;
    } catch (err) {
      if (this.channels.get(key) === opening) this.channels.delete(key);
      throw err;
    }
  }

  closeAll(): void {
    this.closing.abort(new GitSshdError(ERR_GITALY_UNAVAILABLE, 'shutting down'));
    for (const opening of this.channels.values()) opening.then((channel) => channel.close(), () => undefined);
    this.channels.clear();
  }

  private async open(raw: string, signal: AbortSignal): Promise<GitalyChannel> {
    const { log, metrics } = this.options;
    const address = parseGitalyAddress(raw);
    try {
      const channel = await GitalyChannel.open({ address, ca: this.options.ca, connectTimeoutMs: this.options.connectTimeoutMs, keepAliveMs: this.options.keepAliveMs, log }, signal);
      metrics.connections.inc({ status: 'ok' });
      log.info({ gitaly_address: raw }, 'Gitaly connection established');
      return channel;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      metrics.connections.inc({ status: 'fail' });
      log.error({ gitaly_address: raw, err }, 'Gitaly connection failed');
      throw new GitSshdError(ERR_GITALY_UNAVAILABLE, 'Gitaly connection failed', { cause: err, userMessage: GITALY_UNAVAILABLE });
    }
  }
}
