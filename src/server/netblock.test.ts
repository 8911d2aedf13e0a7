import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { netBlockOf, parseNetBlockSize } from './netblock.js';

describe('netBlockOf', () => {
  const defaults = { v4: 32, v6: 64 };

  it('keeps a whole IPv4 address at /32 and masks it at shorter prefixes', () => {
    assert.equal(netBlockOf('192.0.2.77', defaults), '192.0.2.77/32');
    assert.equal(netBlockOf('192.0.2.77', { v4: 24, v6: 64 }), '192.0.2.0/24');
    assert.equal(netBlockOf('192.0.2.77', { v4: 20, v6: 64 }), '192.0.0.0/20');
  });

  it('puts every address of one IPv6 /64 in the same block, in any spelling', () => {
    const a = netBlockOf('2001:db8:1:2:aaaa:bbbb:cccc:dddd', defaults);
    assert.equal(a, '2001:db8:1:2::/64');
    assert.equal(netBlockOf('2001:db8:1:2::1', defaults), a);
    assert.equal(netBlockOf('2001:0db8:0001:0002:0:0:0:ffff', defaults), a);
    assert.notEqual(netBlockOf('2001:db8:1:3::1', defaults), a);
    assert.equal(netBlockOf('::1', { v4: 32, v6: 128 }), '::1/128');
    assert.equal(netBlockOf('::ffff:10.1.2.3', { v4: 32, v6: 128 }), '::ffff:a01:203/128');
    assert.equal(netBlockOf('fe80::1%eth0', defaults), 'fe80::/64');
  });

  it('reads "v4:v6" and "v4" sizes and refuses others', () => {
    assert.deepEqual(parseNetBlockSize('24:48'), { v4: 24, v6: 48 });
    assert.deepEqual(parseNetBlockSize('32'), { v4: 32, v6: 64 });
    for (const bad of ['', '0:64', '33', '32:129', 'x', '32:64:1']) assert.equal(parseNetBlockSize(bad), undefined, bad);
  });
});
