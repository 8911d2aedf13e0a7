import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { ERR_GIT_SPAWN, GitSshdError } from '../errors.js';

/** Why git could not start, in words an operator reads in the log. */
const CAUSES: Readonly<Record<string, string>> = {
  ENOENT: 'git (or the working directory) was not found; check PATH and that git is installed',
  EACCES: 'git is not executable by the server',
  EMFILE: 'the server has run out of file descriptors (raise its open-files limit)',
  ENFILE: 'the system has run out of file descriptors',
  EAGAIN: 'the system refused a new process (process limit reached)',
  ENOMEM: 'not enough memory to start a process',
};

/** Failures that pass once load drops: the user is asked to retry rather than told of an internal error. */
const TRANSIENT = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'ENOMEM']);

/**
 * Starts git and resolves once the process exists, or rejects with ERR_GIT_SPAWN naming
 * the cause. Node reports a failed spawn in three ways: an exception (most errnos), an
 * 'error' event with the stdio pipes set up (ENOENT, EACCES, EAGAIN), or an 'error' event
 * with NO stdio at all (EMFILE, ENFILE), where touching `child.stdin` is a TypeError that
 * would hide the cause. Callers only ever see a started child with its pipes.
 */
export function spawnGit(args: readonly string[], options: SpawnOptions): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn('git', args, options);
    } catch (err) {
      reject(spawnError(err));
      return;
    }
    const onError = (err: Error): void => {
      child.off('spawn', onSpawn);
      reject(spawnError(err));
    };
    const onSpawn = (): void => {
      child.off('error', onError);
      resolve(child);
    };
    child.once('error', onError);
    child.once('spawn', onSpawn);
  });
}

export function spawnError(err: unknown): GitSshdError {
  const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
  const why = CAUSES[code] ?? (err as Error).message;
  return new GitSshdError(ERR_GIT_SPAWN, `cannot start git: ${code}: ${why}`, {
    cause: err,
    ...(TRANSIENT.has(code) ? { userMessage: 'the server is too busy to start git right now; please try again shortly' } : {}),
  });
}
