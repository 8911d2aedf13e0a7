import ssh2, { type AuthContext, type PublicKeyAuthContext } from 'ssh2';
import type { AccessBackend, Identity, RequestContext } from '../backends/backend.js';
import { DEFAULT_PUBLIC_KEY_ALGORITHMS, SUPPORTED_ALGORITHMS } from '../config/algorithms.js';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../monitoring/metrics.js';
import { fingerprint } from './fingerprint.js';
import { DEFAULT_MIN_RSA_KEY_BITS, judgeKey, type KeyPolicy, type KeyVerdict } from './keyPolicy.js';

const { utils } = ssh2;

export type AuthOutcome =
  | 'accepted'
  | 'key_acceptable'
  | 'wrong_user'
  | 'method_not_allowed'
  | 'unknown_key'
  | 'algorithm_not_allowed'
  | 'key_too_weak'
  | 'bad_signature'
  | 'backend_error';

/** How many different keys one connection may ask about (OpenSSH's MaxAuthTries is 6). */
const MAX_KEYS_PER_CONNECTION = 16;

export interface PublicKeyAuthOptions {
  readonly user: string;
  /** User key algorithms accepted (`sshd.public_key_algorithms`); empty = the defaults (no ssh-rsa, no ssh-dss). */
  readonly allowedAlgorithms?: readonly string[];
  /** `sshd.min_rsa_key_bits`. */
  readonly minRsaKeyBits?: number;
  /** Counts the signature algorithms used and refused. */
  readonly metrics?: Pick<Metrics, 'authSignatureAlgorithms'>;
  readonly backend: AccessBackend;
  readonly log: Logger;
  readonly context: RequestContext;
}

/**
 * Public-key authentication for one connection. A client first asks whether a key is
 * acceptable (no signature), then signs: both ask the backend about the same key, so the
 * answer is kept for the connection. Authentication succeeds only on a valid signature,
 * never on the query (the lesson of CVE-2024-45337).
 */
export class PublicKeyAuth {
  private readonly options: PublicKeyAuthOptions;
  private readonly lookups = new Map<string, Promise<Identity | undefined>>();
  private authenticated: Identity | undefined;
  private readonly policy: KeyPolicy;
  /** Keys already refused on this connection: the reason is logged once per key. */
  private readonly refusedKeys = new Set<string>();

  constructor(options: PublicKeyAuthOptions) {
    this.options = options;
    const listed = options.allowedAlgorithms ?? [];
    this.policy = {
      allowedAlgorithms: listed.length > 0 ? listed : DEFAULT_PUBLIC_KEY_ALGORITHMS,
      minRsaKeyBits: options.minRsaKeyBits ?? DEFAULT_MIN_RSA_KEY_BITS,
    };
  }

  get identity(): Identity | undefined {
    return this.authenticated;
  }

  async handle(ctx: AuthContext): Promise<AuthOutcome> {
    if (ctx.username !== this.options.user) {
      ctx.reject(['publickey']);
      return 'wrong_user';
    }
    if (ctx.method !== 'publickey') {
      ctx.reject(['publickey']);
      return 'method_not_allowed';
    }
    const pk = ctx as PublicKeyAuthContext;
    const algorithm = signatureAlgorithm(pk);
    const verdict = judgeKey(pk.key.data, this.policy);
    if (!this.policy.allowedAlgorithms.includes(algorithm)) {
      const sha1 = algorithm === 'ssh-rsa' ? ' (RSA with SHA-1)' : '';
      return this.refuse(pk, algorithm, verdict, 'algorithm_not_allowed', `signature algorithm ${algorithm}${sha1} is not in sshd.public_key_algorithms`);
    }
    if (verdict.refusal !== undefined) {
      return this.refuse(pk, algorithm, verdict, verdict.bits === undefined ? 'algorithm_not_allowed' : 'key_too_weak', verdict.refusal);
    }
    let identity: Identity | undefined;
    try {
      identity = await this.lookup(pk.key.data);
    } catch (err) {
      // A lookup cut short because the client left is nobody's failure.
      if (this.options.context.signal.aborted) this.options.log.debug({ err }, 'key lookup abandoned');
      else this.options.log.error({ err }, 'key lookup failed');
      // Left unanswered: the connection ends with a disconnect message that says why. A
      // "failure" here would reach the user as "Permission denied" for a key that is fine.
      return 'backend_error';
    }
    if (!identity) {
      pk.reject(['publickey']);
      return 'unknown_key';
    }
    if (!pk.signature || !pk.blob) {
      pk.accept();
      return 'key_acceptable';
    }
    if (!verify(pk)) {
      pk.reject(['publickey']);
      return 'bad_signature';
    }
    this.authenticated = identity;
    this.options.metrics?.authSignatureAlgorithms.inc({ algorithm: algorithmLabel(algorithm), outcome: 'accepted' });
    pk.accept();
    return 'accepted';
  }

  /** A key or signature algorithm the policy refuses: said once per key in the log, counted per attempt. */
  private refuse(pk: PublicKeyAuthContext, algorithm: string, verdict: KeyVerdict, outcome: AuthOutcome, reason: string): AuthOutcome {
    pk.reject(['publickey']);
    this.options.metrics?.authSignatureAlgorithms.inc({ algorithm: algorithmLabel(algorithm), outcome });
    const id = `${algorithm} ${pk.key.data.toString('base64')}`;
    if (this.refusedKeys.has(id) || this.refusedKeys.size >= MAX_KEYS_PER_CONNECTION) return outcome;
    this.refusedKeys.add(id);
    const { keyType, bits } = verdict;
    this.options.log.info(
      { signature_algorithm: algorithm, key_type: keyType, ...(bits === undefined ? {} : { key_bits: bits }), key_fingerprint: fingerprint(pk.key.data), reason },
      'public key refused by policy',
    );
    return outcome;
  }

  private lookup(publicKey: Buffer): Promise<Identity | undefined> {
    const id = publicKey.toString('base64');
    let found = this.lookups.get(id);
    if (!found) {
      if (this.lookups.size >= MAX_KEYS_PER_CONNECTION) return Promise.resolve(undefined);
      found = this.options.backend.identify(publicKey, this.options.context);
      this.lookups.set(id, found);
      // A failed lookup (backend down) is not an answer: let the next attempt ask again.
      found.catch(() => this.lookups.delete(id));
    }
    return found;
  }
}

/** ssh2 reports RSA keys as `ssh-rsa` with a hash; the wire name tells SHA-1 from SHA-2. */
function signatureAlgorithm(ctx: PublicKeyAuthContext): string {
  if (ctx.key.algo !== 'ssh-rsa') return ctx.key.algo;
  if (ctx.hashAlgo === 'sha256') return 'rsa-sha2-256';
  if (ctx.hashAlgo === 'sha512') return 'rsa-sha2-512';
  return 'ssh-rsa';
}

const KNOWN_ALGORITHMS = new Set(SUPPORTED_ALGORITHMS.publicKey);

/** The algorithm as a metric label: a client may send any name. */
function algorithmLabel(algorithm: string): string {
  return KNOWN_ALGORITHMS.has(algorithm) ? algorithm : 'other';
}

function verify(ctx: PublicKeyAuthContext): boolean {
  const parsed = utils.parseKey(ctx.key.data);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) return false;
  if (key.type !== ctx.key.algo) return false;
  return key.verify(ctx.blob as Buffer, ctx.signature as Buffer, ctx.hashAlgo) === true;
}
