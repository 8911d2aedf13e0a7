import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProxyPolicyResolver } from './policy.js';

describe('ProxyPolicyResolver', () => {
  test('with no allowed list every source gets the configured policy', () => {
    for (const policy of ['use', 'require', 'ignore', 'reject'] as const) {
      const resolver = new ProxyPolicyResolver({ policy, allowed: [] });
      assert.equal(resolver.policyFor('192.0.2.1'), policy);
      assert.equal(resolver.policyFor('::1'), policy);
    }
  });

  test('an allowed list overrides the policy: listed sources use headers, all others are rejected', () => {
    const resolver = new ProxyPolicyResolver({ policy: 'require', allowed: ['10.0.0.0/8', '192.0.2.7', 'fd00::/8'] });
    assert.equal(resolver.policyFor('10.200.3.4'), 'use');
    assert.equal(resolver.policyFor('192.0.2.7'), 'use');
    assert.equal(resolver.policyFor('192.0.2.8'), 'reject');
    assert.equal(resolver.policyFor('fd12::1'), 'use');
    assert.equal(resolver.policyFor('fe80::1'), 'reject');
    assert.equal(resolver.policyFor('11.0.0.1'), 'reject');
    assert.equal(resolver.policyFor('not an address'), 'reject');
  });

  test('an IPv4-mapped peer matches an IPv4 range', () => {
    const resolver = new ProxyPolicyResolver({ policy: 'use', allowed: ['127.0.0.0/8'] });
    assert.equal(resolver.policyFor('::ffff:127.0.0.3'), 'use');
  });

  test('an entry that is not an address or range is refused when the resolver is built', () => {
    assert.throws(() => new ProxyPolicyResolver({ policy: 'use', allowed: ['10.0.0.0/40'] }), /not an IP address or CIDR range: "10.0.0.0\/40"/);
  });
});
