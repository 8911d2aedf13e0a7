import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { memoryLogger } from '../../test/helpers/memoryLogger.js';
import { LogThrottle } from './throttle.js';

describe('LogThrottle', () => {
  test('a thousand repeats in one window write the first few lines and one line counting the rest', () => {
    let now = 0;
    const { log, lines } = memoryLogger();
    const throttle = new LogThrottle({ perWindow: 5, windowMs: 1000, now: () => now });
    for (let i = 0; i < 1000; i += 1) throttle.warn(log, 'sessions', { i }, 'too many concurrent sessions');
    assert.equal(lines.length, 5);
    assert.deepEqual(lines.map((line) => line.i), [0, 1, 2, 3, 4]);
    now = 1000;
    throttle.warn(log, 'sessions', { i: 1000 }, 'too many concurrent sessions');
    assert.deepEqual(lines.slice(5).map((line) => [line.msg, line.suppressed, line.message]), [
      ['log lines suppressed', 995, 'too many concurrent sessions'],
      ['too many concurrent sessions', undefined, undefined],
    ]);
    assert.equal(lines[5]?.level, 40, 'the summary has the level of the lines it stands for');
  });

  test('kinds are limited apart: one noisy kind does not silence another', () => {
    const { log, lines } = memoryLogger();
    const throttle = new LogThrottle({ perWindow: 2, windowMs: 1000, now: () => 0 });
    for (let i = 0; i < 10; i += 1) throttle.info(log, 'a', {}, 'refused port forwarding');
    throttle.info(log, 'b', {}, 'refused global request');
    assert.deepEqual(lines.map((line) => line.msg), ['refused port forwarding', 'refused port forwarding', 'refused global request']);
  });

  test('the count is reported when the window ends even if nothing more is logged', async () => {
    const { log, lines } = memoryLogger();
    const throttle = new LogThrottle({ perWindow: 1, windowMs: 30 });
    for (let i = 0; i < 4; i += 1) throttle.warn(log, 'x', {}, 'repeated');
    for (let attempt = 0; attempt < 200 && lines.length < 2; attempt += 1) await delay(10);
    assert.deepEqual(lines.map((line) => [line.msg, line.suppressed]), [['repeated', undefined], ['log lines suppressed', 3]]);
  });

  test('flush reports what is counted, and the number of kinds tracked is bounded', () => {
    const { log, lines } = memoryLogger();
    const throttle = new LogThrottle({ perWindow: 1, windowMs: 60_000, maxKinds: 2, now: () => 0 });
    throttle.warn(log, 'a', {}, 'a');
    throttle.warn(log, 'a', {}, 'a');
    throttle.warn(log, 'b', {}, 'b');
    throttle.warn(log, 'c', {}, 'c');
    assert.deepEqual(lines.map((line) => [line.msg, line.suppressed]), [['a', undefined], ['b', undefined], ['log lines suppressed', 1], ['c', undefined]]);
    throttle.warn(log, 'c', {}, 'c');
    throttle.flush();
    assert.deepEqual(lines.at(-1)?.suppressed, 1);
  });
});
