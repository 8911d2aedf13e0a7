import { createRequire } from 'node:module';

/** Node 24 is the first LTS with ML-KEM (`crypto.encapsulate`) for mlkem768x25519-sha256. */
export const MIN_NODE_MAJOR = 24;

/** Why this Node cannot run git-sshd, or undefined when it can. */
export function runtimeProblem(nodeVersion: string = process.versions.node): string | undefined {
  const major = Number(nodeVersion.split('.')[0]);
  if (major >= MIN_NODE_MAJOR) return undefined;
  return (
    `git-sshd needs Node >= ${MIN_NODE_MAJOR}, this is ${nodeVersion}. ` +
    '`npm start` runs the Node 24 that `npm ci` installs (node_modules/.bin/node); ' +
    'run node_modules/.bin/node dist/main.js, not the system node'
  );
}

/**
 * Whether ssh2 loaded its native crypto binding (AES-GCM, chacha20-poly1305 in C). Without
 * it ssh2 falls back, silently, to JavaScript crypto several times slower: an addon built
 * for another Node's ABI is the usual cause (scripts/postinstall.mjs rebuilds it).
 */
export function sshNativeCrypto(): boolean {
  const crypto = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as { bindingAvailable: boolean };
  return crypto.bindingAvailable;
}
