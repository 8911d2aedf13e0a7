import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseListenAddress, parseMaxStartups } from './formats.js';

describe('parseListenAddress', () => {
  test('an IPv4 address with port 0 is accepted', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  });

  test('a bracketed IPv6 address loses its brackets', () => {
    assert.deepEqual(parseListenAddress('[::]:22'), { host: '::', port: 22 });
    assert.deepEqual(parseListenAddress('[::1]:2222'), { host: '::1', port: 2222 });
  });

  test('a port alone means all interfaces (an empty host)', () => {
    assert.deepEqual(parseListenAddress(':2222'), { host: '', port: 2222 });
  });

  test('a host name is accepted', () => {
    assert.deepEqual(parseListenAddress('localhost:9122'), { host: 'localhost', port: 9122 });
  });

  test('the highest port is accepted', () => {
    assert.deepEqual(parseListenAddress('0.0.0.0:65535'), { host: '0.0.0.0', port: 65535 });
  });

  test('an address without a port is rejected', () => {
    assert.equal(parseListenAddress('[::1]'), undefined);
    assert.equal(parseListenAddress('host'), undefined);
    assert.equal(parseListenAddress('host:'), undefined);
  });

  test('a port above 65535 is rejected', () => {
    assert.equal(parseListenAddress('1.2.3.4:70000'), undefined);
  });

  test('brackets around something that is not IPv6 are rejected', () => {
    assert.equal(parseListenAddress('[zz]:1'), undefined);
    assert.equal(parseListenAddress('[127.0.0.1]:1'), undefined);
  });

  test('an unbracketed IPv6 address is rejected as ambiguous', () => {
    assert.equal(parseListenAddress('::1:22'), undefined);
  });

  test('garbage is rejected', () => {
    for (const value of ['', 'nonsense', 'a b:22', 'host:port', 'host:-1']) {
      assert.equal(parseListenAddress(value), undefined, JSON.stringify(value));
    }
  });
});

describe('parseMaxStartups', () => {
  test('reads start:rate:full, and a single number as start = full', () => {
    assert.deepEqual(parseMaxStartups('10:30:100'), { start: 10, rate: 30, full: 100 });
    assert.deepEqual(parseMaxStartups('5'), { start: 5, rate: 100, full: 5 });
    assert.deepEqual(parseMaxStartups(7), { start: 7, rate: 100, full: 7 });
  });

  test('refuses what OpenSSH would not take', () => {
    for (const bad of ['0', '10:0:100', '10:101:100', '10:30:5', '10:30', 'ten', '', '-1', '1:2:3:4']) {
      assert.equal(parseMaxStartups(bad), undefined, bad);
    }
  });
});
