import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tlv, v1Header, v2Header, v2Local, V2_SIGNATURE } from '../../test/helpers/proxyHeaders.js';
import { frameProxyHeader, V1_MAX_LENGTH, V2_MAX_LENGTH, type FrameResult } from './header.js';

const SSH_BANNER = Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n');

function proxied(result: FrameResult): { source: string; destination: string; version: number; length: number } {
  assert.equal(result.state, 'header', JSON.stringify(result));
  if (result.state !== 'header' || result.header.kind !== 'proxied') throw new Error('not a proxied header');
  const { source, destination, version } = result.header;
  return { source: `${source.ip}:${source.port}`, destination: `${destination.ip}:${destination.port}`, version, length: result.length };
}

function invalidReason(bytes: Buffer): string {
  const result = frameProxyHeader(bytes);
  assert.equal(result.state, 'invalid', `${JSON.stringify(bytes.toString('latin1'))}: ${JSON.stringify(result)}`);
  return result.state === 'invalid' ? result.reason : '';
}

describe('frameProxyHeader', () => {
  test('a v1 TCP4 header gives the client endpoint and its exact length, with the SSH banner after it left alone', () => {
    const header = v1Header('198.51.100.7', 40123, '10.0.0.5', 22);
    const result = frameProxyHeader(Buffer.concat([header, SSH_BANNER]));
    assert.deepEqual(proxied(result), { source: '198.51.100.7:40123', destination: '10.0.0.5:22', version: 1, length: header.length });
  });

  test('a v1 TCP6 header gives the address in canonical form, IPv4-mapped as plain IPv4', () => {
    assert.equal(proxied(frameProxyHeader(v1Header('2001:0db8:0:0:0:0:0:0001', 1, '::1', 22))).source, '2001:db8::1:1');
    assert.equal(proxied(frameProxyHeader(Buffer.from('PROXY TCP6 ::ffff:192.0.2.1 ::1 5 22\r\n'))).source, '192.0.2.1:5');
  });

  test('v1 UNKNOWN, with or without addresses, is a header that names no client', () => {
    for (const line of ['PROXY UNKNOWN\r\n', 'PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n']) {
      const result = frameProxyHeader(Buffer.from(line));
      assert.deepEqual(result, { state: 'header', header: { version: 1, kind: 'local' }, length: line.length });
    }
  });

  test('v2 TCP4 and TCP6 headers give the client endpoint; TLVs are skipped by length', () => {
    const withTlvs = v2Header('203.0.113.9', 51000, '10.0.0.5', 2222, {
      tlvs: Buffer.concat([tlv(0xea, Buffer.from('\x01vpce-0123456789abcdef')), tlv(0x04, Buffer.alloc(0))]),
    });
    assert.deepEqual(proxied(frameProxyHeader(Buffer.concat([withTlvs, SSH_BANNER]))), {
      source: '203.0.113.9:51000',
      destination: '10.0.0.5:2222',
      version: 2,
      length: withTlvs.length,
    });
    const v6 = v2Header('2001:db8::42', 443, 'fd00::1', 22);
    assert.deepEqual(proxied(frameProxyHeader(v6)), { source: '2001:db8::42:443', destination: 'fd00::1:22', version: 2, length: 16 + 36 });
  });

  test('v2 LOCAL (a health check), UNSPEC and UNIX headers name no client', () => {
    const local = v2Local(Buffer.from('anything at all'));
    assert.deepEqual(frameProxyHeader(local), { state: 'header', header: { version: 2, kind: 'local' }, length: local.length });
    const unspec = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x00, 0, 0])]);
    assert.deepEqual(frameProxyHeader(unspec), { state: 'header', header: { version: 2, kind: 'local' }, length: 16 });
    const unix = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x31, 0, 216]), Buffer.alloc(216)]);
    assert.deepEqual(frameProxyHeader(unix), { state: 'header', header: { version: 2, kind: 'local' }, length: 232 });
  });

  test('every proper prefix of a header asks for more bytes', () => {
    for (const header of [v1Header('192.0.2.1', 1), v2Header('192.0.2.1', 1, '127.0.0.1', 22, { tlvs: tlv(1, Buffer.from('h2')) }), v2Header('::1', 1, '::1', 22)]) {
      for (let n = 1; n < header.length; n += 1) {
        assert.deepEqual(frameProxyHeader(header.subarray(0, n)), { state: 'incomplete' }, `prefix of ${n} bytes`);
      }
    }
  });

  test('bytes that cannot begin a header are absent, not an error', () => {
    for (const bytes of [SSH_BANNER, Buffer.from('S'), Buffer.from('PROXX'), Buffer.from('\r\n\r\nX'), Buffer.from([0])]) {
      assert.deepEqual(frameProxyHeader(bytes), { state: 'absent' }, JSON.stringify(bytes.toString('latin1')));
    }
  });

  test('a v1 line without CRLF within the spec limit is oversized; an overlong v2 length is refused before it is read', () => {
    assert.equal(invalidReason(Buffer.from(`PROXY TCP4 ${'1'.repeat(V1_MAX_LENGTH)}`)), 'oversized');
    const huge = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
    assert.equal(invalidReason(huge), 'oversized');
    assert.equal(frameProxyHeader(v2Header('192.0.2.1', 1, '127.0.0.1', 22, { tlvs: Buffer.alloc(V2_MAX_LENGTH - 28) })).state, 'header');
    assert.equal(invalidReason(v2Header('192.0.2.1', 1, '127.0.0.1', 22, { tlvs: Buffer.alloc(V2_MAX_LENGTH - 27) })), 'oversized');
  });

  test('malformed v1 lines are refused', () => {
    const lines = [
      'PROXY TCP4 192.0.2.1 127.0.0.1 1 22\n',
      'PROXY TCP4 192.0.2.1 127.0.0.1 1\r\n',
      'PROXY TCP4 192.0.2.1 127.0.0.1 1 22 extra\r\n',
      'PROXY TCP4  192.0.2.1 127.0.0.1 1 22\r\n',
      'PROXY TCP5 192.0.2.1 127.0.0.1 1 22\r\n',
      'PROXY TCP4 ::1 127.0.0.1 1 22\r\n',
      'PROXY TCP6 192.0.2.1 ::1 1 22\r\n',
      'PROXY TCP6 fe80::1%eth0 ::1 1 22\r\n',
      'PROXY TCP4 192.0.2.256 127.0.0.1 1 22\r\n',
      'PROXY TCP4 192.0.2.1 127.0.0.1 65536 22\r\n',
      'PROXY TCP4 192.0.2.1 127.0.0.1 080 22\r\n',
      'PROXY TCP4 192.0.2.1 127.0.0.1 -1 22\r\n',
      'PROXY TCP4 192.0.2.1 127.0.0.1 1 22\r\r\n',
      'PROXY TCP4 192.0.2.1\x00 127.0.0.1 1 22\r\n',
      'PROXY \r\n',
    ];
    for (const line of lines) assert.equal(invalidReason(Buffer.from(line, 'latin1')), 'malformed', JSON.stringify(line));
  });

  test('malformed v2 headers are refused', () => {
    const good = v2Header('192.0.2.1', 1);
    const withByte = (index: number, value: number): Buffer => {
      const copy = Buffer.from(good);
      copy[index] = value;
      return copy;
    };
    assert.equal(invalidReason(withByte(12, 0x11)), 'malformed', 'version 1 in a v2 header');
    assert.equal(invalidReason(withByte(12, 0x22)), 'malformed', 'command 2');
    assert.equal(invalidReason(withByte(13, 0x41)), 'malformed', 'address family 4');
    assert.equal(invalidReason(withByte(13, 0x12)), 'malformed', 'UDP');
    assert.equal(invalidReason(v2Header('192.0.2.1', 1, '127.0.0.1', 22, { declaredLength: 11 })), 'malformed', 'too short for TCP4');
    assert.equal(invalidReason(v2Header('::1', 1, '::1', 22, { declaredLength: 35 })), 'malformed', 'too short for TCP6');
    assert.equal(invalidReason(withByte(13, 0x71).subarray(0, 16)), 'malformed', 'a bad family is refused from the fixed part alone');
  });
});
