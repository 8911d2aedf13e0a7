import { createRequire } from 'node:module';

interface Ssh2Constants {
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

export const SUPPORTED_ALGORITHMS = {
  kex: constants.SUPPORTED_KEX,
  cipher: constants.SUPPORTED_CIPHER,
  mac: constants.SUPPORTED_MAC,
  publicKey: constants.SUPPORTED_SERVER_HOST_KEY,
} as const;

/**
 * User key algorithms accepted by default: as OpenSSH since 8.8/9.x, everything but
 * `ssh-rsa` (SHA-1 signatures) and `ssh-dss` (DSA, removed from OpenSSH 10). An operator
 * who must still serve such clients lists them in `sshd.public_key_algorithms`.
 */
export const DEFAULT_PUBLIC_KEY_ALGORITHMS: readonly string[] = SUPPORTED_ALGORITHMS.publicKey.filter(
  (algorithm) => algorithm !== 'ssh-rsa' && algorithm !== 'ssh-dss',
);
