import { split } from 'shlex';
import { ERR_BAD_COMMAND, ERR_UNKNOWN_COMMAND, GitSshdError } from '../errors.js';
import type { GitService } from '../backends/backend.js';

export type Command =
  | { readonly kind: 'welcome' }
  | { readonly kind: 'git'; readonly service: GitService; readonly repo: string }
  /** A gitlab-shell command that only some backends provide. */
  | { readonly kind: 'backend'; readonly name: string; readonly args: readonly string[] };

const GIT_SERVICES = new Set<string>(['git-upload-pack', 'git-receive-pack', 'git-upload-archive']);

/** Commands of gitlab-shell that need the GitLab backend. */
const GITLAB_ONLY = new Set<string>([
  'git-lfs-authenticate',
  'git-lfs-transfer',
  '2fa_recovery_codes',
  '2fa_verify',
  'personal_access_token',
]);

const MAX_COMMAND_LENGTH = 4096;

function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 61)}...` : clean;
}

/**
 * Parses an exec request the way gitlab-shell does: shell words, `git upload-pack` is
 * `git-upload-pack`, the first word picks the command. Throws coded errors whose
 * messages are safe to show the client (exit status 128).
 */
export function parseCommand(text: string): Command {
  if (text.length > MAX_COMMAND_LENGTH) throw new GitSshdError(ERR_BAD_COMMAND, 'Invalid command: too long', { errorClass: 'policy' });
  if (text.includes('\0')) throw new GitSshdError(ERR_BAD_COMMAND, 'Invalid command: NUL byte', { errorClass: 'policy' });
  let words: string[];
  try {
    words = split(text);
  } catch {
    throw new GitSshdError(ERR_BAD_COMMAND, 'Invalid command: unbalanced quotes or escapes', { errorClass: 'policy' });
  }
  if (words.length === 0) return { kind: 'welcome' };
  if (words[0] === 'git' && words.length > 1) words = [`git-${words[1]}`, ...words.slice(2)];
  const [name, ...args] = words as [string, ...string[]];
  if (GIT_SERVICES.has(name)) {
    if (args.length !== 1 || args[0] === '') {
      throw new GitSshdError(ERR_BAD_COMMAND, `Invalid command: ${name} takes exactly one repository`, { errorClass: 'policy' });
    }
    return { kind: 'git', service: name as GitService, repo: args[0] as string };
  }
  if (GITLAB_ONLY.has(name)) return { kind: 'backend', name, args };
  throw unknownCommand(name);
}

/** The error for a command nobody here runs; `backendOnly` says another backend has it. */
export function unknownCommand(name: string, backendOnly = false): GitSshdError {
  const suffix = backendOnly ? ' (it needs the GitLab backend)' : '';
  return new GitSshdError(ERR_UNKNOWN_COMMAND, `Unknown command: ${printable(name)}${suffix}`, { errorClass: 'policy' });
}
