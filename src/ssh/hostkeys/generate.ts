import ssh2 from 'ssh2';

const { utils } = ssh2;

export type GeneratedKeyType = 'ed25519' | 'ecdsa' | 'rsa';

export interface GeneratedKeyPair {
  /** OpenSSH private key text, as ssh2's Server takes it in `hostKeys`. */
  readonly private: string;
  /** The public key as an authorized_keys line without a comment. */
  readonly public: string;
}

/** ssh2's generator (or a stand-in, for tests of the check below). */
export type KeyPairGenerator = (type: GeneratedKeyType, options: { bits?: number }) => GeneratedKeyPair;

const ssh2Generator: KeyPairGenerator = (type, options) => utils.generateKeyPairSync(type as 'ed25519', options as never);

const ATTEMPTS = 5;

/**
 * A key pair from ssh2's generator that ssh2 itself can read back. ssh2 1.17 takes the
 * ed25519 public key out of its DER BIT STRING by stripping every leading zero byte,
 * not just the "unused bits" byte, so when the 32-byte key itself starts with 0x00 (one
 * key in 256) it writes a 31-byte key that no parser accepts ("Malformed OpenSSH private
 * key"). Such a pair is thrown away and another drawn; five unusable pairs in a row
 * (odds 2^-40) is an error, not a loop.
 */
export function generateUsableKeyPair(type: GeneratedKeyType, options: { bits?: number } = {}, generate: KeyPairGenerator = ssh2Generator): GeneratedKeyPair {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const pair = generate(type, options);
    if (!(utils.parseKey(pair.private) instanceof Error) && !(utils.parseKey(pair.public) instanceof Error)) return pair;
  }
  throw new Error(`could not generate a usable ${type} key in ${ATTEMPTS} attempts`);
}
