import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitLocal, makeWorkTree } from './client.js';
import { allowedReply, type Reply } from './gitlabApi.js';

export const SECRET = 'gitaly-test-secret\n';
export const TOKEN = 'the-gitaly-token';
export const RELATIVE = '@hashed/d4/73/d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f86f2ee4c1d3e1d4f5f.git';
export const FORCE_PUSH_REFUSED = 'GitLab: You are not allowed to force push code to a protected branch on this project.';

export function blobOf(publicLine: string): string {
  return publicLine.split(' ')[1]!.replace(/=+$/, '');
}

/**
 * The repository in the peer's storage, with a pre-receive hook as GitLab's protected
 * branches would answer a force push, recording the GL_* environment it ran with.
 */
export function makeGitalyRepository(storage: string, hookLog: string): string {
  const repo = join(storage, RELATIVE);
  mkdirSync(join(repo, '..'), { recursive: true });
  gitLocal(['clone', '-q', '--bare', makeWorkTree({ 'README.md': 'hello from gitaly\n', 'a.txt': 'a\n' }), repo]);
  gitLocal(['config', 'uploadpack.allowFilter', 'true'], repo);
  protectBranches(repo, hookLog);
  return repo;
}

/**
 * A pre-receive hook that refuses force pushes as GitLab's protected branches do, and
 * records the GL_* environment it ran with in `hookLog` when there is one.
 */
export function protectBranches(repo: string, hookLog?: string): void {
  const hook = join(repo, 'hooks', 'pre-receive');
  writeFileSync(
    hook,
    `#!/bin/sh
${hookLog ? `env | grep -E '^GL_' | sort > ${hookLog}` : ''}
zero=0000000000000000000000000000000000000000
while read old new ref; do
  if [ "$old" != "$zero" ] && [ "$new" != "$zero" ] && ! git merge-base --is-ancestor "$old" "$new"; then
    echo "${FORCE_PUSH_REFUSED}" >&2
    exit 1
  fi
done
`,
  );
  chmodSync(hook, 0o755);
}

export function gitalyAllowed(address: string, token: string, extra: { features?: Record<string, string>; gitConfigOptions?: string[] } = {}): Reply {
  const reply = allowedReply({ relativePath: RELATIVE, projectPath: 'group/project', userId: 7, username: 'alice' });
  const body = reply.body as Record<string, any>;
  return {
    status: 200,
    body: {
      ...body,
      gl_key_id: 11,
      ...(extra.gitConfigOptions ? { git_config_options: extra.gitConfigOptions } : {}),
      gitaly: { ...body.gitaly, address, token, features: extra.features ?? { 'gitaly-feature-sidechannel-speedup': 'true', 'not-a-gitaly-flag': 'x' } },
    },
  };
}

