import { tlv, v1Header, v2Header, v2Local } from './proxyHeaders.js';

/** A small seeded PRNG (mulberry32): a failing fuzz run can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Valid headers of every kind, and an SSH banner, to mutate from. */
export const SEEDS: readonly Buffer[] = [
  v1Header('198.51.100.7', 40123, '10.0.0.5', 22),
  v1Header('2001:db8::1', 1, '::1', 22),
  Buffer.from('PROXY UNKNOWN\r\n'),
  v2Header('203.0.113.9', 51000, '10.0.0.5', 22),
  v2Header('2001:db8::42', 443, 'fd00::1', 22),
  v2Header('192.0.2.1', 1, '127.0.0.1', 22, { tlvs: Buffer.concat([tlv(0xea, Buffer.from('\x01vpce-1')), tlv(0x04, Buffer.alloc(0))]) }),
  v2Local(Buffer.from('skip me')),
  Buffer.from('SSH-2.0-OpenSSH_9.2p1\r\n'),
];

/** One to four random edits: bit flips, byte sets, inserts, deletes, truncation, splices. */
export function mutate(random: () => number, input: Buffer): Buffer {
  const int = (n: number): number => Math.floor(random() * n);
  let bytes = Buffer.from(input);
  const edits = 1 + int(4);
  for (let e = 0; e < edits; e += 1) {
    const at = int(bytes.length + 1);
    switch (int(8)) {
      case 0:
        if (bytes.length > 0) bytes[at % bytes.length]! ^= 1 << int(8);
        break;
      case 1:
        if (bytes.length > 0) bytes[at % bytes.length] = int(256);
        break;
      case 2: {
        const inserted = Buffer.alloc(1 + int(8));
        for (let i = 0; i < inserted.length; i += 1) inserted[i] = int(256);
        bytes = Buffer.concat([bytes.subarray(0, at), inserted, bytes.subarray(at)]);
        break;
      }
      case 3:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + int(8))]);
        break;
      case 4:
        bytes = bytes.subarray(0, at);
        break;
      case 5:
        // The v2 length field, the likeliest place for a parser to trust a stranger.
        if (bytes.length >= 16) bytes.writeUInt16BE(int(65536), 14);
        break;
      case 6:
        bytes = Buffer.concat([bytes, SEEDS[int(SEEDS.length)]!.subarray(int(20))]);
        break;
      default:
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(' '), bytes.subarray(at)]);
    }
  }
  return bytes;
}
