import { createHash } from 'node:crypto';

/** OpenSSH's SHA256 fingerprint of a public key blob, as `ssh-keygen -lf` prints it. */
export function fingerprint(publicBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`;
}
