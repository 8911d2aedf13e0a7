import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Lifecycle } from './lifecycle.js';

describe('Lifecycle', () => {
  test('moves one way only, and aborts the drain signal when draining begins', () => {
    const lifecycle = new Lifecycle();
    assert.equal(lifecycle.state, 'starting');
    assert.equal(lifecycle.drainSeconds, undefined);
    assert.equal(lifecycle.moveTo('ready'), true);
    assert.equal(lifecycle.drain.signal.aborted, false);
    assert.equal(lifecycle.moveTo('draining'), true);
    assert.equal(lifecycle.drain.signal.aborted, true);
    assert.equal(lifecycle.root.signal.aborted, false, 'the root signal is the drain controller\'s to abort, at the deadline');
    assert.equal(lifecycle.moveTo('ready'), false);
    assert.equal(lifecycle.state, 'draining');
    assert.ok(lifecycle.drainSeconds! >= 0);
    assert.equal(lifecycle.moveTo('stopped'), true);
    assert.equal(lifecycle.moveTo('draining'), false);
  });

  test('thousands of connections may listen to its signals without a leak warning', async () => {
    const lifecycle = new Lifecycle();
    const warnings: Error[] = [];
    const onWarning = (warning: Error): number => warnings.push(warning);
    process.on('warning', onWarning);
    for (let i = 0; i < 2000; i++) {
      lifecycle.root.signal.addEventListener('abort', () => undefined);
      lifecycle.drain.signal.addEventListener('abort', () => undefined);
    }
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);
    assert.deepEqual(warnings.map((warning) => warning.name), []);
  });
});
