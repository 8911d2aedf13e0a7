import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { announceHostKey, clientHostFor, knownHostsHost } from './knownHosts.js';

describe('host keys are announced as a user compares and pastes them', () => {
  test('a wildcard or loopback listener is reached as localhost; another address as itself', () => {
    for (const address of ['::', '0.0.0.0', '127.0.0.1', '::1', '']) assert.equal(clientHostFor(address), 'localhost');
    assert.equal(clientHostFor('192.0.2.7'), '192.0.2.7');
  });

  test('the known_hosts host is bare on port 22 and [host]:port elsewhere, as OpenSSH writes it', () => {
    assert.equal(knownHostsHost('localhost', 22), 'localhost');
    assert.equal(knownHostsHost('localhost', 2222), '[localhost]:2222');
    assert.equal(knownHostsHost('2001:db8::1', 22), '[2001:db8::1]:22');
  });

  test('types are named as ssh names them when it asks about a new host', () => {
    const base = { fingerprint: 'SHA256:x', publicKey: 'k AAAA' };
    assert.equal(announceHostKey({ ...base, type: 'ssh-ed25519' }, 'localhost', 2222).type, 'ED25519');
    assert.equal(announceHostKey({ ...base, type: 'ecdsa-sha2-nistp256' }, 'localhost', 2222).type, 'ECDSA');
    assert.equal(announceHostKey({ ...base, type: 'ssh-rsa' }, 'localhost', 2222).type, 'RSA');
    assert.equal(announceHostKey({ ...base, type: 'ssh-rsa' }, 'localhost', 2222).known_hosts, '[localhost]:2222 k AAAA');
  });
});
