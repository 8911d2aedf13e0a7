import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';

/**
 * ssh2 reads OpenSSH keys and the traditional PEM forms (PKCS#1, SEC1) but not PKCS#8
 * ("BEGIN PRIVATE KEY"), which is what openssl and many secret generators write. This
 * re-encodes such a key into a form ssh2 reads; anything else is returned untouched.
 */
export function toSsh2Readable(data: Buffer): Buffer {
  const text = data.toString('utf8');
  if (!text.includes('-----BEGIN PRIVATE KEY-----')) return data;
  const key = createPrivateKey(text);
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return Buffer.from(key.export({ type: 'pkcs1', format: 'pem' }) as string);
    case 'ec':
      return Buffer.from(key.export({ type: 'sec1', format: 'pem' }) as string);
    case 'ed25519':
      return ed25519ToOpenSsh(key);
    default:
      throw new Error(`unsupported PKCS#8 key type ${key.asymmetricKeyType ?? 'unknown'}`);
  }
}

function sshString(value: Buffer | string): Buffer {
  const body = typeof value === 'string' ? Buffer.from(value) : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

/** The "openssh-key-v1" container (PROTOCOL.key in OpenSSH), unencrypted, one key. */
function ed25519ToOpenSsh(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d as string, 'base64url');
  const publicKey = Buffer.from(jwk.x as string, 'base64url');
  const publicBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(publicKey)]);
  const check = randomBytes(4);
  let privateSection = Buffer.concat([
    check,
    check,
    sshString('ssh-ed25519'),
    sshString(publicKey),
    sshString(Buffer.concat([seed, publicKey])),
    sshString(''),
  ]);
  const padding = (8 - (privateSection.length % 8)) % 8;
  privateSection = Buffer.concat([privateSection, Buffer.from(Array.from({ length: padding }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(publicBlob),
    sshString(privateSection),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  return Buffer.from(`-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`);
}
