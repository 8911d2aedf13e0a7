import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { gitalyAuthorization } from './token.js';

describe('gitalyAuthorization', () => {
  test('is a v2 bearer token: hex HMAC-SHA256 of the unix seconds, keyed by the token', () => {
    const header = gitalyAuthorization('secret-token', Date.UTC(2026, 0, 1, 0, 0, 0, 999));
    assert.equal(header, `Bearer v2.${createHmac('sha256', 'secret-token').update('1767225600').digest('hex')}.1767225600`);
    assert.match(gitalyAuthorization('t'), /^Bearer v2\.[0-9a-f]{64}\.\d{10}$/);
  });
});
