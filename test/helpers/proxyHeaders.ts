import { isIPv4, SocketAddress } from 'node:net';

/** Builds PROXY headers byte by byte from the spec (not with the library under test). */
export const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

export function v1Header(source: string, sourcePort: number, destination = '127.0.0.1', destinationPort = 22): Buffer {
  const family = isIPv4(source) ? 'TCP4' : 'TCP6';
  return Buffer.from(`PROXY ${family} ${source} ${destination} ${sourcePort} ${destinationPort}\r\n`, 'latin1');
}

export interface V2Options {
  readonly command?: 'LOCAL' | 'PROXY';
  readonly tlvs?: Buffer;
  /** Overrides the length field (for malformed headers). */
  readonly declaredLength?: number;
  readonly familyByte?: number;
}

export function v2Header(source: string, sourcePort: number, destination = '127.0.0.1', destinationPort = 22, options: V2Options = {}): Buffer {
  const v4 = isIPv4(source);
  const addresses = v4
    ? Buffer.concat([ipv4Bytes(source), ipv4Bytes(destination), port(sourcePort), port(destinationPort)])
    : Buffer.concat([ipv6Bytes(source), ipv6Bytes(destination), port(sourcePort), port(destinationPort)]);
  const body = Buffer.concat([addresses, options.tlvs ?? Buffer.alloc(0)]);
  const fixed = Buffer.alloc(4);
  fixed[0] = 0x20 | (options.command === 'LOCAL' ? 0 : 1);
  fixed[1] = options.familyByte ?? (v4 ? 0x11 : 0x21);
  fixed.writeUInt16BE(options.declaredLength ?? body.length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed, body]);
}

export function v2Local(body = Buffer.alloc(0)): Buffer {
  const fixed = Buffer.from([0x20, 0x00, 0, 0]);
  fixed.writeUInt16BE(body.length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed, body]);
}

/** One TLV: type, 16-bit length, value. */
export function tlv(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(value.length, 1);
  return Buffer.concat([head, value]);
}

function ipv4Bytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

function ipv6Bytes(ip: string): Buffer {
  // Expand with node's own parser: SocketAddress canonicalises, then fill the "::" gap.
  const canonical = new SocketAddress({ address: ip, family: 'ipv6' }).address;
  const [head = '', tail] = canonical.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').flatMap(groupOrV4));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, index) => bytes.writeUInt16BE(group, index * 2));
  return bytes;
}

function groupOrV4(part: string): number[] {
  if (!part.includes('.')) return [parseInt(part, 16)];
  const [a = 0, b = 0, c = 0, d = 0] = part.split('.').map(Number);
  return [(a << 8) | b, (c << 8) | d];
}

function port(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}
