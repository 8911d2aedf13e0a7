import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ERR_GIT_INIT, GitSshdError } from '../../errors.js';
import { runGit } from '../../git/runGit.js';

/** Bare repositories on disk: recognising, creating, and keeping HEAD useful. */
export class Repositories {
  private readonly gitEnv: Readonly<Record<string, string>>;

  constructor(options: { gitEnv: Readonly<Record<string, string>> }) {
    this.gitEnv = options.gitEnv;
  }

  exists(dir: string): boolean {
    try {
      return statSync(dir).isDirectory() && existsSync(`${dir}/HEAD`) && existsSync(`${dir}/objects`);
    } catch {
      return false;
    }
  }

  async create(dir: string, signal: AbortSignal): Promise<void> {
    mkdirSync(dirname(dir), { recursive: true });
    const result = await runGit(['-c', 'init.defaultBranch=main', 'init', '--bare', '--quiet', dir], {
      env: this.gitEnv,
      signal,
    });
    if (result.code !== 0) {
      throw new GitSshdError(ERR_GIT_INIT, `git init failed with ${result.code}: ${result.stderr.trim()}`);
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
