export type UserLimit = 'connections' | 'sessions';

export interface UserLimitsOptions {
  /** 0 = no limit. */
  readonly maxConnections: number;
  /** 0 = no limit. */
  readonly maxSessions: number;
}

/** A place held under a per-user limit; release it once, when the connection or session ends. */
export type Held = { readonly release: () => void };

/**
 * Per-user caps over all of a user's connections: how many authenticated connections and
 * how many sessions (each a git process) one user may hold at once, so that one account
 * cannot take every process slot and file descriptor of the server.
 */
export class UserLimits {
  private readonly counts: Record<UserLimit, Map<string, number>> = { connections: new Map(), sessions: new Map() };

  constructor(private readonly options: UserLimitsOptions) {}

  /** A place for `user` under `limit`, or undefined when the user already holds the maximum. */
  acquire(limit: UserLimit, user: string): Held | undefined {
    const max = limit === 'connections' ? this.options.maxConnections : this.options.maxSessions;
    const counts = this.counts[limit];
    const held = counts.get(user) ?? 0;
    if (max > 0 && held >= max) return undefined;
    counts.set(user, held + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const left = (counts.get(user) ?? 1) - 1;
        if (left > 0) counts.set(user, left);
        else counts.delete(user);
      },
    };
  }

  limitOf(limit: UserLimit): number {
    return limit === 'connections' ? this.options.maxConnections : this.options.maxSessions;
  }

  held(limit: UserLimit, user: string): number {
    return this.counts[limit].get(user) ?? 0;
  }
}
