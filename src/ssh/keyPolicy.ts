/**
 * Which user keys may log in, decided from the key itself, as a current OpenSSH does: no
 * DSA (unless `ssh-dss` is listed in `sshd.public_key_algorithms`), RSA moduli of at least
 * `sshd.min_rsa_key_bits` (OpenSSH's RequiredRSASize), and only key types whose algorithms
 * are listed. The signature algorithm (`ssh-rsa` is SHA-1) is checked apart, per request.
 * Used at authentication for every backend, and by the users file at load.
 */
export interface KeyPolicy {
  readonly allowedAlgorithms: readonly string[];
  readonly minRsaKeyBits: number;
}

/** OpenSSH's RequiredRSASize default since 9.1. */
export const DEFAULT_MIN_RSA_KEY_BITS = 2048;

/** The signature algorithms a key type can sign with. */
const SIGNATURE_ALGORITHMS: Readonly<Record<string, readonly string[]>> = {
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** The key type a public key blob declares (its first SSH string), or undefined if malformed. */
export function keyTypeOf(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || blob.length < 4 + length) return undefined;
  return blob.toString('latin1', 4, 4 + length);
}

/** Bits of an `ssh-rsa` blob's modulus (string type, mpint e, mpint n), or undefined if malformed. */
export function rsaModulusBits(blob: Buffer): number | undefined {
  let offset = 0;
  const next = (): Buffer | undefined => {
    if (blob.length < offset + 4) return undefined;
    const length = blob.readUInt32BE(offset);
    if (blob.length < offset + 4 + length) return undefined;
    const field = blob.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
    return field;
  };
  if (next()?.toString('latin1') !== 'ssh-rsa' || next() === undefined) return undefined;
  const modulus = next();
  if (!modulus) return undefined;
  let first = 0;
  while (first < modulus.length && modulus[first] === 0) first += 1;
  if (first === modulus.length) return 0;
  return (modulus.length - first - 1) * 8 + (32 - Math.clz32(modulus[first] as number));
}

export interface KeyVerdict {
  readonly keyType: string;
  /** Set for RSA keys. */
  readonly bits?: number;
  /** Why the key may not log in; undefined when it may. */
  readonly refusal?: string;
}

/** Judges a public key blob against the policy. */
export function judgeKey(blob: Buffer, policy: KeyPolicy): KeyVerdict {
  const keyType = keyTypeOf(blob);
  if (keyType === undefined) return { keyType: 'unknown', refusal: 'the key blob is malformed' };
  const usable = SIGNATURE_ALGORITHMS[keyType] ?? [keyType];
  if (!usable.some((algorithm) => policy.allowedAlgorithms.includes(algorithm))) {
    const what = keyType === 'ssh-dss' ? 'DSA keys are' : `${keyType} keys are`;
    return { keyType, refusal: `${what} not accepted (not in sshd.public_key_algorithms)` };
  }
  if (keyType !== 'ssh-rsa') return { keyType };
  const bits = rsaModulusBits(blob);
  if (bits === undefined) return { keyType, refusal: 'the RSA key is malformed' };
  if (bits < policy.minRsaKeyBits) {
    return { keyType, bits, refusal: `RSA key of ${bits} bits is below sshd.min_rsa_key_bits (${policy.minRsaKeyBits})` };
  }
  return { keyType, bits };
}
