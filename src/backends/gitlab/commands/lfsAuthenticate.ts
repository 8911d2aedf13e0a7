import { policyError } from '../../../errors.js';
import type { BackendCommand, CommandIO, GitService, Identity, RequestContext } from '../../backend.js';
import type { GitlabApiClient } from '../apiClient.js';
import type { AllowedResponse, LfsAuthenticateResponse } from '../api.js';

const OPERATIONS: Readonly<Record<string, GitService>> = { download: 'git-upload-pack', upload: 'git-receive-pack' };

export type Authorize = (identity: Identity, service: GitService, repo: string, context: RequestContext) => Promise<AllowedResponse>;

/**
 * `git-lfs-authenticate <repo> download|upload`: checks access as the matching git
 * command would, then prints the header and URL the git-lfs client uses over HTTPS.
 */
export class LfsAuthenticate implements BackendCommand {
  constructor(private readonly deps: { readonly api: GitlabApiClient; readonly authorize: Authorize }) {}

  async run(identity: Identity, args: readonly string[], io: CommandIO, context: RequestContext): Promise<number> {
    const [repo, operation] = args;
    const service = operation === undefined ? undefined : OPERATIONS[operation];
    if (repo === undefined || service === undefined) throw policyError('ERR_DISALLOWED', 'Disallowed command');
    const allowed = await this.deps.authorize(identity, service, repo, context);
    const messages = (allowed.gl_console_messages ?? []).filter((message) => message.trim() !== '');
    if (messages.length > 0) await io.write('stderr', ['remote: ', ...messages.map((message) => `remote: ${message}`), 'remote: ', ''].join('\n'));
    const lfs = await this.deps.api.post<LfsAuthenticateResponse>('/lfs_authenticate', {
      body: { operation, project: repo, key_id: identity.keyId },
      signal: context.signal,
      correlationId: context.correlationId,
    });
    const credentials = Buffer.from(`${lfs.username}:${lfs.lfs_token}`).toString('base64');
    const answer: Record<string, unknown> = {
      header: { Authorization: `Basic ${credentials}` },
      href: `${lfs.repository_http_path}/info/lfs`,
    };
    if (lfs.expires_in) answer.expires_in = lfs.expires_in;
    await io.write('stdout', `${JSON.stringify(answer)}\n`);
    return 0;
  }
}
