import { execFileSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A deterministic, poorly compressible repository of about `mb` megabytes: AES-256-CTR
 * keystream from a fixed key (the "seed") as blob contents, plus 200 small text files,
 * one commit with fixed dates, packed once. Same bytes on every machine and run.
 */
export function makeRepository(dir: string, mb: number, seed = 'git-sshd-bench-seed'): string {
  const tree = join(dir, 'tree');
  const git = (args: string[], cwd?: string): string =>
    execFileSync('git', args, {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z' },
    }).trim();
  git(['init', '-q', '-b', 'main', tree]);
  const key = Buffer.alloc(32);
  key.write(seed);
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const files = 10;
  const size = Math.round((mb * 1024 * 1024) / files);
  for (let i = 0; i < files; i += 1) writeFileSync(join(tree, `blob-${i}.bin`), cipher.update(Buffer.alloc(size)));
  for (let i = 0; i < 200; i += 1) writeFileSync(join(tree, `src-${i}.txt`), `line ${i}\n`.repeat(50));
  git(['add', '.'], tree);
  git(['-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', 'commit', '-q', '-m', 'bench'], tree);
  const bare = join(dir, 'repo.git');
  mkdirSync(dir, { recursive: true });
  git(['clone', '-q', '--bare', tree, bare]);
  git(['repack', '-adq'], bare);
  return bare;
}
