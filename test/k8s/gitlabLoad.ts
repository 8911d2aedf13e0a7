import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { gitLocal, makeWorkTree, temporaryDir, type ClientKey, type RunResult } from '../helpers/client.js';

export type OperationKind = 'clone' | 'slow-clone' | 'push';

/** One git operation of the stream, with its outcome. */
export interface Operation {
  readonly kind: OperationKind;
  readonly worker: number;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly ok: boolean;
  /** The branch and commit a push sent. */
  readonly pushed?: { readonly ref: string; readonly commit: string };
  /** What went wrong (git's stderr, fsck's complaint). */
  readonly failure?: string;
}

export interface GitClient {
  /** git with this key, through the Service; `args` name the URL themselves. */
  git(key: ClientKey, args: string[], cwd?: string): Promise<RunResult>;
  /** The same, with the server's output reaching git at `bytesPerSecond`. */
  slowGit(key: ClientKey, bytesPerSecond: number, args: string[]): Promise<RunResult>;
  url(repo: string): string;
}

/**
 * A continuous stream of clones (each fsck-checked), throttled clones that stay in flight
 * for seconds, and pushes of new branches, one worker per entry of `workers`, until `stop`
 * aborts; every operation is recorded. Each worker starts its next operation when the last
 * one ends, so the stream is bounded by the workers' number.
 */
export async function gitStream(options: {
  client: GitClient;
  key: ClientKey;
  repo: string;
  workers: readonly OperationKind[];
  slowBytesPerSecond: number;
  stop: AbortSignal;
}): Promise<Operation[]> {
  const operations: Operation[] = [];
  const scratch = temporaryDir('git-sshd-k8s-load-');
  const worker = async (kind: OperationKind, index: number): Promise<void> => {
    for (let round = 0; !options.stop.aborted; round++) {
      const startedAt = performance.now();
      const outcome = await operate(kind, join(scratch, `${index}-${round}`), `refs/heads/load/${index}-${round}`);
      operations.push({ kind, worker: index, startedAt, endedAt: performance.now(), ...outcome });
    }
  };
  const operate = async (kind: OperationKind, dir: string, ref: string): Promise<Omit<Operation, 'kind' | 'worker' | 'startedAt' | 'endedAt'>> => {
    try {
      if (kind === 'push') {
        const work = makeWorkTree({ 'LOAD.md': `${ref}\n` });
        const commit = gitLocal(['rev-parse', 'HEAD'], work);
        const pushed = await options.client.git(options.key, ['push', '-q', options.client.url(options.repo), `HEAD:${ref}`], work);
        rmSync(work, { recursive: true, force: true });
        return pushed.code === 0 ? { ok: true, pushed: { ref, commit } } : { ok: false, failure: pushed.stderr };
      }
      const args = ['clone', '-q', '--bare', options.client.url(options.repo), dir];
      const cloned = kind === 'clone' ? await options.client.git(options.key, args) : await options.client.slowGit(options.key, options.slowBytesPerSecond, args);
      if (cloned.code !== 0) return { ok: false, failure: cloned.stderr };
      try {
        gitLocal(['fsck', '--no-progress', '--no-dangling'], dir);
      } catch (err) {
        return { ok: false, failure: `fsck: ${(err as Error).message}` };
      }
      return { ok: true };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  await Promise.all(options.workers.map((kind, index) => worker(kind, index)));
  rmSync(scratch, { recursive: true, force: true });
  return operations;
}
