import type { Algorithms } from 'ssh2';
import { DEFAULT_ALGORITHMS, SUPPORTED_ALGORITHMS } from '../config/algorithms.js';
import type { Config } from '../config/types.js';

/**
 * ssh2's defaults, except compression: git packs are already compressed, so zlib would
 * only burn CPU on both ends. The cipher list stays ssh2's (AES-GCM first where the CPU
 * has AES-NI, chacha20-poly1305 included): measured here, OpenSSH's choice of chacha20
 * clones as fast as AES-GCM or AES-CTR through ssh2's native binding (bench/README.md).
 * The key exchanges are always named, so that ssh2's group exchange (which it lists but
 * cannot serve) is never offered.
 */
export function buildAlgorithms(sshd: Config['sshd']): Algorithms {
  const algorithms: Algorithms = { compress: ['none'] };
  if (sshd.ciphers.length > 0) algorithms.cipher = [...sshd.ciphers] as Algorithms['cipher'];
  const kex = sshd.kexAlgorithms.length > 0 ? sshd.kexAlgorithms : DEFAULT_ALGORITHMS.kex;
  algorithms.kex = [...kex] as Algorithms['kex'];
  if (sshd.macs.length > 0) algorithms.hmac = [...sshd.macs] as Algorithms['hmac'];
  return algorithms;
}

/**
 * The user key signature algorithms advertised in `server-sig-algs` (RFC 8308): exactly
 * those authentication accepts, so a client picks one we take (OpenSSH, libssh and
 * Paramiko choose their RSA signature from it).
 */
export function serverSigAlgs(sshd: Config['sshd']): string[] {
  return [...(sshd.publicKeyAlgorithms.length > 0 ? sshd.publicKeyAlgorithms : SUPPORTED_ALGORITHMS.publicKey)];
}
