import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { line } from './streams.js';

describe('line', () => {
  test('ends a message with exactly one newline', () => {
    assert.equal(line('x').toString(), 'x\n');
    assert.equal(line('x\n').toString(), 'x\n');
  });
});
