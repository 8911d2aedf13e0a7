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
