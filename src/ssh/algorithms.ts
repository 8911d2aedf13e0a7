import type { Algorithms } from 'ssh2';
import type { Config } from '../config/types.js';

/**
 * Our defaults where ssh2's cost us. The client's preference order picks the cipher, and
 * OpenSSH prefers chacha20-poly1305, which ssh2 runs far slower than AES (its native
 * binding uses AES-NI through OpenSSL), so the default list leaves chacha20 out: OpenSSH
 * then settles on AES. Compression is off: git packs are already compressed, so zlib
 * would only burn CPU. Operators can set `sshd.ciphers` to anything ssh2 supports.
 */
export const DEFAULT_CIPHERS = [
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'aes128-ctr',
  'aes192-ctr',
  'aes256-ctr',
];

export function buildAlgorithms(sshd: Config['sshd']): Algorithms {
  const algorithms: Algorithms = {
    cipher: (sshd.ciphers.length > 0 ? [...sshd.ciphers] : DEFAULT_CIPHERS) as Algorithms['cipher'],
    compress: ['none'],
  };
  if (sshd.kexAlgorithms.length > 0) algorithms.kex = [...sshd.kexAlgorithms] as Algorithms['kex'];
  if (sshd.macs.length > 0) algorithms.hmac = [...sshd.macs] as Algorithms['hmac'];
  return algorithms;
}
