import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseGitalyAddress } from './address.js';

describe('parseGitalyAddress', () => {
  test('reads the tcp, tls and unix forms Gitaly\'s own client dials', () => {
    assert.deepEqual(parseGitalyAddress('tcp://gitaly-0.gitaly:8075'), { kind: 'tcp', host: 'gitaly-0.gitaly', port: 8075 });
    assert.deepEqual(parseGitalyAddress('tls://[::1]:9999'), { kind: 'tls', host: '::1', port: 9999 });
    assert.deepEqual(parseGitalyAddress('unix:/home/git/gitlab/tmp/sockets/private/gitaly.socket'), { kind: 'unix', path: '/home/git/gitlab/tmp/sockets/private/gitaly.socket' });
    assert.deepEqual(parseGitalyAddress('unix:///run/gitaly.socket'), { kind: 'unix', path: '/run/gitaly.socket' });
  });

  test('refuses what it cannot dial, naming the address and why', () => {
    assert.throws(() => parseGitalyAddress('dns:///gitaly.service:8075'), /invalid Gitaly address "dns:\/\/\/gitaly.service:8075": scheme "dns" is not supported/);
    assert.throws(() => parseGitalyAddress('tcp://gitaly'), /needs host:port/);
    assert.throws(() => parseGitalyAddress('tcp://gitaly:8075/x'), /no path/);
    assert.throws(() => parseGitalyAddress('unix:'), /socket path/);
    assert.throws(() => parseGitalyAddress('gitaly:8075'), /not supported|not a URL/);
  });
});
