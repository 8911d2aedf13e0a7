import ssh2, { type AuthContext, type PublicKeyAuthContext } from 'ssh2';
import type { AccessBackend, Identity, RequestContext } from '../backends/backend.js';
import type { Logger } from '../logging/logger.js';

const { utils } = ssh2;

export type AuthOutcome =
  | 'accepted'
  | 'key_acceptable'
  | 'wrong_user'
  | 'method_not_allowed'
  | 'unknown_key'
  | 'algorithm_not_allowed'
  | 'bad_signature'
  | 'backend_error';

/** How many different keys one connection may ask about (OpenSSH's MaxAuthTries is 6). */
const MAX_KEYS_PER_CONNECTION = 16;

export interface PublicKeyAuthOptions {
  readonly user: string;
  /** User key algorithms accepted (`sshd.public_key_algorithms`); empty = all ssh2 supports. */
  readonly allowedAlgorithms?: readonly string[];
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

  constructor(options: PublicKeyAuthOptions) {
    this.options = options;
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
    const allowed = this.options.allowedAlgorithms ?? [];
    if (allowed.length > 0 && !allowed.includes(signatureAlgorithm(pk))) {
      pk.reject(['publickey']);
      return 'algorithm_not_allowed';
    }
    let identity: Identity | undefined;
    try {
      identity = await this.lookup(pk.key.data);
    } catch (err) {
      // A lookup cut short because the client left is nobody's failure.
      if (this.options.context.signal.aborted) this.options.log.debug({ err }, 'key lookup abandoned');
      else this.options.log.error({ err }, 'key lookup failed');
      pk.reject(['publickey']);
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
    pk.accept();
    return 'accepted';
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

function verify(ctx: PublicKeyAuthContext): boolean {
  const parsed = utils.parseKey(ctx.key.data);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) return false;
  if (key.type !== ctx.key.algo) return false;
  return key.verify(ctx.blob as Buffer, ctx.signature as Buffer, ctx.hashAlgo) === true;
}
