import type { Logger } from './logger.js';

export interface LogThrottleOptions {
  /** Lines of one kind logged per window; the rest are counted. */
  readonly perWindow: number;
  readonly windowMs: number;
  /** Kinds tracked at once; beyond, the oldest is forgotten (its count is reported first). */
  readonly maxKinds?: number;
  readonly now?: () => number;
}

interface Window {
  readonly log: Logger;
  readonly level: 'info' | 'warn';
  readonly message: string;
  startedAt: number;
  logged: number;
  suppressed: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Repeated log lines, rate-limited: of each kind (a key the caller chooses, e.g. the
 * message) at most `perWindow` lines per window are written; the others are counted and
 * reported in one `log lines suppressed` line when the window ends, so that one client
 * repeating a refused request a thousand times a second writes a dozen lines, not a
 * thousand, and the log still says how many there were.
 */
export class LogThrottle {
  private readonly options: LogThrottleOptions;
  private readonly windows = new Map<string, Window>();

  constructor(options: LogThrottleOptions) {
    this.options = options;
  }

  info(log: Logger, kind: string, fields: object, message: string): void {
    this.write(log, 'info', kind, fields, message);
  }

  warn(log: Logger, kind: string, fields: object, message: string): void {
    this.write(log, 'warn', kind, fields, message);
  }

  /** Reports what is still counted (at the end of a connection, or on shutdown). */
  flush(): void {
    for (const kind of [...this.windows.keys()]) this.close(kind);
  }

  private write(log: Logger, level: 'info' | 'warn', kind: string, fields: object, message: string): void {
    const now = this.now();
    let window = this.windows.get(kind);
    if (window && now - window.startedAt >= this.options.windowMs) {
      this.close(kind);
      window = undefined;
    }
    if (!window) {
      if (this.windows.size >= (this.options.maxKinds ?? 100)) this.close(this.windows.keys().next().value as string);
      window = { log, level, message, startedAt: now, logged: 0, suppressed: 0, timer: undefined };
      this.windows.set(kind, window);
    }
    if (window.logged < this.options.perWindow) {
      window.logged += 1;
      log[level](fields, message);
      return;
    }
    window.suppressed += 1;
    if (!window.timer) {
      window.timer = setTimeout(() => this.close(kind), Math.max(0, window.startedAt + this.options.windowMs - now));
      window.timer.unref();
    }
  }

  private close(kind: string): void {
    const window = this.windows.get(kind);
    if (!window) return;
    this.windows.delete(kind);
    clearTimeout(window.timer);
    if (window.suppressed > 0) {
      window.log[window.level]({ message: window.message, suppressed: window.suppressed, window_ms: this.options.windowMs }, 'log lines suppressed');
    }
  }

  private now(): number {
    return (this.options.now ?? performance.now.bind(performance))();
  }
}
