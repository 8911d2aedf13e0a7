import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../logging/logger.js';

/** Repositories may be nested in groups; deeper than this is not a layout we create. */
const MAX_DEPTH = 8;
const INCOMING_PREFIX = 'tmp_objdir-incoming-';

export interface StaleIncomingOptions {
  readonly reposDir: string;
  /** A directory none of whose files changed for this long is a crash's leftover, not a push. */
  readonly olderThanMs: number;
  readonly log: Logger;
  readonly onRemoved?: (count: number) => void;
  readonly now?: () => number;
}

/** The newest modification time of anything under `path` (itself included). */
async function newestChange(path: string): Promise<number> {
  let newest = (await stat(path)).mtimeMs;
  for (const entry of await readdir(path, { withFileTypes: true, recursive: true })) {
    const info = await stat(join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name)).catch(() => undefined);
    if (info) newest = Math.max(newest, info.mtimeMs);
  }
  return newest;
}

/**
 * Removes the partial packs (objects/tmp_objdir-incoming-*) that a killed or crashed git
 * receive-pack left in the repositories under `reposDir`: git's own gc keeps them for two
 * weeks. Only those untouched for `olderThanMs`, so a push in progress is never touched.
 * Resolves with how many were removed.
 */
export async function removeStaleIncoming(options: StaleIncomingOptions): Promise<number> {
  const now = options.now ?? Date.now;
  let removed = 0;
  const visit = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const path = join(dir, entry.name);
      if (entry.name === 'objects') {
        for (const object of await readdir(path, { withFileTypes: true }).catch(() => [])) {
          if (!object.isDirectory() || !object.name.startsWith(INCOMING_PREFIX)) continue;
          const incoming = join(path, object.name);
          const age = now() - (await newestChange(incoming).catch(() => now()));
          if (age < options.olderThanMs) continue;
          await rm(incoming, { recursive: true, force: true });
          removed += 1;
          options.log.info({ path: incoming, age_hours: Math.round(age / 3_600_000) }, 'removed a partial push left by a crash');
        }
      } else if (depth < MAX_DEPTH) {
        await visit(path, depth + 1);
      }
    }
  };
  await visit(options.reposDir, 0);
  if (removed > 0) options.onRemoved?.(removed);
  return removed;
}

/** Runs `removeStaleIncoming` now and then every `everyMs`, never two at once; returns the stop. */
export function sweepStaleIncoming(options: StaleIncomingOptions & { readonly everyMs: number }): () => void {
  let running = false;
  const sweep = (): void => {
    if (running) return;
    running = true;
    void removeStaleIncoming(options)
      .catch((err: unknown) => options.log.warn({ err }, 'could not sweep partial pushes'))
      .finally(() => (running = false));
  };
  sweep();
  const timer = setInterval(sweep, options.everyMs).unref();
  return () => clearInterval(timer);
}
