import { BlockList, isIP } from 'node:net';
import { parseAddressRange } from '../config/formats.js';
import type { Logger } from '../logging/logger.js';
import { netBlockOf, type NetBlockSize } from './netblock.js';

/** Why a connection that never authenticated earns its source a penalty. */
export type PenaltyReason = 'noauth' | 'authfail' | 'banner_timeout' | 'grace_exceeded';

export interface PenaltySettings {
  readonly enabled: boolean;
  /** Penalty time added per connection that ended this way, in milliseconds. */
  readonly durationsMs: Readonly<Record<PenaltyReason, number>>;
  /** A source is refused once its accrued penalty reaches this... */
  readonly minMs: number;
  /** ...and never for longer than this at a time. */
  readonly maxMs: number;
  /** Addresses and ranges never penalised (shared addresses: load balancers, NAT, a mesh sidecar). */
  readonly exempt: readonly string[];
  /** Blocks tracked at once; past it new ones are not penalised (a flood of sources must not exhaust memory). */
  readonly maxSources?: number;
}

export interface SourcePenaltiesOptions {
  readonly settings: PenaltySettings;
  readonly blockSize: NetBlockSize;
  readonly log: Logger;
  /** Called once each time a source starts being refused. */
  readonly onPenalty?: (reason: PenaltyReason) => void;
  readonly now?: () => number;
}

interface Entry {
  /** When the accrued penalty runs out (it decays in real time, as OpenSSH's does). */
  until: number;
  /** Being refused now. */
  active: boolean;
  /** Penalties enforced on this block before; each doubles the next one's minimum. */
  offences: number;
}

const DEFAULT_MAX_SOURCES = 65_536;
const SWEEP_MS = 60_000;

/**
 * OpenSSH's PerSourcePenalties, by network block: connections that end without
 * authenticating add penalty time to their source's block; once the accrued time reaches
 * `min` the block's new connections are refused (before any SSH byte) until it has run out.
 * A block penalised again soon after gets twice as long each time, up to `max`. One log
 * line per penalty, not per refused connection.
 */
export class SourcePenalties {
  private readonly options: SourcePenaltiesOptions;
  private readonly entries = new Map<string, Entry>();
  private readonly exempt = new BlockList();
  private readonly now: () => number;
  private overflowLogged = false;
  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(options: SourcePenaltiesOptions) {
    this.options = options;
    this.now = options.now ?? (() => performance.now());
    for (const entry of options.settings.exempt) this.exemptRange(entry);
    this.sweeper = options.settings.enabled ? setInterval(() => this.sweep(), SWEEP_MS).unref() : undefined;
  }

  /** Never penalise this address or range (e.g. the load balancers that may send PROXY headers). */
  exemptRange(entry: string): void {
    const range = parseAddressRange(entry);
    if (!range) throw new RangeError(`not an IP address or CIDR range: ${JSON.stringify(entry)}`);
    this.exempt.addSubnet(range.address, range.prefix, range.family);
  }

  isExempt(ip: string): boolean {
    const version = isIP(ip);
    return version === 0 || this.exempt.check(ip, version === 4 ? 'ipv4' : 'ipv6');
  }

  /** Whether a new connection from `ip` is to be refused now. */
  refuses(ip: string): boolean {
    if (!this.options.settings.enabled) return false;
    const entry = this.entries.get(netBlockOf(ip, this.options.blockSize));
    if (!entry?.active) return false;
    if (entry.until > this.now()) return true;
    entry.active = false;
    return false;
  }

  /** Sources being refused now. */
  get activeCount(): number {
    const now = this.now();
    let count = 0;
    for (const entry of this.entries.values()) if (entry.active && entry.until > now) count += 1;
    return count;
  }

  /** A connection from `ip` ended without authenticating, for `reason`. */
  penalise(ip: string, reason: PenaltyReason): void {
    const { settings, blockSize, log } = this.options;
    const added = settings.durationsMs[reason];
    if (!settings.enabled || added <= 0 || this.isExempt(ip)) return;
    const block = netBlockOf(ip, blockSize);
    const now = this.now();
    let entry = this.entries.get(block);
    if (!entry) {
      if (this.entries.size >= (settings.maxSources ?? DEFAULT_MAX_SOURCES)) this.sweep();
      if (this.entries.size >= (settings.maxSources ?? DEFAULT_MAX_SOURCES)) {
        if (!this.overflowLogged) log.warn({ max_sources: settings.maxSources ?? DEFAULT_MAX_SOURCES }, 'too many penalised sources to track; new ones are not penalised');
        this.overflowLogged = true;
        return;
      }
      entry = { until: now, active: false, offences: 0 };
      this.entries.set(block, entry);
    }
    const accrued = Math.min(settings.maxMs, Math.max(0, entry.until - now) + added);
    entry.until = now + accrued;
    if (entry.active && entry.until > now) return;
    entry.active = false;
    if (accrued < settings.minMs) return;
    // A repeat offender gets min, 2 min, 4 min... of refusal, however little it accrued this time.
    const duration = Math.min(settings.maxMs, Math.max(accrued, settings.minMs * 2 ** entry.offences));
    entry.until = now + duration;
    entry.active = true;
    entry.offences += 1;
    this.options.onPenalty?.(reason);
    log.warn({ source_block: block, reason, penalty_seconds: Math.round(duration / 1000), offences: entry.offences }, 'source penalised: refusing its new connections');
  }

  /** Forgets blocks whose penalty has run out and that have stayed clean for `max` since. */
  private sweep(): void {
    const now = this.now();
    for (const [block, entry] of this.entries) {
      if (entry.until + this.options.settings.maxMs < now) this.entries.delete(block);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
