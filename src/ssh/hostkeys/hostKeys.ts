import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2, { type ParsedKey } from 'ssh2';
import { ERR_HOST_KEYS, GitSshdError } from '../../errors.js';
import type { Logger } from '../../logging/logger.js';
import { fingerprint } from '../fingerprint.js';
import { generateUsableKeyPair, type GeneratedKeyPair } from './generate.js';
import { toSsh2Readable } from './pkcs8.js';

const { utils } = ssh2;

export interface HostKey {
  readonly path: string;
  readonly type: string;
  readonly fingerprint: string;
  /** `type base64`, as in known_hosts and the .pub file. */
  readonly publicKey: string;
  /** What ssh2's Server takes in `hostKeys`. */
  readonly privateKey: Buffer;
}

/** OpenSSH's own set, so clients that pinned any one of them keep working. */
const GENERATED = [
  { name: 'ssh_host_ed25519_key', type: 'ed25519', options: {} },
  { name: 'ssh_host_ecdsa_key', type: 'ecdsa', options: { bits: 256 } },
  { name: 'ssh_host_rsa_key', type: 'rsa', options: { bits: 3072 } },
] as const;

export interface HostKeyOptions {
  /** Files the operator listed; never generated. Empty: the embedded default. */
  readonly files: readonly string[];
  readonly dataDir: string;
  readonly log: Logger;
}

/**
 * The line an operator greps for to publish the fingerprints: one per key served, the
 * same whether the keys came from files or from a Kubernetes Secret.
 */
export function logLoadedHostKey(log: Logger, key: HostKey): void {
  log.info({ path: key.path, type: key.type, fingerprint: key.fingerprint }, 'loaded host key');
}

function readHostKey(path: string): HostKey {
  return parseHostKey(readFileSync(path), path);
}

/** A private host key from its text (OpenSSH, PEM or PKCS#8); `origin` names where it came from. */
export function parseHostKey(text: Buffer, origin: string): HostKey {
  const path = origin;
  const data = toSsh2Readable(text);
  const parsed = utils.parseKey(data);
  if (parsed instanceof Error) throw parsed;
  const key = (Array.isArray(parsed) ? parsed[0] : parsed) as ParsedKey | undefined;
  if (!key) throw new Error('no key in file');
  if (!key.isPrivateKey()) throw new Error('not a private key');
  const blob = key.getPublicSSH();
  return { path, type: key.type, fingerprint: fingerprint(blob), publicKey: `${key.type} ${blob.toString('base64')}`, privateKey: data };
}

function warnIfExposed(path: string, log: Logger): void {
  const mode = statSync(path).mode & 0o777;
  // Group-readable is how the kubelet mounts a Secret for the pod's fsGroup; others, or
  // anyone writing, is what matters.
  if ((mode & 0o027) !== 0) {
    log.warn({ path, mode: mode.toString(8) }, 'host key file is writable by group or readable by others');
  }
}

/** A pair ssh2 can read back (see generateUsableKeyPair), or the start-up error. */
function generateUsablePair(type: (typeof GENERATED)[number]): GeneratedKeyPair {
  try {
    return generateUsableKeyPair(type.type, type.options);
  } catch (err) {
    throw new GitSshdError(ERR_HOST_KEYS, `could not generate a usable ${type.type} host key: ${(err as Error).message}`);
  }
}

/** A fresh set of host keys (ed25519, ECDSA P-256, RSA 3072) by OpenSSH's file names. */
export function generateHostKeySet(): Record<string, string> {
  return Object.fromEntries(GENERATED.map((type) => [type.name, generateUsablePair(type).private]));
}

/** Writes a key once: `wx` fails if another process created it first, and we then read theirs. */
function generate(path: string, type: (typeof GENERATED)[number], log: Logger): void {
  const pair = generateUsablePair(type);
  try {
    writeFileSync(path, pair.private, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  chmodSync(path, 0o600);
  writeFileSync(`${path}.pub`, `${pair.public} git-sshd\n`, { mode: 0o644 });
  log.info({ path, type: type.type }, 'generated host key');
}

/**
 * Loads the host keys. Keys the operator listed are never generated: an unreadable one
 * is logged and skipped. The embedded default generates what is missing in the data
 * directory once and reuses it on every later start. No key at all stops the process.
 */
export function loadHostKeys(options: HostKeyOptions): HostKey[] {
  const { log } = options;
  let paths: string[];
  if (options.files.length > 0) {
    paths = [...options.files];
  } else {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    paths = GENERATED.map((type) => {
      const path = join(options.dataDir, type.name);
      try {
        statSync(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        generate(path, type, log);
      }
      return path;
    });
  }

  const keys: HostKey[] = [];
  for (const path of paths) {
    try {
      const key = readHostKey(path);
      warnIfExposed(path, log);
      if (keys.some((other) => other.type === key.type)) {
        log.warn({ path, type: key.type }, 'skipped host key: another key of the same type is already loaded');
        continue;
      }
      keys.push(key);
      logLoadedHostKey(log, key);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      log.error({ path, reason }, 'skipped host key that could not be loaded');
    }
  }
  if (keys.length === 0) {
    throw new GitSshdError(ERR_HOST_KEYS, `no usable host key among ${paths.join(', ')}`);
  }
  return keys;
}
