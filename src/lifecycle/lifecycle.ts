import { setMaxListeners } from 'node:events';

export type State = 'starting' | 'ready' | 'draining' | 'stopped';

const NEXT: Readonly<Record<State, readonly State[]>> = {
  starting: ['ready', 'draining', 'stopped'],
  ready: ['draining', 'stopped'],
  draining: ['stopped'],
  stopped: [],
};

/**
 * The process's state, moving one way only: starting -> ready -> draining -> stopped.
 * Everything else reads it, or listens to its two signals.
 */
export class Lifecycle {
  private current: State = 'starting';
  private drainStartedAt: number | undefined;
  private drainEndedAt: number | undefined;
  /** Aborted when the drain begins: nothing new starts, what runs may finish. */
  readonly drain = new AbortController();
  /** Aborted when everything still open must close now. */
  readonly root = new AbortController();

  constructor() {
    // Every open connection listens to both (and stops listening when it closes): thousands
    // of listeners are the normal case here, not the leak node's warning is about.
    setMaxListeners(0, this.root.signal, this.drain.signal);
  }

  get state(): State {
    return this.current;
  }

  /** Seconds the drain has run so far (or took, once stopped); undefined before it began. */
  get drainSeconds(): number | undefined {
    if (this.drainStartedAt === undefined) return undefined;
    return ((this.drainEndedAt ?? performance.now()) - this.drainStartedAt) / 1000;
  }

  /** Returns false (and changes nothing) for a step backwards or sideways. */
  moveTo(next: State): boolean {
    if (!NEXT[this.current].includes(next)) return false;
    this.current = next;
    if (next === 'draining') {
      this.drainStartedAt = performance.now();
      this.drain.abort(new Error('server draining'));
    }
    if (next === 'stopped' && this.drainStartedAt !== undefined) this.drainEndedAt = performance.now();
    return true;
  }
}
