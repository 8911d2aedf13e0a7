import type { MaxStartups } from '../config/types.js';

export type Admission =
  | { readonly admitted: true; readonly release: () => void }
  | { readonly admitted: false; readonly reason: 'max_startups' | 'per_source_max_startups' };

export interface StartupLimiterOptions {
  readonly maxStartups: MaxStartups;
  /** 0 = no per-source limit. */
  readonly perSource: number;
  /** A number in [0, 1); injected so that tests can decide the coin toss. */
  readonly random?: () => number;
}

interface Slot {
  readonly evict: () => void;
  released: boolean;
}

/**
 * OpenSSH's MaxStartups and PerSourceMaxStartups for connections that have not
 * authenticated yet, counted by source (a network block): below `start` all are admitted;
 * from `start` a new one is refused with probability `rate`%, rising linearly to 100% at
 * `full`. Unlike OpenSSH, a flood from one source cannot lock the others out: the random
 * refusal only hits sources that already hold a slot, and when all slots are taken a
 * newcomer from a source holding fewer takes the oldest slot of the source holding the most.
 */
export class StartupLimiter {
  private readonly options: StartupLimiterOptions;
  private readonly random: () => number;
  private total = 0;
  /** Each source's slots, oldest first. */
  private readonly bySource = new Map<string, Slot[]>();

  constructor(options: StartupLimiterOptions) {
    this.options = options;
    this.random = options.random ?? Math.random;
  }

  get unauthenticated(): number {
    return this.total;
  }

  /** `evict` closes the connection when a newcomer from a lighter source takes its slot. */
  admit(source: string, evict: () => void = () => undefined): Admission {
    const { perSource, maxStartups } = this.options;
    const held = this.bySource.get(source)?.length ?? 0;
    if (perSource > 0 && held >= perSource) return { admitted: false, reason: 'per_source_max_startups' };
    if (this.total >= maxStartups.full) {
      if (!this.evictFromHeaviest(held)) return { admitted: false, reason: 'max_startups' };
    } else if (held > 0 && this.refuseEarly()) {
      return { admitted: false, reason: 'max_startups' };
    }
    const slot: Slot = { evict, released: false };
    const slots = this.bySource.get(source) ?? [];
    slots.push(slot);
    this.bySource.set(source, slots);
    this.total += 1;
    return { admitted: true, release: () => this.release(source, slot) };
  }

  private release(source: string, slot: Slot): void {
    if (slot.released) return;
    slot.released = true;
    this.total -= 1;
    const slots = this.bySource.get(source);
    if (!slots) return;
    slots.splice(slots.indexOf(slot), 1);
    if (slots.length === 0) this.bySource.delete(source);
  }

  /** Frees the oldest slot of the source holding the most, if it holds more than `held` + 1. */
  private evictFromHeaviest(held: number): boolean {
    let heaviest: [string, Slot[]] | undefined;
    for (const entry of this.bySource) if (!heaviest || entry[1].length > heaviest[1].length) heaviest = entry;
    if (!heaviest || heaviest[1].length <= held + 1) return false;
    const [source, slots] = heaviest;
    const oldest = slots[0]!;
    this.release(source, oldest);
    oldest.evict();
    return true;
  }

  private refuseEarly(): boolean {
    const { start, rate, full } = this.options.maxStartups;
    if (this.total < start) return false;
    const percent = rate + ((100 - rate) * (this.total - start)) / (full - start || 1);
    return this.random() * 100 < percent;
  }
}
