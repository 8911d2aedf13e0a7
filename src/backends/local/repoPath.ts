import { lstatSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import { ERR_REPO_PATH, policyError, type GitSshdError } from '../../errors.js';
import { onRepoPath } from './fsErrors.js';

export interface RepoLocation {
  /** The canonical name: `team/app` for every spelling of it. */
  readonly name: string;
  /** `<repos_dir>/team/app.git`. */
  readonly dir: string;
}

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const MAX_LENGTH = 255;
const MAX_DEPTH = 20;
/** NAME_MAX of Linux filesystems, in bytes: the repository's directory is its last segment + ".git". */
const NAME_MAX = 255;

function refuse(arg: string, why: string): GitSshdError {
  const shown = JSON.stringify(arg.length > 100 ? `${arg.slice(0, 100)}...` : arg);
  return policyError(ERR_REPO_PATH, `invalid repository path ${shown}: ${why}`);
}

/**
 * Turns what the client asked for (`team/app.git`, `/team/app.git`, `~/team/app`,
 * `team/app/`) into one canonical name and its directory, or refuses it. Only a plain
 * charset is allowed, so nothing a client writes can climb out of the root, name a
 * hidden directory, look like an option to git, or reach inside another repository.
 */
export function locateRepo(arg: string, reposDir: string): RepoLocation {
  if (arg.includes('\0')) throw refuse(arg, 'NUL bytes are not allowed');
  if (/[\x00-\x1f\x7f]/.test(arg)) throw refuse(arg, 'control characters are not allowed');
  if (arg.length > MAX_LENGTH) throw refuse(arg, `longer than ${MAX_LENGTH} characters`);
  let path = arg;
  const rootPrefix = reposDir.endsWith(sep) ? reposDir : reposDir + sep;
  if (path.startsWith(rootPrefix)) path = path.slice(rootPrefix.length);
  else if (path.startsWith('~/')) path = path.slice(2);
  else if (path.startsWith('~')) throw refuse(arg, 'home directories of other users are not repositories');
  path = path.replace(/^\/+/, '').replace(/\/+$/, '');
  if (path.endsWith('.git')) path = path.slice(0, -'.git'.length);
  if (path === '') throw refuse(arg, 'no repository named');
  const segments = path.split('/');
  if (segments.length > MAX_DEPTH) throw refuse(arg, `deeper than ${MAX_DEPTH} directories`);
  for (const segment of segments) {
    if (segment === '') throw refuse(arg, 'empty path segment');
    if (segment === '.' || segment === '..') throw refuse(arg, `"${segment}" segments are not allowed`);
    if (!SEGMENT.test(segment)) {
      throw refuse(arg, 'only letters, digits, ".", "_", "-" and "/" are allowed, and no segment may start with "." or "-"');
    }
    if (segment.endsWith('.git') && segment !== segments[segments.length - 1]) {
      throw refuse(arg, 'a repository cannot be inside another repository');
    }
    if (segment.endsWith('.lock')) throw refuse(arg, 'segments ending in ".lock" are not allowed');
  }
  const last = segments[segments.length - 1] ?? '';
  if (Buffer.byteLength(`${last}.git`) > NAME_MAX) throw refuse(arg, 'the repository name is too long for the filesystem');
  return { name: segments.join('/'), dir: join(reposDir, ...segments.slice(0, -1), `${segments.at(-1)}.git`) };
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function leavesRoot(location: RepoLocation): GitSshdError {
  return policyError(ERR_REPO_PATH, `invalid repository path "${location.name}": it leads outside the repository root`);
}

/**
 * The names are clean, but the disk may not be: a symlink in the tree (an operator's alias
 * for a renamed repository, or one planted) decides what git really opens. This returns
 * the repository as it really is: its real directory, and the name of that directory
 * relative to the real root, so that access is granted, git is run and the log is written
 * for the same repository. For a repository not created yet, the real path of its nearest
 * existing ancestor decides. A path that leaves the root, or leads to something that is
 * not a repository path, is refused; filesystem errors are classified by `repoPathError`.
 */
export function resolveRepo(location: RepoLocation, reposDir: string): RepoLocation {
  return onRepoPath(location.name, () => {
    const root = realpathSync(reposDir);
    let probe = location.dir;
    const tail: string[] = [];
    let real: string | undefined;
    while (real === undefined) {
      try {
        real = join(realpathSync(probe), ...tail);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
        // A symlink whose target does not exist (yet) cannot be proven to stay inside.
        if (isSymlink(probe)) throw leavesRoot(location);
        const parent = dirname(probe);
        if (parent === probe) throw leavesRoot(location);
        tail.unshift(basename(probe));
        probe = parent;
      }
    }
    const inside = relative(root, real);
    if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) throw leavesRoot(location);
    // Reached through a symlink, the target must itself be a valid repository path.
    let target: RepoLocation;
    try {
      target = locateRepo(inside.split(sep).join('/'), root);
    } catch {
      throw policyError(ERR_REPO_PATH, `invalid repository path "${location.name}": it leads to a directory that is not a repository`);
    }
    if (target.dir !== real) {
      throw policyError(ERR_REPO_PATH, `invalid repository path "${location.name}": it leads to a directory that is not a repository`);
    }
    return target;
  });
}
