import picomatch from 'picomatch';

export type AccessLevel = 'read' | 'write' | 'admin';
export const ACCESS_LEVELS: readonly AccessLevel[] = ['read', 'write', 'admin'];

export interface Grant {
  readonly pattern: string;
  readonly level: AccessLevel;
  readonly matches: (path: string) => boolean;
}

/**
 * The glob is compiled on first use, not when the users file is loaded: with many users,
 * compiling every grant up front cost more than reading the file, for users who may not
 * log in before the next edit.
 */
export function compileGrant(pattern: string, level: AccessLevel): Grant {
  let matcher: ((path: string) => boolean) | undefined;
  const matches = (path: string): boolean => {
    if (!matcher) {
      const normalized = pattern.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\.git$/, '');
      matcher = picomatch(normalized === '' ? '**' : normalized, { dot: false, nobrace: false });
    }
    return matcher(path);
  };
  return { pattern, level, matches };
}

const rank = (level: AccessLevel): number => ACCESS_LEVELS.indexOf(level);

/**
 * A grant covers the paths its glob matches and everything below them, so `"*": admin`
 * covers `team/app` and `team/*` covers `team/app/sub`. Grants add up: the highest
 * level among the grants that cover a path wins.
 */
export function accessLevel(grants: readonly Grant[], repoName: string): AccessLevel | undefined {
  const segments = repoName.split('/');
  const candidates = segments.map((_, i) => segments.slice(0, i + 1).join('/'));
  let best: AccessLevel | undefined;
  for (const grant of grants) {
    if (best !== undefined && rank(grant.level) <= rank(best)) continue;
    if (candidates.some((candidate) => grant.matches(candidate))) best = grant.level;
  }
  return best;
}

export function allows(level: AccessLevel | undefined, needed: AccessLevel): boolean {
  return level !== undefined && rank(level) >= rank(needed);
}
