import type { Gauge } from 'prom-client';
import type { ConnectionPhase } from '../monitoring/metrics.js';

/** Keeps one connection counted in exactly one phase of the connections gauge until it ends. */
export class PhaseTracker {
  private readonly gauge: Gauge<'phase'>;
  private current: ConnectionPhase | undefined;

  constructor(gauge: Gauge<'phase'>) {
    this.gauge = gauge;
    this.current = 'unauthenticated';
    gauge.inc({ phase: this.current });
  }

  get phase(): ConnectionPhase | undefined {
    return this.current;
  }

  move(next: ConnectionPhase): void {
    if (this.current === undefined || this.current === next) return;
    this.gauge.dec({ phase: this.current });
    this.current = next;
    this.gauge.inc({ phase: next });
  }

  end(): void {
    if (this.current === undefined) return;
    this.gauge.dec({ phase: this.current });
    this.current = undefined;
  }
}
