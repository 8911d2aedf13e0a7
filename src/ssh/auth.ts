import ssh2, { type AuthContext, type PublicKeyAuthContext } from 'ssh2';
import type { AccessBackend, Identity } from '../backends/backend.js';
import type { Logger } from '../logging/logger.js';

const { utils } = ssh2;

export type AuthOutcome =
  | 'accepted'
  | 'key_acceptable'
  | 'wrong_user'
  | 'method_not_allowed'
  | 'unknown_key'
  | 'bad_signature'
  | 'backend_error';

/** How many different keys one connection may ask about (OpenSSH's MaxAuthTries is 6). */
const MAX_KEYS_PER_CONNECTION = 16;

export interface PublicKeyAuthOptions {
  readonly user: string;
  readonly backend: AccessBackend;
  readonly log: Logger;
  readonly signal: AbortSignal;
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
    let identity: Identity | undefined;
    try {
      identity = await this.lookup(pk.key.data);
    } catch (err) {
      this.options.log.error({ err }, 'key lookup failed');
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
      found = this.options.backend.identify(publicKey, this.options.signal);
      this.lookups.set(id, found);
      // A failed lookup (backend down) is not an answer: let the next attempt ask again.
      found.catch(() => this.lookups.delete(id));
    }
    return found;
  }
}

function verify(ctx: PublicKeyAuthContext): boolean {
  const parsed = utils.parseKey(ctx.key.data);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) return false;
  if (key.type !== ctx.key.algo) return false;
  return key.verify(ctx.blob as Buffer, ctx.signature as Buffer, ctx.hashAlgo) === true;
}
