/**
 * One error class with a code, decided on by code (never by message text). The class of
 * an error says who is at fault: `policy` errors are the user being told no (shown to
 * them, not counted as failures); `system` errors are ours (counted, logged, alerted on).
 */
export type ErrorClass = 'policy' | 'system';

export class GitSshdError extends Error {
  readonly code: string;
  readonly errorClass: ErrorClass;
  /** Lines the backend wants the user to read before the error (GitLab's console messages). */
  readonly consoleMessages: readonly string[];
  /**
   * What the user reads for a system error, when there is something useful to say (a full
   * disk); otherwise they read "internal server error" and the correlation id.
   */
  readonly userMessage: string | undefined;

  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; errorClass?: ErrorClass; consoleMessages?: readonly string[]; userMessage?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GitSshdError';
    this.code = code;
    this.errorClass = options.errorClass ?? 'system';
    this.consoleMessages = options.consoleMessages ?? [];
    this.userMessage = options.userMessage;
  }
}

export const ERR_CONFIG = 'ERR_CONFIG';
export const ERR_HOST_KEYS = 'ERR_HOST_KEYS';
export const ERR_USERS_FILE = 'ERR_USERS_FILE';
export const ERR_REPO_PATH = 'ERR_REPO_PATH';
export const ERR_ACCESS_DENIED = 'ERR_ACCESS_DENIED';
export const ERR_NOT_FOUND = 'ERR_NOT_FOUND';
export const ERR_UNKNOWN_COMMAND = 'ERR_UNKNOWN_COMMAND';
export const ERR_BAD_COMMAND = 'ERR_BAD_COMMAND';
export const ERR_GIT_INIT = 'ERR_GIT_INIT';
export const ERR_INTERNAL = 'ERR_INTERNAL';
/** The filesystem refused a repository path for a reason that is ours (permissions, I/O). */
export const ERR_REPO_FS = 'ERR_REPO_FS';
export const ERR_DISK_FULL = 'ERR_DISK_FULL';
export const ERR_GIT_SPAWN = 'ERR_GIT_SPAWN';
export const ERR_MONITORING = 'ERR_MONITORING';

export function policyError(code: string, message: string): GitSshdError {
  return new GitSshdError(code, message, { errorClass: 'policy' });
}

export function isCode(err: unknown, code: string): err is GitSshdError {
  return err instanceof GitSshdError && err.code === code;
}
