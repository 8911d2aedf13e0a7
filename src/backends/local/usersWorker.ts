import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { GitSshdError } from '../../errors.js';
import type { KeyPolicy } from '../../ssh/keyPolicy.js';
import { UsersCompiler, type UsersDiff } from './usersCompiler.js';

export interface UsersWorkerData {
  readonly file: string;
  readonly policy: KeyPolicy;
  /** How long the file must stay unchanged after it was read for the read to count. */
  readonly settleMs: number;
}

export type UsersWorkerReply =
  | { readonly id: number; readonly kind: 'ok'; readonly diff: UsersDiff; readonly parseMs: number }
  | { readonly id: number; readonly kind: 'unchanged' }
  /** The file changed while it was being read: read it again later. */
  | { readonly id: number; readonly kind: 'unstable' }
  | { readonly id: number; readonly kind: 'error'; readonly code: string | undefined; readonly message: string };

/**
 * The users file is read, parsed and validated here, off the event loop: the main thread
 * only applies the (usually small) difference to its index.
 */
const { file, policy, settleMs } = workerData as UsersWorkerData;
const compiler = new UsersCompiler(file, policy);
let lastDigest: string | undefined;

const stamp = (): string => {
  const stat = statSync(file);
  return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
};

async function load(id: number): Promise<UsersWorkerReply> {
  let before: string;
  let text: string;
  try {
    before = stamp();
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { id, kind: 'error', code: (err as NodeJS.ErrnoException).code, message: String((err as Error).message) };
  }
  const digest = createHash('sha256').update(text).digest('hex');
  if (digest === lastDigest) return { id, kind: 'unchanged' };
  const started = performance.now();
  let compiled: ReturnType<UsersCompiler['compile']>;
  try {
    compiled = compiler.compile(text);
  } catch (err) {
    if (!(err instanceof GitSshdError)) throw err;
    if (await changedSince(before)) return { id, kind: 'unstable' };
    lastDigest = digest;
    return { id, kind: 'error', code: err.code, message: err.message };
  }
  const parseMs = performance.now() - started;
  // A writer that is still writing (not a rename into place) changes the file again soon.
  if (await changedSince(before)) return { id, kind: 'unstable' };
  compiled.commit();
  lastDigest = digest;
  return { id, kind: 'ok', diff: compiled.diff, parseMs };
}

async function changedSince(before: string): Promise<boolean> {
  await delay(settleMs);
  try {
    return stamp() !== before;
  } catch {
    return true;
  }
}

parentPort?.on('message', (message: { id: number }) => {
  void load(message.id).then(
    (reply) => parentPort?.postMessage(reply),
    (err: unknown) => parentPort?.postMessage({ id: message.id, kind: 'error', code: undefined, message: String((err as Error)?.stack ?? err) }),
  );
});
