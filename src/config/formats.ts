import { isIP } from 'node:net';
import { DURATION_HELP, parseDurationMs } from './duration.js';
import type { ListenAddress } from './types.js';

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

function listenAddress(value: unknown): void {
  if (typeof value !== 'string' || parseListenAddress(value) === undefined) {
    throw new Error('must be an address "host:port", "[ipv6]:port" or ":port" with a port from 0 to 65535');
  }
}

function caseInsensitiveEnum(name: string, allowed: readonly string[]) {
  return {
    name,
    validate(value: unknown): void {
      if (typeof value !== 'string' || !allowed.includes(value.toLowerCase())) {
        throw new Error(`must be one of ${allowed.join(', ')} (case-insensitive)`);
      }
    },
    coerce: (value: string) => value,
  };
}

/** Formats shared by the schema; registered on a convict instance by the loader. */
export const FORMATS = {
  duration: {
    validate(value: unknown): void {
      if (parseDurationMs(value) === undefined) throw new Error(`must be ${DURATION_HELP}`);
    },
    coerce: (value: string): string => value,
  },
  'listen-address': { validate: listenAddress },
  'optional-listen-address': {
    validate(value: unknown): void {
      if (value === '') return;
      listenAddress(value);
    },
  },
  'string-list': {
    validate(value: unknown): void {
      if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
        throw new Error('must be a list of strings');
      }
    },
    coerce: (value: string): string[] =>
      value.split(',').map((item) => item.trim()).filter((item) => item !== ''),
  },
  'positive-int': {
    validate(value: unknown): void {
      if (!Number.isInteger(value) || (value as number) < 1) throw new Error('must be an integer of 1 or more');
    },
    coerce: (value: string): number => Number(value),
  },
  'non-negative-int': {
    validate(value: unknown): void {
      if (!Number.isInteger(value) || (value as number) < 0) throw new Error('must be an integer of 0 or more');
    },
    coerce: (value: string): number => Number(value),
  },
  'http-path': {
    validate(value: unknown): void {
      if (typeof value !== 'string' || !/^\/[\x21-\x7e]*$/.test(value)) {
        throw new Error('must be an HTTP path starting with "/"');
      }
    },
  },
  'proxy-policy': caseInsensitiveEnum('proxy-policy', ['use', 'require', 'ignore', 'reject']),
  'log-level': caseInsensitiveEnum('log-level', ['trace', 'debug', 'info', 'warn', 'warning', 'error', 'fatal', 'panic']),
  'log-format': caseInsensitiveEnum('log-format', ['json', 'text']),
  backend: caseInsensitiveEnum('backend', ['local']),
} as const;
