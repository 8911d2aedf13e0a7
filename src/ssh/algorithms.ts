import type { Algorithms } from 'ssh2';
import type { Config } from '../config/types.js';

/**
 * ssh2's defaults, except compression: git packs are already compressed, so zlib would
 * only burn CPU on both ends. The cipher list stays ssh2's (AES-GCM first where the CPU
 * has AES-NI, chacha20-poly1305 included): measured here, OpenSSH's choice of chacha20
 * clones as fast as AES-GCM or AES-CTR through ssh2's native binding (bench/README.md).
 */
export function buildAlgorithms(sshd: Config['sshd']): Algorithms {
  const algorithms: Algorithms = { compress: ['none'] };
  if (sshd.ciphers.length > 0) algorithms.cipher = [...sshd.ciphers] as Algorithms['cipher'];
  if (sshd.kexAlgorithms.length > 0) algorithms.kex = [...sshd.kexAlgorithms] as Algorithms['kex'];
  if (sshd.macs.length > 0) algorithms.hmac = [...sshd.macs] as Algorithms['hmac'];
  return algorithms;
}
