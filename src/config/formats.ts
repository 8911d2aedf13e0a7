import { isIP } from 'node:net';
import { SUPPORTED_ALGORITHMS, UNSERVABLE_KEX } from './algorithms.js';
import { DURATION_HELP, parseDurationMs } from './duration.js';
import type { ListenAddress, MaxStartups } from './types.js';

/** "host:port", "[v6]:port" or ":port" (all interfaces), as Go's net.Listen takes them. */
export function parseListenAddress(value: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([^\s:[\]]*)):(\d{1,5})$/.exec(value.trim());
  if (!match) return undefined;
  const host = match[1] ?? match[2] ?? '';
  if (match[1] !== undefined && isIP(match[1].split('%')[0] ?? '') !== 6) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  return { host, port };
}

/**
 * convict appends ": value was X" itself, but only for truthy values; for 0, false and ""
 * the message says it, so that every error names the value.
 */
function invalid(message: string, value: unknown): Error {
  return new Error(value ? message : `${message}: value was ${JSON.stringify(value)}`);
}

export interface AddressRange {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** `10.0.0.0/8`, `fd00::/8`, `192.0.2.7` or `::1`; undefined when it is none of these. */
export function parseAddressRange(entry: string): AddressRange | undefined {
  const [address = '', prefixText, ...rest] = entry.trim().split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0 || address.includes('%')) return undefined;
  const bits = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

function listenAddress(value: unknown): void {
  if (typeof value !== 'string' || parseListenAddress(value) === undefined) {
    throw invalid('must be an address "host:port", "[ipv6]:port" or ":port" with a port from 0 to 65535', value);
  }
}

function caseInsensitiveEnum(name: string, allowed: readonly string[]) {
  return {
    name,
    validate(value: unknown): void {
      if (typeof value !== 'string' || !allowed.includes(value.toLowerCase())) {
        throw invalid(`must be one of ${allowed.join(', ')} (case-insensitive)`, value);
      }
    },
    coerce: (value: string) => value,
  };
}

const BOOLEAN_WORDS: Readonly<Record<string, boolean>> = {
  true: true, yes: true, on: true, '1': true,
  false: false, no: false, off: false, '0': false,
};

/** yes/no/on/off/1/0 as booleans (env vars and YAML 1.1 files); anything else stays, to be refused. */
export function booleanOrAsIs(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const word = BOOLEAN_WORDS[value.trim().toLowerCase()];
  return word === undefined ? value : word;
}

export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Keeps a non-numeric string as it is, so the error can show what was written. */
function integerOrAsIs(value: string): number | string {
  return /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
}

function algorithmList(supported: readonly string[], refused: Readonly<Record<string, string>> = {}) {
  return {
    validate(value: unknown): void {
      if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
        throw invalid('must be a list of algorithm names', value);
      }
      const unservable = value.find((item) => item in refused);
      if (unservable !== undefined) {
        throw new Error(`${JSON.stringify(unservable)} not supported: ${refused[unservable]}; supported: ${supported.join(', ')}`);
      }
      const unknown = value.filter((item) => !supported.includes(item));
      if (unknown.length > 0) {
        throw new Error(`${unknown.map((item) => JSON.stringify(item)).join(', ')} not supported; supported: ${supported.join(', ')}`);
      }
    },
    coerce: (value: string): string[] => value.split(',').map((item) => item.trim()).filter((item) => item !== ''),
  };
}

/** OpenSSH's MaxStartups: "start:rate:full" (refuse rate% from start, rising to all at full) or "N". */
export function parseMaxStartups(value: unknown): MaxStartups | undefined {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string') return undefined;
  const match = /^\s*(\d{1,6})(?::(\d{1,3}):(\d{1,6}))?\s*$/.exec(text);
  if (!match) return undefined;
  const start = Number(match[1]);
  const rate = match[2] === undefined ? 100 : Number(match[2]);
  const full = match[3] === undefined ? start : Number(match[3]);
  if (start < 1 || rate < 1 || rate > 100 || full < start) return undefined;
  return { start, rate, full };
}

/** Formats shared by the schema; registered on a convict instance by the loader. */
const stringList = {
  validate(value: unknown): void {
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
      throw invalid('must be a list of strings', value);
    }
  },
  coerce: (value: string): string[] =>
    value.split(',').map((item) => item.trim()).filter((item) => item !== ''),
};

export const FORMATS = {
  duration: {
    validate(value: unknown): void {
      const ms = parseDurationMs(value);
      if (ms === undefined) throw invalid(`must be ${DURATION_HELP}`, value);
      // Node clamps longer timers to 1 ms: a "720h" grace time would close every connection.
      if (ms > MAX_TIMER_MS) throw invalid('must be at most 24 days (596h)', value);
    },
    coerce: (value: string): string => value,
  },
  boolean: {
    validate(value: unknown): void {
      if (typeof value !== 'boolean') throw invalid('must be true or false (yes/no and on/off also work)', value);
    },
    coerce: booleanOrAsIs,
  },
  'listen-address': { validate: listenAddress },
  'user-name': {
    validate(value: unknown): void {
      if (typeof value !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(value)) {
        throw invalid('must be 1-64 letters, digits, ".", "_" or "-"', value);
      }
    },
  },
  'optional-listen-address': {
    validate(value: unknown): void {
      if (value === '') return;
      listenAddress(value);
    },
  },
  'string-list': stringList,
  'address-range-list': {
    validate(value: unknown): void {
      stringList.validate(value);
      const bad = (value as string[]).find((entry) => parseAddressRange(entry) === undefined);
      if (bad !== undefined) throw invalid(`${JSON.stringify(bad)} is not an IP address or CIDR range (such as 10.0.0.0/8 or fd00::/8)`, value);
    },
    coerce: (value: string): string[] => stringList.coerce(value),
  },
  'kex-list': algorithmList(SUPPORTED_ALGORITHMS.kex, UNSERVABLE_KEX),
  'cipher-list': algorithmList(SUPPORTED_ALGORITHMS.cipher),
  'mac-list': algorithmList(SUPPORTED_ALGORITHMS.mac),
  'public-key-list': algorithmList(SUPPORTED_ALGORITHMS.publicKey),
  'positive-int': {
    validate(value: unknown): void {
      if (!Number.isInteger(value) || (value as number) < 1) throw invalid('must be an integer of 1 or more', value);
    },
    coerce: integerOrAsIs,
  },
  'non-negative-int': {
    validate(value: unknown): void {
      if (!Number.isInteger(value) || (value as number) < 0) throw invalid('must be an integer of 0 or more', value);
    },
    coerce: integerOrAsIs,
  },
  'max-startups': {
    validate(value: unknown): void {
      if (parseMaxStartups(value) === undefined) {
        throw invalid('must be "start:rate:full" (start >= 1, rate 1-100 percent, full >= start) or a single number', value);
      }
    },
    coerce: (value: string): string => value,
  },
  'http-path': {
    validate(value: unknown): void {
      if (typeof value !== 'string' || !/^\/[\x21-\x7e]*$/.test(value)) {
        throw invalid('must be an HTTP path starting with "/"', value);
      }
    },
  },
  'proxy-policy': caseInsensitiveEnum('proxy-policy', ['use', 'require', 'ignore', 'reject']),
  'log-level': caseInsensitiveEnum('log-level', ['trace', 'debug', 'info', 'warn', 'warning', 'error', 'fatal', 'panic']),
  'log-format': caseInsensitiveEnum('log-format', ['json', 'text']),
  backend: caseInsensitiveEnum('backend', ['local', 'gitlab']),
  'storage-map': {
    validate(value: unknown): void {
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw invalid('must be a map of storage name to directory', value);
      for (const [name, dir] of Object.entries(value)) {
        if (typeof dir !== 'string' || !dir.startsWith('/')) throw invalid(`storage ${JSON.stringify(name)} must map to an absolute directory`, value);
      }
    },
  },
} as const;
