import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StartupLimiter } from './startupLimiter.js';

describe('StartupLimiter', () => {
  it('admits everyone below start and refuses everyone at full when the slots are shared fairly', () => {
    const limiter = new StartupLimiter({ maxStartups: { start: 2, rate: 30, full: 4 }, perSource: 0, random: () => 0.99 });
    const admitted = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'].map((source) => limiter.admit(source));
    assert.deepEqual(admitted.map((a) => a.admitted), [true, true, true, true]);
    assert.deepEqual(limiter.admit('192.0.2.9'), { admitted: false, reason: 'max_startups' });
    assert.deepEqual(limiter.admit('192.0.2.1'), { admitted: false, reason: 'max_startups' });
    assert.equal(limiter.unauthenticated, 4);
  });

  it('refuses rate percent at start, rising linearly to all at full, for a source that already holds a slot', () => {
    const limiter = new StartupLimiter({ maxStartups: { start: 10, rate: 30, full: 20 }, perSource: 0, random: () => 0.5 });
    for (let i = 0; i < 10; i++) assert.ok(limiter.admit('10.0.0.1').admitted);
    // A toss of 0.5 passes while the chance of refusal (30% + 7% per connection over start)
    // is below 50%: with 10, 11 and 12 open; with 13 open it is 51% and refused.
    const outcomes = [1, 2, 3, 4].map(() => limiter.admit('10.0.0.1').admitted);
    assert.deepEqual(outcomes, [true, true, true, false]);
    assert.equal(limiter.unauthenticated, 13);
    // A source that holds nothing is not tossed for: the flood's own source pays for it.
    assert.ok(limiter.admit('10.0.9.9').admitted);
  });

  it('when full, a newcomer from a lighter source takes the oldest slot of the heaviest source', () => {
    const limiter = new StartupLimiter({ maxStartups: { start: 3, rate: 100, full: 4 }, perSource: 0, random: () => 0 });
    const evicted: number[] = [];
    const flood = [0, 1, 2].map((i) => limiter.admit('attacker', () => evicted.push(i)));
    assert.ok(flood.every((a) => a.admitted));
    assert.ok(limiter.admit('user-a').admitted);
    assert.equal(limiter.unauthenticated, 4);
    const user = limiter.admit('user-b');
    assert.ok(user.admitted, 'the newcomer is admitted');
    assert.deepEqual(evicted, [0], 'the oldest slot of the flood was taken');
    assert.equal(limiter.unauthenticated, 4);
    // Releasing an evicted slot again changes nothing.
    if (flood[0]!.admitted) flood[0]!.release();
    assert.equal(limiter.unauthenticated, 4);
    // The flood still holds two: one more newcomer takes one of them; then each source holds one.
    assert.ok(limiter.admit('user-c').admitted);
    assert.deepEqual(evicted, [0, 1]);
    assert.equal(limiter.admit('user-d').admitted, false);
    assert.equal(limiter.admit('attacker').admitted, false);
    assert.deepEqual(evicted, [0, 1]);
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
