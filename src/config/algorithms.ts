import { createRequire } from 'node:module';

interface Ssh2Constants {
  DEFAULT_KEX: string[];
  SUPPORTED_KEX: string[];
  SUPPORTED_CIPHER: string[];
  SUPPORTED_MAC: string[];
  SUPPORTED_SERVER_HOST_KEY: string[];
}

/**
 * What the pinned ssh2 can negotiate, from its own tables (it exports no public API for
 * them), so that a misspelt algorithm is a config error naming the key, not a crash.
 */
const constants = createRequire(import.meta.url)('ssh2/lib/protocol/constants.js') as Ssh2Constants;

/**
 * Algorithms ssh2 lists but cannot serve, with the reason a config naming one is refused.
 * ssh2's server has no group-exchange side: a client that picks it is disconnected with an
 * empty reason. Every client we meet also speaks curve25519 or a fixed group (group14/16/18).
 */
export const UNSERVABLE_KEX: Readonly<Record<string, string>> = {
  'diffie-hellman-group-exchange-sha256': 'ssh2 has no server side of Diffie-Hellman group exchange',
  'diffie-hellman-group-exchange-sha1': 'ssh2 has no server side of Diffie-Hellman group exchange',
};

const servable = (name: string): boolean => !(name in UNSERVABLE_KEX);

export const SUPPORTED_ALGORITHMS = {
  kex: constants.SUPPORTED_KEX.filter(servable),
  cipher: constants.SUPPORTED_CIPHER,
  mac: constants.SUPPORTED_MAC,
  /** User key signature algorithms ssh2 verifies (the same names as its host key list). */
  publicKey: constants.SUPPORTED_SERVER_HOST_KEY,
} as const;

/** What the server offers when the config names nothing: ssh2's defaults that it can serve. */
export const DEFAULT_ALGORITHMS = {
  kex: constants.DEFAULT_KEX.filter(servable),
} as const;

/**
 * User key algorithms accepted by default: as OpenSSH since 8.8/9.x, everything but
 * `ssh-rsa` (SHA-1 signatures) and `ssh-dss` (DSA, removed from OpenSSH 10). An operator
 * who must still serve such clients lists them in `sshd.public_key_algorithms`.
 */
export const DEFAULT_PUBLIC_KEY_ALGORITHMS: readonly string[] = SUPPORTED_ALGORITHMS.publicKey.filter(
  (algorithm) => algorithm !== 'ssh-rsa' && algorithm !== 'ssh-dss',
);
