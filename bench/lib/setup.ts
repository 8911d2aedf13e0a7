import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeRepository } from './repo.js';

export const BENCH_REPO = 'bench/repo.git';

export interface BenchSetup {
  /** The client's private key file. */
  readonly key: string;
  readonly publicKey: string;
  /** The generated repository, the file:// floor's source. */
  readonly source: string;
  /** A repositories directory named `name` holding its own copy of the source as BENCH_REPO. */
  reposFor(name: string): string;
}

/** A client key and the deterministic repository of `mb` MB, in `work`. */
export function prepare(work: string, mb: number): BenchSetup {
  const key = join(work, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const source = makeRepository(join(work, 'source'), mb);
  return {
    key,
    publicKey: readFileSync(`${key}.pub`, 'utf8').trim(),
    source,
    reposFor(name: string): string {
      const dir = join(work, name);
      mkdirSync(join(dir, 'bench'), { recursive: true });
      // Each server gets its own copy: git refuses repositories owned by another user.
      execFileSync('git', ['clone', '-q', '--bare', '--no-local', source, join(dir, BENCH_REPO)]);
      return dir;
    },
  };
}
