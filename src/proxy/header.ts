import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import proxyProtocol from 'proxy-protocol-js';
import type { Endpoint } from '../server/address.js';

/**
 * What a load balancer told us. `proxied` carries the client's endpoints. `local` means
 * the header was well formed but names no client (a v2 LOCAL health check, v1 UNKNOWN,
 * a v2 UNSPEC or UNIX address): the spec says to use the socket's own endpoints then.
 */
export type ProxyHeader =
  | { readonly version: 1 | 2; readonly kind: 'proxied'; readonly source: Endpoint; readonly destination: Endpoint }
  | { readonly version: 1 | 2; readonly kind: 'local' };

export type InvalidReason = 'malformed' | 'oversized';

export type FrameResult =
  /** A prefix of a header so far: wait for more bytes. */
  | { readonly state: 'incomplete' }
  /** These bytes do not begin a PROXY header (an SSH banner, say). */
  | { readonly state: 'absent' }
  | { readonly state: 'header'; readonly header: ProxyHeader; readonly length: number }
  | { readonly state: 'invalid'; readonly reason: InvalidReason; readonly detail: string };

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The spec's own bound for a v1 line, CRLF included. */
export const V1_MAX_LENGTH = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_LENGTH = 16;
/**
 * Our bound for a v2 header, TLVs included. The spec allows 64 KiB; the TLVs clouds add
 * (AWS VPC endpoint id, Azure link id, GCP PSC id) are tens of bytes, and a bound keeps
 * what a stranger can make us buffer small.
 */
export const V2_MAX_LENGTH = 4096;

const V2 = {
  Version: 0x20,
  CommandLocal: 0x0,
  CommandProxy: 0x1,
  FamilyUnspec: 0x0,
  FamilyInet: 0x1,
  FamilyInet6: 0x2,
  FamilyUnix: 0x3,
  TransportStream: 0x1,
} as const;
const V2_ADDRESS_LENGTH: Readonly<Record<number, number>> = { [V2.FamilyInet]: 12, [V2.FamilyInet6]: 36 };

/**
 * Finds a PROXY header (v1 or v2) at the start of `bytes` and decodes it. The framing
 * (where a header ends, how long we wait for it, what is too long) is ours; the field
 * decoding is proxy-protocol-js's, checked again here because it accepts any text as a
 * v1 address and reads v2 addresses past the declared length.
 */
export function frameProxyHeader(bytes: Buffer): FrameResult {
  if (startsWithPrefixOf(bytes, V2_SIGNATURE)) return bytes.length < V2_FIXED_LENGTH ? { state: 'incomplete' } : frameV2(bytes);
  if (startsWithPrefixOf(bytes, V1_PREFIX)) return bytes.length < V1_PREFIX.length ? { state: 'incomplete' } : frameV1(bytes);
  return { state: 'absent' };
}

function startsWithPrefixOf(bytes: Buffer, signature: Buffer): boolean {
  const n = Math.min(bytes.length, signature.length);
  return n > 0 && bytes.subarray(0, n).equals(signature.subarray(0, n));
}

function frameV1(bytes: Buffer): FrameResult {
  const window = bytes.subarray(0, V1_MAX_LENGTH);
  const newline = window.indexOf(0x0a);
  if (newline === -1) {
    return bytes.length >= V1_MAX_LENGTH
      ? invalid('oversized', `v1 header has no CRLF within ${V1_MAX_LENGTH} bytes`)
      : { state: 'incomplete' };
  }
  const length = newline + 1;
  if (newline === 0 || bytes[newline - 1] !== 0x0d) return invalid('malformed', 'v1 header line does not end in CRLF');
  const line = bytes.subarray(0, newline - 1);
  if (!/^[\x20-\x7e]*$/.test(line.toString('latin1'))) return invalid('malformed', 'v1 header has non-printable bytes');
  const text = line.toString('latin1');
  // UNKNOWN may carry anything (or nothing) up to the CRLF; the library wants addresses.
  if (text === 'PROXY UNKNOWN' || text.startsWith('PROXY UNKNOWN ')) return header({ version: 1, kind: 'local' }, length);

  let parsed: InstanceType<typeof proxyProtocol.V1ProxyProtocol>;
  try {
    parsed = proxyProtocol.V1ProxyProtocol.parse(`${text}\r\n`);
  } catch {
    return invalid('malformed', 'v1 header is not "PROXY TCP4|TCP6 src dst sport dport"');
  }
  const fields = text.split(' ');
  if (fields.length !== 6) return invalid('malformed', 'v1 header has extra or empty fields');
  const family = parsed.inetProtocol === 'TCP4' ? 4 : parsed.inetProtocol === 'TCP6' ? 6 : 0;
  // The library turns "080" into 80; the spec's ports have no leading zeros, so the text is checked.
  const source = v1Endpoint(parsed.source.ipAddress, fields[4]!, family);
  const destination = v1Endpoint(parsed.destination.ipAddress, fields[5]!, family);
  if (!source || !destination) return invalid('malformed', `v1 header has an address or port that is not valid ${parsed.inetProtocol}`);
  return header({ version: 1, kind: 'proxied', source, destination }, length);
}

function v1Endpoint(ip: string, port: string, family: number): Endpoint | undefined {
  const validIp = family === 4 ? isIPv4(ip) : family === 6 && isIPv6(ip) && !ip.includes('%');
  if (!validIp || !/^(0|[1-9][0-9]{0,4})$/.test(port) || Number(port) > 65535) return undefined;
  return { ip: family === 6 ? canonicalIPv6(ip) : ip, port: Number(port) };
}

function frameV2(bytes: Buffer): FrameResult {
  const versionCommand = bytes[12]!;
  if ((versionCommand & 0xf0) !== V2.Version) return invalid('malformed', `v2 header has version ${versionCommand >> 4}, not 2`);
  const command = versionCommand & 0x0f;
  if (command !== V2.CommandLocal && command !== V2.CommandProxy) return invalid('malformed', `v2 header has unknown command ${command}`);
  const length = V2_FIXED_LENGTH + bytes.readUInt16BE(14);
  if (length > V2_MAX_LENGTH) return invalid('oversized', `v2 header declares ${length} bytes; at most ${V2_MAX_LENGTH} are accepted`);
  // LOCAL: a health check or the load balancer's own connection; the rest is skipped unread.
  if (command === V2.CommandLocal) return bytes.length < length ? { state: 'incomplete' } : header({ version: 2, kind: 'local' }, length);

  // The fixed part is enough to refuse a bad family or transport without waiting for the rest.
  const family = bytes[13]! >> 4;
  const transport = bytes[13]! & 0x0f;
  const addressLength = V2_ADDRESS_LENGTH[family];
  const namesNoClient = family === V2.FamilyUnspec || family === V2.FamilyUnix;
  if (!namesNoClient) {
    if (addressLength === undefined) return invalid('malformed', `v2 header has unknown address family ${family}`);
    if (transport !== V2.TransportStream) return invalid('malformed', 'v2 header names a transport other than TCP');
    if (length - V2_FIXED_LENGTH < addressLength) return invalid('malformed', 'v2 header is too short for its addresses');
  }
  if (bytes.length < length) return { state: 'incomplete' };
  if (namesNoClient || addressLength === undefined) return header({ version: 2, kind: 'local' }, length);

  let parsed: InstanceType<typeof proxyProtocol.V2ProxyProtocol>;
  try {
    // Only the header's own bytes: TLVs after the addresses are skipped by length, never parsed.
    parsed = proxyProtocol.V2ProxyProtocol.parse(bytes.subarray(0, length));
  } catch {
    return invalid('malformed', 'v2 header could not be decoded');
  }
  const address = parsed.proxyAddress;
  if (!('sourcePort' in address)) return invalid('malformed', 'v2 header could not be decoded');
  const format = family === V2.FamilyInet ? (octets: readonly number[]) => octets.join('.') : formatIPv6;
  return header(
    {
      version: 2,
      kind: 'proxied',
      source: { ip: format(address.sourceAddress.address), port: address.sourcePort },
      destination: { ip: format(address.destinationAddress.address), port: address.destinationPort },
    },
    length,
  );
}

function formatIPv6(octets: readonly number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((octets[i]! << 8) | octets[i + 1]!).toString(16));
  return canonicalIPv6(groups.join(':'));
}

/** RFC 5952 form, so that one client is one string in logs and limits; IPv4-mapped becomes plain IPv4. */
function canonicalIPv6(ip: string): string {
  const canonical = new SocketAddress({ address: ip, family: 'ipv6' }).address;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(canonical);
  return mapped ? mapped[1]! : canonical;
}

function header(value: ProxyHeader, length: number): FrameResult {
  return { state: 'header', header: value, length };
}

function invalid(reason: InvalidReason, detail: string): FrameResult {
  return { state: 'invalid', reason, detail };
}
