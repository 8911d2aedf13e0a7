import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { after, before } from 'node:test';
import { kubectl, kubectlOk } from './cluster.js';

/**
 * A namespace of the test file's own, `gsd-<file>-<random>`, made in `before` and deleted
 * in `after` (whether the tests passed or not) with everything in it; cluster-scoped
 * objects the file made (a PersistentVolume, say) are registered with `own` and deleted
 * after the namespace. Deletion is waited for, bounded: the next file starts on an idle node.
 */
export interface TestNamespace {
  /** The namespace's name (only once `before` has run). */
  readonly name: string;
  /** Deletes this cluster-scoped object (`persistentvolume/x`) after the namespace. */
  own(resource: string): void;
}

export function namespaceName(file: string): string {
  const stem = basename(file).replace(/\.test\.ts$/, '').replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 40).replace(/-+$/, '');
  return `gsd-${stem}-${randomBytes(3).toString('hex')}`;
}

export function testNamespace(file: string): TestNamespace {
  let name: string | undefined;
  const owned: string[] = [];
  before(async () => {
    const candidate = namespaceName(file);
    await kubectlOk(['create', 'namespace', candidate]);
    name = candidate;
  });
  after(async () => {
    if (!name) return;
    const deleted = await kubectl(['delete', 'namespace', name, '--wait=true', '--timeout=300s'], { timeoutMs: 330_000 });
    for (const resource of owned) await kubectl(['delete', resource, '--ignore-not-found', '--wait=true', '--timeout=120s'], { timeoutMs: 150_000 });
    if (deleted.code !== 0) throw new Error(`namespace ${name} was not deleted within 300 s: ${deleted.stderr}`);
  });
  return {
    get name(): string {
      if (!name) throw new Error('the test namespace exists only once before() has run');
      return name;
    },
    own(resource: string): void {
      owned.push(resource);
    },
  };
}
