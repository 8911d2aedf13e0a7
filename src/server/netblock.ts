import { isIP } from 'node:net';

/** How many leading bits of an address name its network block (OpenSSH's PerSourceNetBlockSize). */
export interface NetBlockSize {
  readonly v4: number;
  readonly v6: number;
}

/** `32:64` or `24` (IPv4 only; IPv6 keeps its default); undefined when malformed. */
export function parseNetBlockSize(value: unknown, defaults: NetBlockSize = { v4: 32, v6: 64 }): NetBlockSize | undefined {
  const text = String(value).trim();
  const match = /^(\d{1,2})(?::(\d{1,3}))?$/.exec(text);
  if (!match) return undefined;
  const v4 = Number(match[1]);
  const v6 = match[2] === undefined ? defaults.v6 : Number(match[2]);
  if (v4 < 1 || v4 > 32 || v6 < 1 || v6 > 128) return undefined;
  return { v4, v6 };
}

/** The 16 bytes of an IPv6 address (`::`, embedded IPv4 and all). */
function ipv6Bytes(address: string): Uint8Array {
  let text = address;
  const tailV4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tailV4) {
    const [a, b, c, d] = tailV4[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -tailV4[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  const bytes = new Uint8Array(16);
  groups.forEach((group, index) => {
    const value = parseInt(group, 16);
    bytes[index * 2] = value >> 8;
    bytes[index * 2 + 1] = value & 0xff;
  });
  return bytes;
}

function masked(bytes: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += 1) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    out[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/**
 * The network block an address belongs to, as a stable key such as `192.0.2.0/24` or
 * `2001:db8:0:1::/64`: what per-source limits and penalties count by, so that one host
 * cannot dodge them by hopping through the addresses of its own /64.
 */
export function netBlockOf(ip: string, size: NetBlockSize): string {
  const version = isIP(ip);
  if (version === 4) {
    const bytes = masked(Uint8Array.from(ip.split('.').map(Number)), size.v4);
    return `${bytes.join('.')}/${size.v4}`;
  }
  if (version === 6) {
    const bytes = masked(ipv6Bytes(ip.split('%')[0]!), size.v6);
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
    return `${groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}/${size.v6}`;
  }
  // Not an address (a UNIX socket, say): its own block.
  return ip;
}
