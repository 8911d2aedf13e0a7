import { GitSshdError } from '../../../errors.js';
import type { BackendCommand, CommandIO, Identity, RequestContext } from '../../backend.js';
import type { GitlabApiClient } from '../apiClient.js';
import type { SuccessResponse } from '../api.js';
import { readWord } from './readWord.js';

const OTP_LIMIT = 64;
export const OTP_TIMEOUT_MS = 30_000;

/**
 * `2fa_verify`: the user types an OTP or approves a push notification; whichever answers
 * first wins, within 30 seconds (as gitlab-shell).
 */
export class TwoFactorVerify implements BackendCommand {
  constructor(private readonly deps: { readonly api: GitlabApiClient; readonly timeoutMs?: number }) {}

  async run(identity: Identity, _args: readonly string[], io: CommandIO, context: RequestContext): Promise<number> {
    await io.write('stdout', 'OTP: ');
    const deadline = AbortSignal.any([context.signal, AbortSignal.timeout(this.deps.timeoutMs ?? OTP_TIMEOUT_MS)]);
    const done = new AbortController();
    const signal = AbortSignal.any([deadline, done.signal]);
    const check = (path: string, extra: Record<string, string>) =>
      this.deps.api.post<SuccessResponse>(path, { body: { key_id: identity.keyId, ...extra }, signal, correlationId: context.correlationId });

    const manual = (async (): Promise<string> => {
      const otp = await readWord(io.stdin, OTP_LIMIT, this.deps.timeoutMs ?? OTP_TIMEOUT_MS, signal);
      if (signal.aborted) throw new Error('context deadline exceeded');
      if (otp === '') throw new GitSshdError('ERR_2FA', 'OTP cannot be blank', { errorClass: 'policy' });
      const response = await check('/two_factor_manual_otp_check', { otp_attempt: otp });
      if (!response.success) throw new GitSshdError('ERR_2FA', response.message ?? 'OTP is invalid', { errorClass: 'policy' });
      return 'OTP validation successful. Git operations are now allowed.';
    })();
    // A failed push check says nothing: the user may still type the OTP.
    const push = check('/two_factor_push_otp_check', {}).then(
      (response) => (response.success ? 'OTP has been validated by Push Authentication. Git operations are now allowed.' : never(signal)),
      () => never(signal),
    );
    push.catch(() => undefined);
    let message: string;
    try {
      message = await Promise.race([manual, push]);
    } catch (err) {
      const reason = deadline.aborted ? 'context deadline exceeded' : err instanceof GitSshdError && err.errorClass === 'policy' ? err.message : 'Internal API unreachable';
      message = `OTP validation failed: ${reason}`;
    } finally {
      done.abort();
    }
    manual.catch(() => undefined);
    await io.write('stdout', `\n${message}\n`);
    return 0;
  }
}

/** A promise that settles only by rejecting when the signal aborts. */
function never(signal: AbortSignal): Promise<string> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) return reject(new Error('aborted'));
    signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
  });
}
