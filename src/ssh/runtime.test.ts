import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MIN_NODE_MAJOR, runtimeProblem, sshNativeCrypto } from './runtime.js';

describe('the runtime we ship', () => {
  test(`is Node ${MIN_NODE_MAJOR} or later, with ML-KEM`, async () => {
    assert.equal(runtimeProblem(), undefined, `tests run on ${process.version}`);
    const crypto = await import('node:crypto');
    assert.equal(typeof crypto.encapsulate, 'function');
  });

  test('loads ssh2\'s native crypto binding, built for this Node (not the JavaScript fallback)', () => {
    assert.equal(sshNativeCrypto(), true, `ssh2's sshcrypto.node did not load on Node ${process.versions.node}: see scripts/postinstall.mjs`);
  });

  test('an older Node is refused with a message naming the Node to use', () => {
    assert.match(runtimeProblem('20.20.2') ?? '', /needs Node >= 24, this is 20\.20\.2.*node_modules\/\.bin\/node/);
    assert.equal(runtimeProblem('24.0.0'), undefined);
    assert.equal(runtimeProblem('26.1.0'), undefined);
  });
});
