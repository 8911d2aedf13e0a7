import { policyError } from '../../../errors.js';
import type { BackendCommand, CommandIO, Identity, RequestContext } from '../../backend.js';
import type { GitlabApiClient } from '../apiClient.js';
import type { PersonalAccessTokenResponse } from '../api.js';

const USAGE = 'Usage: personal_access_token <name> <scope1[,scope2,...]> [ttl_days]';
/** Without a ttl gitlab-shell asks for 30 days. */
const DEFAULT_TTL_DAYS = 30;
const MAX_TTL_DAYS = 36_500;

/** `personal_access_token <name> <scopes> [ttl_days]`: creates a token and prints it. */
export class PersonalAccessToken implements BackendCommand {
  constructor(private readonly deps: { readonly api: GitlabApiClient; readonly allowedScopes: readonly string[]; readonly today?: () => Date }) {}

  async run(identity: Identity, args: readonly string[], io: CommandIO, context: RequestContext): Promise<number> {
    if (args.length < 2 || args.length > 3) throw policyError('ERR_USAGE', USAGE);
    const [name, scopeList, ttlText] = args as [string, string, string | undefined];
    let ttlDays: number | undefined;
    if (ttlText !== undefined) {
      // Bounded so that the date stays a date (gitlab-shell sends "NaN" past its range).
      if (!/^\+?\d{1,5}$/.test(ttlText) || Number(ttlText) > MAX_TTL_DAYS) throw policyError('ERR_USAGE', `Invalid value for days_ttl: '${ttlText}'`);
      ttlDays = Number(ttlText);
    }
    const { allowedScopes } = this.deps;
    // As gitlab-shell: scopes outside pat.allowed_scopes are dropped, not refused.
    const scopes = scopeList.split(',').filter((scope) => scope !== '' && (allowedScopes.length === 0 || allowedScopes.includes(scope)));
    const response = await this.deps.api.post<PersonalAccessTokenResponse>('/personal_access_token', {
      body: {
        key_id: identity.keyId,
        name,
        scopes: scopes.length > 0 ? scopes : null,
        expires_at: expiryDate(this.deps.today?.() ?? new Date(), ttlDays === undefined ? DEFAULT_TTL_DAYS : ttlDays + 1),
      },
      signal: context.signal,
      correlationId: context.correlationId,
    });
    if (!response.success) throw policyError('ERR_PAT', response.message ?? 'the token was not created');
    await io.write('stdout', `Token:   ${response.token ?? ''}\nScopes:  ${(response.scopes ?? []).join(',')}\nExpires: ${response.expires_at ?? ''}\n`);
    return 0;
  }
}

/** The local date `days` from `today`, as YYYY-MM-DD. */
export function expiryDate(today: Date, days: number): string {
  const date = new Date(today.getFullYear(), today.getMonth(), today.getDate() + days);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
