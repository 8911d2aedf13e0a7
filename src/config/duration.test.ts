import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDurationMs } from './duration.js';

describe('parseDurationMs', () => {
  test('a bare number is whole seconds, as gitlab-shell reads an integer', () => {
    assert.equal(parseDurationMs(0), 0);
    assert.equal(parseDurationMs(55), 55_000);
  });

  test('a numeric string is seconds too', () => {
    assert.equal(parseDurationMs('55'), 55_000);
    assert.equal(parseDurationMs(' 10 '), 10_000);
  });

  test('Go duration strings are converted to milliseconds', () => {
    assert.equal(parseDurationMs('500ms'), 500);
    assert.equal(parseDurationMs('30s'), 30_000);
    assert.equal(parseDurationMs('1m'), 60_000);
    assert.equal(parseDurationMs('1h30m'), 5_400_000);
    assert.equal(parseDurationMs('1.5s'), 1500);
    assert.equal(parseDurationMs('2h45m10s'), 9_910_000);
    assert.equal(parseDurationMs('1m500ms'), 60_500);
  });

  test('negative values are rejected', () => {
    assert.equal(parseDurationMs(-1), undefined);
    assert.equal(parseDurationMs('-5s'), undefined);
    assert.equal(parseDurationMs('-5'), undefined);
  });

  test('empty and blank strings are rejected', () => {
    assert.equal(parseDurationMs(''), undefined);
    assert.equal(parseDurationMs('   '), undefined);
  });

  test('garbage, unknown units and prose are rejected', () => {
    for (const value of ['abc', 's', '5x', '5d', '1m5', 'ms500', '5 minutes', '1h 30m']) {
      assert.equal(parseDurationMs(value), undefined, JSON.stringify(value));
    }
  });

  test('values that are not numbers or strings are rejected', () => {
    for (const value of [null, undefined, true, {}, [], Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.equal(parseDurationMs(value), undefined, String(value));
    }
  });
});
