import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ERR_GIT_INIT, GitSshdError } from '../../errors.js';
import { runGit } from '../../git/runGit.js';
import { diskFullError, repoPathError } from './fsErrors.js';

/** What git prints when the disk is full or a quota is reached (its exit code does not say). */
const GIT_DISK_FULL = /No space left on device|Disk quota exceeded/;

/** Bare repositories on disk: recognising, creating, and keeping HEAD useful. */
export class Repositories {
  private readonly gitEnv: Readonly<Record<string, string>>;

  constructor(options: { gitEnv: Readonly<Record<string, string>> }) {
    this.gitEnv = options.gitEnv;
  }

  /** Whether `dir` is a bare repository; a path error that is not "missing" is thrown, classified. */
  exists(dir: string, name: string): boolean {
    try {
      return statSync(dir).isDirectory() && statSync(join(dir, 'HEAD')).isFile() && statSync(join(dir, 'objects')).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw repoPathError(err, name);
    }
  }

  /**
   * Creates a bare repository at `dir`, all or nothing: it is made under a hidden temporary
   * name (one no client can ask for) and renamed into place, so that a full disk or a
   * failed `git init` leaves no half-made repository, nor the parent directories made for it.
   */
  async create(dir: string, name: string, signal: AbortSignal): Promise<void> {
    const parent = dirname(dir);
    let madeFrom: string | undefined;
    const temp = join(parent, `.tmp-${randomBytes(6).toString('hex')}-${basename(dir)}`.slice(0, 255));
    try {
      madeFrom = mkdirSync(parent, { recursive: true });
      const result = await runGit(['-c', 'init.defaultBranch=main', 'init', '--bare', '--quiet', temp], { env: this.gitEnv, signal });
      if (result.code !== 0) {
        if (GIT_DISK_FULL.test(result.stderr)) throw diskFullError(name, new Error(result.stderr.trim()));
        throw new GitSshdError(ERR_GIT_INIT, `git init failed with ${result.code}: ${result.stderr.trim()}`);
      }
      try {
        renameSync(temp, dir);
      } catch (err) {
        // Another push created it meanwhile: theirs stands, ours goes.
        const code = (err as NodeJS.ErrnoException).code;
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && this.exists(dir, name)) {
          removeQuietly(temp);
          return;
        }
        throw err;
      }
    } catch (err) {
      removeQuietly(temp);
      if (madeFrom !== undefined) removeEmptyDirs(parent, madeFrom);
      throw repoPathError(err, name);
    }
  }

  /**
   * A repository created by a push has HEAD pointing at `main` whatever was pushed; if
   * that branch does not exist, point HEAD at the branch that does (main, master, or the
   * first), so that a clone checks something out instead of warning about a bad HEAD.
   */
  async repairHead(dir: string, signal: AbortSignal): Promise<void> {
    const options = { env: this.gitEnv, cwd: dir, signal };
    if ((await runGit(['rev-parse', '--verify', '--quiet', 'HEAD'], options)).code === 0) return;
    const listed = await runGit(['for-each-ref', '--format=%(refname)', 'refs/heads/'], options);
    const branches = listed.stdout.split('\n').filter((line) => line !== '');
    const target =
      branches.find((ref) => ref === 'refs/heads/main') ?? branches.find((ref) => ref === 'refs/heads/master') ?? branches[0];
    if (target) await runGit(['symbolic-ref', 'HEAD', target], options);
  }
}

/** Removes the directories made for a repository, from `dir` up to `top`, while they are empty (another push may be using them). */
function removeEmptyDirs(dir: string, top: string): void {
  for (let current = dir; current.startsWith(top); current = dirname(current)) {
    try {
      rmdirSync(current);
    } catch {
      return;
    }
  }
}

/** Cleanup after a failure must not hide the failure (rmSync throws ENOTDIR even with force). */
function removeQuietly(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch {
    // Nothing was made there.
  }
}
