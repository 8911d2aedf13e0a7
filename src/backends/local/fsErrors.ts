import { ERR_DISK_FULL, ERR_NOT_FOUND, ERR_REPO_FS, ERR_REPO_PATH, GitSshdError, policyError } from '../../errors.js';

/**
 * The one place that decides what a filesystem error on a repository path means. A name
 * that passed validation can still be refused by the disk; whether that is the user's
 * doing (policy: told why, not counted) or ours (system: counted, alerted on) depends on
 * the errno, never on the message:
 *
 * - ENAMETOOLONG, ELOOP: the name or the tree cannot hold such a repository: policy.
 * - ENOENT: nothing by that name (also a directory removed mid-request): not found.
 * - ENOTDIR, EEXIST: a file stands where a directory of the path would be: policy.
 * - ENOSPC, EDQUOT: our disk is full: system, with a message the user can act on.
 * - EACCES, EPERM, EROFS, EIO and the rest: the server cannot use its own tree: system.
 */
export function repoPathError(err: unknown, requestedName: string): GitSshdError {
  if (err instanceof GitSshdError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const invalid = (why: string): GitSshdError => policyError(ERR_REPO_PATH, `invalid repository path "${requestedName}": ${why}`);
  switch (code) {
    case 'ENAMETOOLONG':
      return invalid('the repository name is too long for the filesystem');
    case 'ELOOP':
      return invalid('it leads through a symlink loop');
    case 'ENOENT':
      return notFoundError(requestedName);
    case 'ENOTDIR':
    case 'EEXIST':
      return invalid('a part of it is a file, not a directory');
    case 'ENOSPC':
    case 'EDQUOT':
      return diskFullError(requestedName, err);
    default:
      return new GitSshdError(ERR_REPO_FS, `repository "${requestedName}": the server cannot use its path (${code ?? 'unknown error'})`, {
        cause: err,
      });
  }
}

/** The one answer for "missing" and "not yours", so that a refusal does not tell which. */
export function notFoundError(requestedName: string): GitSshdError {
  return policyError(ERR_NOT_FOUND, `repository '${requestedName}' was not found, or you do not have access to it`);
}

export function diskFullError(requestedName: string, cause: unknown): GitSshdError {
  return new GitSshdError(ERR_DISK_FULL, `repository "${requestedName}": no space left on the repository disk`, {
    cause,
    userMessage: 'the server is out of disk space; nothing was changed, please try again later or tell its administrators',
  });
}

/** Runs a filesystem step on a repository path, classifying whatever it throws. */
export function onRepoPath<T>(requestedName: string, step: () => T): T {
  try {
    return step();
  } catch (err) {
    throw repoPathError(err, requestedName);
  }
}
