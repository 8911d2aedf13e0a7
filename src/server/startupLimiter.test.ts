import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StartupLimiter } from './startupLimiter.js';

describe('StartupLimiter', () => {
  it('admits everyone below start and refuses everyone at full', () => {
    const limiter = new StartupLimiter({ maxStartups: { start: 2, rate: 30, full: 4 }, perSource: 0, random: () => 0.99 });
    const admitted = [1, 2, 3, 4].map(() => limiter.admit('192.0.2.1'));
    assert.deepEqual(admitted.map((a) => a.admitted), [true, true, true, true]);
    assert.deepEqual(limiter.admit('192.0.2.9'), { admitted: false, reason: 'max_startups' });
    assert.equal(limiter.unauthenticated, 4);
  });

  it('refuses rate percent at start, rising linearly to all at full', () => {
    const limiter = new StartupLimiter({ maxStartups: { start: 10, rate: 30, full: 20 }, perSource: 0, random: () => 0.5 });
    for (let i = 0; i < 10; i++) assert.ok(limiter.admit(`10.0.0.${i}`).admitted);
    // A toss of 0.5 passes while the chance of refusal (30% + 7% per connection over start)
    // is below 50%: with 10, 11 and 12 open; with 13 open it is 51% and refused.
    const outcomes = [1, 2, 3, 4].map((i) => limiter.admit(`10.0.1.${i}`).admitted);
    assert.deepEqual(outcomes, [true, true, true, false]);
    assert.equal(limiter.unauthenticated, 13);
  });

  it('frees the slot once released, and only once', () => {
    const limiter = new StartupLimiter({ maxStartups: { start: 1, rate: 100, full: 1 }, perSource: 0 });
    const first = limiter.admit('a');
    assert.ok(first.admitted);
    assert.equal(limiter.admit('b').admitted, false);
    first.release();
    first.release();
    assert.equal(limiter.unauthenticated, 0);
    assert.ok(limiter.admit('b').admitted);
    assert.equal(limiter.admit('c').admitted, false);
  });

  it('limits one source without touching the others', () => {
    const limiter = new StartupLimiter({ maxStartups: { start: 100, rate: 30, full: 100 }, perSource: 2 });
    const a1 = limiter.admit('2001:db8::1');
    limiter.admit('2001:db8::1');
    assert.deepEqual(limiter.admit('2001:db8::1'), { admitted: false, reason: 'per_source_max_startups' });
    assert.ok(limiter.admit('2001:db8::2').admitted);
    if (a1.admitted) a1.release();
    assert.ok(limiter.admit('2001:db8::1').admitted);
  });
});
