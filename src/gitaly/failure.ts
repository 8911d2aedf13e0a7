import { Code, ConnectError } from '@connectrpc/connect';
import { GitSshdError, type ErrorClass } from '../errors.js';
import { ERR_GITALY_UNAVAILABLE, GITALY_UNAVAILABLE } from './channels.js';

export const ERR_GITALY = 'ERR_GITALY';
export const ERR_GITALY_AUTH = 'ERR_GITALY_AUTH';
export const ERR_GITALY_TIMEOUT = 'ERR_GITALY_TIMEOUT';
export const GITALY_OVERLOADED = 'GitLab is currently unable to handle this request due to load.';

/** Aborts a call unless Gitaly starts answering within the time. */
export class StartDeadline {
  private timer: NodeJS.Timeout | undefined;
  fired = false;

  constructor(ms: number, controller: AbortController) {
    this.timer = setTimeout(() => {
      this.fired = true;
      controller.abort(new GitSshdError(ERR_GITALY_TIMEOUT, `Gitaly did not answer within ${ms} ms`));
    }, ms);
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export interface Failure {
  /** The gRPC status name for metrics (OK, Unavailable, DeadlineExceeded, ...). */
  readonly code: string;
  /** undefined: nobody's failure (the client left, the server is stopping). */
  readonly errorClass: ErrorClass | undefined;
  readonly error: unknown;
}

/** What a failed Gitaly call means for the user, the metrics and the logs. */
export function classify(err: unknown, state: { aborted: boolean; deadline: StartDeadline; startTimeoutMs: number }): Failure {
  if (state.aborted) return { code: 'Canceled', errorClass: undefined, error: err };
  if (state.deadline.fired) {
    const error = new GitSshdError(ERR_GITALY_TIMEOUT, `Gitaly did not start answering within ${state.startTimeoutMs} ms`, { cause: err, userMessage: GITALY_UNAVAILABLE });
    return { code: 'DeadlineExceeded', errorClass: 'system', error };
  }
  if (err instanceof GitSshdError) return { code: err.code === ERR_GITALY_UNAVAILABLE ? 'Unavailable' : 'Unknown', errorClass: err.errorClass, error: err };
  if (err instanceof ConnectError) {
    const code = Code[err.code];
    switch (err.code) {
      case Code.Unavailable:
        return { code, errorClass: 'system', error: new GitSshdError(ERR_GITALY_UNAVAILABLE, err.message, { cause: err, userMessage: GITALY_UNAVAILABLE }) };
      case Code.ResourceExhausted:
        return { code, errorClass: 'system', error: new GitSshdError(ERR_GITALY_UNAVAILABLE, err.message, { cause: err, userMessage: GITALY_OVERLOADED }) };
      case Code.Unauthenticated:
      case Code.PermissionDenied:
        return {
          code,
          errorClass: 'system',
          error: new GitSshdError(ERR_GITALY_AUTH, err.message, { cause: err, userMessage: `Gitaly refused this server's credentials (${err.rawMessage}); the Gitaly token may be wrong` }),
        };
      default:
        return { code, errorClass: 'system', error: new GitSshdError(ERR_GITALY, err.message, { cause: err, userMessage: `Gitaly: ${err.rawMessage}` }) };
    }
  }
  // The connection went away under a stream (Gitaly stopped, the network broke).
  return { code: 'Unavailable', errorClass: 'system', error: new GitSshdError(ERR_GITALY_UNAVAILABLE, 'lost the connection to Gitaly', { cause: err, userMessage: GITALY_UNAVAILABLE }) };
}

/** git itself failed in Gitaly after it ran (its own messages already reached the user). */
export function isGitFailure(err: unknown): boolean {
  return err instanceof ConnectError && (err.code === Code.Internal || err.code === Code.Unknown);
}
