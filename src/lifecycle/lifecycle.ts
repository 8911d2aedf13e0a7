export type State = 'starting' | 'ready' | 'draining' | 'stopped';

const NEXT: Readonly<Record<State, readonly State[]>> = {
  starting: ['ready', 'draining', 'stopped'],
  ready: ['draining', 'stopped'],
  draining: ['stopped'],
  stopped: [],
};

/** The process's state, moving one way only: starting -> ready -> draining -> stopped. */
export class Lifecycle {
  private current: State = 'starting';
  /** Aborted when everything still open must close now. */
  readonly root = new AbortController();

  get state(): State {
    return this.current;
  }

  /** Returns false (and changes nothing) for a step backwards or sideways. */
  moveTo(next: State): boolean {
    if (!NEXT[this.current].includes(next)) return false;
    this.current = next;
    return true;
  }
}
