import { GitSshdError } from '../../../errors.js';
import type { BackendCommand, CommandIO, Identity, RequestContext } from '../../backend.js';
import type { GitlabApiClient } from '../apiClient.js';
import type { RecoveryCodesResponse } from '../api.js';
import { readWord } from './readWord.js';

const ANSWER_LIMIT = 1024;
/** gitlab-shell waits for the answer forever; an abandoned prompt should not hold a session. */
const ANSWER_TIMEOUT_MS = 5 * 60_000;

/** `2fa_recovery_codes`: asks yes/no on the channel, then shows new recovery codes. */
export class TwoFactorRecover implements BackendCommand {
  constructor(private readonly deps: { readonly api: GitlabApiClient }) {}

  async run(identity: Identity, _args: readonly string[], io: CommandIO, context: RequestContext): Promise<number> {
    await io.write(
      'stdout',
      'Are you sure you want to generate new two-factor recovery codes?\nAny existing recovery codes you saved will be invalidated. (yes/no)\n',
    );
    const answer = await readWord(io.stdin, ANSWER_LIMIT, ANSWER_TIMEOUT_MS, context.signal);
    if (answer !== 'yes') {
      await io.write('stdout', '\nNew recovery codes have *not* been generated. Existing codes will remain valid.\n');
      return 0;
    }
    let codes: readonly string[];
    try {
      const response = await this.deps.api.post<RecoveryCodesResponse>('/two_factor_recovery_codes', {
        body: { key_id: identity.keyId },
        signal: context.signal,
        correlationId: context.correlationId,
      });
      if (!response.success) throw new GitSshdError('ERR_2FA', response.message ?? 'recovery codes were not generated', { errorClass: 'policy' });
      codes = response.recovery_codes ?? [];
    } catch (err) {
      const message = err instanceof GitSshdError && err.errorClass === 'policy' ? err.message : 'Internal API unreachable';
      await io.write('stdout', `\nAn error occurred while trying to generate new recovery codes.\n${message}\n`);
      return 0;
    }
    await io.write(
      'stdout',
      `\nYour two-factor authentication recovery codes are:\n\n${codes.join('\n')}\n\n` +
        'During sign in, use one of the codes above when prompted for\n' +
        'your two-factor code. Then, visit your Profile Settings and add\n' +
        'a new device so you do not lose access to your account again.\n',
    );
    return 0;
  }
}
