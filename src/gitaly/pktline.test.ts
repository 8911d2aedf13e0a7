import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_PKT_SIZE, pktLines, SidebandReader } from './pktline.js';

describe('sidechannel framing', () => {
  test('stdin goes out as pkt-lines of at most 65520 bytes', () => {
    const packets = [...pktLines(Buffer.alloc(MAX_PKT_SIZE * 2, 'x'))];
    assert.equal(packets.length, 3);
    assert.equal(packets[0]!.subarray(0, 4).toString(), 'fff0');
    assert.equal(packets[0]!.length, MAX_PKT_SIZE);
    assert.equal(Buffer.concat(packets.map((packet) => packet.subarray(4))).length, MAX_PKT_SIZE * 2);
  });

  test('sideband packets split anywhere across chunks come out whole, by band', () => {
    const wire = Buffer.from('0009\x01PACK0008\x02err00000009\x01more');
    const reader = new SidebandReader();
    const out: string[] = [];
    for (let i = 0; i < wire.length; i += 3) for (const packet of reader.push(wire.subarray(i, i + 3))) out.push(`${packet.band}:${packet.data}`);
    assert.deepEqual(out, ['stdout:PACK', 'stderr:err', 'stdout:more']);
    assert.ok(reader.clean);
    reader.push(Buffer.from('0009\x01PA'));
    assert.equal(reader.clean, false, 'ended inside a packet');
  });

  test('a bad length or an unknown band is a protocol error', () => {
    assert.throws(() => new SidebandReader().push(Buffer.from('zzzz')), /bad pkt-line header/);
    assert.throws(() => new SidebandReader().push(Buffer.from('0004')), /bad pkt-line header/);
    assert.throws(() => new SidebandReader().push(Buffer.from('0006\x03x')), /unexpected sideband 3/);
  });
});
