import type { MaxStartups } from '../config/types.js';

export type Admission =
  | { readonly admitted: true; readonly release: () => void }
  | { readonly admitted: false; readonly reason: 'max_startups' | 'per_source_max_startups' };

export interface StartupLimiterOptions {
  readonly maxStartups: MaxStartups;
  /** 0 = no per-address limit. */
  readonly perSource: number;
  /** A number in [0, 1); injected so that tests can decide the coin toss. */
  readonly random?: () => number;
}

/**
 * OpenSSH's MaxStartups and PerSourceMaxStartups for connections that have not
 * authenticated yet: below `start` all are admitted; from `start` a new one is refused
 * with probability `rate`%, rising linearly to 100% at `full`. Random early refusal keeps
 * some room for real users while a flood holds the slots.
 */
export class StartupLimiter {
  private readonly options: StartupLimiterOptions;
  private readonly random: () => number;
  private total = 0;
  private readonly bySource = new Map<string, number>();

  constructor(options: StartupLimiterOptions) {
    this.options = options;
    this.random = options.random ?? Math.random;
  }

  get unauthenticated(): number {
    return this.total;
  }

  admit(source: string): Admission {
    const { perSource } = this.options;
    const fromSource = this.bySource.get(source) ?? 0;
    if (perSource > 0 && fromSource >= perSource) return { admitted: false, reason: 'per_source_max_startups' };
    if (this.refuseEarly()) return { admitted: false, reason: 'max_startups' };
    this.total += 1;
    this.bySource.set(source, fromSource + 1);
    let released = false;
    return {
      admitted: true,
      release: () => {
        if (released) return;
        released = true;
        this.total -= 1;
        const left = (this.bySource.get(source) ?? 1) - 1;
        if (left > 0) this.bySource.set(source, left);
        else this.bySource.delete(source);
      },
    };
  }

  private refuseEarly(): boolean {
    const { start, rate, full } = this.options.maxStartups;
    if (this.total >= full) return true;
    if (this.total < start) return false;
    const percent = rate + ((100 - rate) * (this.total - start)) / (full - start || 1);
    return this.random() * 100 < percent;
  }
}
