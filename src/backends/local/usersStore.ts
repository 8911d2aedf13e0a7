import { existsSync, mkdirSync, readFileSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ERR_USERS_FILE, GitSshdError } from '../../errors.js';
import type { Logger } from '../../logging/logger.js';
import type { KeyPolicy } from '../../ssh/keyPolicy.js';
import { UsersCompiler } from './usersCompiler.js';
import { applyUsersDiff, DEFAULT_KEY_POLICY, EMPTY_INDEX, type UsersIndex } from './usersFile.js';
import type { UsersWorkerData, UsersWorkerReply } from './usersWorker.js';

const TEMPLATE = `# Users of the embedded git-sshd backend. Changes apply within a second, no restart.
# Add yourself in one step:  npm run add-user -- --name me --key ~/.ssh/id_ed25519.pub
#
# users:
#   - name: alice
#     keys: ["ssh-ed25519 AAAA... alice@laptop"]
#     access: { "*": admin }              # repository glob -> read | write | admin
#   - name: bob
#     keys: ["rsa-sha2-512 AAAA..."]
#     access: { "team/*": write, "docs": read }
users: []
`;

/** Files up to this size are read on the main thread at start (a few milliseconds). */
const READ_AT_ONCE_BYTES = 256 * 1024;
/** Refused keys named one by one in the log per load; the rest are counted. */
const REFUSED_KEYS_LOGGED = 10;
/** How many times in a row a file seen changing while read is read again before giving up until the next change. */
const MAX_UNSTABLE_RETRIES = 20;

export interface UsersStoreOptions {
  readonly file: string;
  /** A missing file is created from a template only when the operator did not name it. */
  readonly createIfMissing: boolean;
  readonly log: Logger;
  /** Which keys in the file may log in (sshd.public_key_algorithms, sshd.min_rsa_key_bits). */
  readonly keyPolicy?: KeyPolicy;
  /** Coalesces the bursts of events an editor's save produces. */
  readonly debounceMs?: number;
  /** How long the file must stay unchanged after a read for the read to count. */
  readonly settleMs?: number;
}

/**
 * The users file, kept current: watched (the directory, so editors' rename-on-save and
 * Kubernetes ConfigMap symlink swaps are seen), re-read on change, swapped in only when
 * the whole file is valid. A bad edit is logged and the last good file stays in force.
 * Reading, parsing and validating run in a worker thread, and only what changed is
 * applied here: with 100,000 users the event loop keeps serving connections and probes.
 */
export class UsersStore {
  private index: UsersIndex = EMPTY_INDEX;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly options: UsersStoreOptions;
  /** Started on the first load that needs it: a small file at start is read right here. */
  private worker: Worker | undefined;
  /** Whether the worker has taken a file yet: its first answer is the whole file, not a difference. */
  private workerPrimed = false;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (reply: UsersWorkerReply) => void; reject: (err: Error) => void }>();
  private running: Promise<boolean> | undefined;
  private again = false;
  private unstableRetries = 0;
  private closed = false;

  private constructor(options: UsersStoreOptions) {
    this.options = options;
  }

  private startWorker(): Worker {
    const { options } = this;
    const data: UsersWorkerData = { file: options.file, policy: options.keyPolicy ?? DEFAULT_KEY_POLICY, settleMs: options.settleMs ?? 50 };
    const worker = startWorker(data);
    worker.unref();
    worker.on('message', (reply: UsersWorkerReply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) worker.unref();
      waiter?.resolve(reply);
    });
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => this.failAll(new Error(`users file worker exited with ${code}`)));
    return worker;
  }

  /** Opens the file (creating it from a template when allowed) and loads it; an invalid file is an error. */
  static async open(options: UsersStoreOptions): Promise<UsersStore> {
    if (!existsSync(options.file)) {
      if (!options.createIfMissing) {
        throw new GitSshdError(ERR_USERS_FILE, `users file ${options.file} does not exist`);
      }
      mkdirSync(dirname(options.file), { recursive: true, mode: 0o700 });
      writeFileSync(options.file, TEMPLATE, { mode: 0o600, flag: 'wx' });
      options.log.warn({ file: options.file }, 'created an empty users file; nobody can log in until a user is added');
    }
    const store = new UsersStore(options);
    // A small file is read at once, without waiting for a worker thread to boot (a second
    // or more on a busy machine); the worker takes over from the first reload.
    if (statSync(options.file).size <= READ_AT_ONCE_BYTES) {
      const started = performance.now();
      const { diff } = new UsersCompiler(options.file, options.keyPolicy ?? DEFAULT_KEY_POLICY).compile(readFileSync(options.file, 'utf8'));
      store.take({ id: 0, kind: 'ok', diff, parseMs: performance.now() - started }, 'loaded users file');
      return store;
    }
    try {
      for (let attempt = 0; ; attempt += 1) {
        const reply = await store.ask();
        if (reply.kind === 'error') throw new GitSshdError(ERR_USERS_FILE, reply.message);
        if (reply.kind === 'unstable' && attempt < MAX_UNSTABLE_RETRIES) continue;
        if (reply.kind !== 'ok') throw new GitSshdError(ERR_USERS_FILE, `users file ${options.file} kept changing while it was read`);
        store.take(reply, 'loaded users file');
        return store;
      }
    } catch (err) {
      store.close();
      throw err;
    }
  }

  get current(): UsersIndex {
    return this.index;
  }

  watch(): void {
    const dir = dirname(this.options.file);
    const name = basename(this.options.file);
    this.watcher = watch(dir, { persistent: false }, (_event, changed) => {
      if (changed && changed !== name && !changed.startsWith('..')) return;
      this.schedule(this.options.debounceMs ?? 100);
    });
    this.watcher.on('error', (err) => this.options.log.error({ err }, 'users file watcher failed; changes need a restart'));
  }

  /**
   * Re-reads the file now; resolves with whether a new version was taken. Reloads never
   * overlap: one asked for while another runs starts when it ends.
   */
  reload(): Promise<boolean> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.reloadOnce().finally(() => {
      this.running = undefined;
      if (this.again && !this.closed) {
        this.again = false;
        void this.reload();
      }
    });
    return this.running;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.watcher?.close();
    void this.worker?.terminate();
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(), delayMs);
    this.timer.unref();
  }

  private async reloadOnce(): Promise<boolean> {
    const { log, file } = this.options;
    let reply: UsersWorkerReply;
    try {
      reply = await this.ask();
    } catch (err) {
      log.error({ file, err }, 'users file worker failed; keeping the last good users');
      return false;
    }
    switch (reply.kind) {
      case 'unchanged':
        return false;
      case 'unstable':
        // Caught mid-write: the writer's next event will bring us back; if it never comes, retry.
        if (this.unstableRetries++ < MAX_UNSTABLE_RETRIES) this.schedule(this.options.debounceMs ?? 100);
        log.info({ file }, 'users file changed while being read; reading it again shortly');
        return false;
      case 'error':
        if (reply.code && reply.code !== ERR_USERS_FILE) {
          log.error({ file, reason: reply.code }, 'cannot read users file; keeping the last good one');
        } else {
          log.error({ file, error: reply.message }, 'users file is invalid; keeping the last good one');
        }
        return false;
      case 'ok':
        this.unstableRetries = 0;
        this.take(reply, 'reloaded users file');
        return true;
    }
  }

  private take(reply: Extract<UsersWorkerReply, { kind: 'ok' }>, message: string): void {
    const started = performance.now();
    const { diff } = reply;
    const base = this.worker !== undefined && !this.workerPrimed ? EMPTY_INDEX : this.index;
    if (this.worker !== undefined) this.workerPrimed = true;
    this.index = applyUsersDiff(base, diff);
    const { log, file } = this.options;
    for (const refusal of diff.refused.slice(0, REFUSED_KEYS_LOGGED)) {
      log.warn({ file, entry: refusal.where, key_fingerprint: refusal.fingerprint, reason: refusal.reason }, 'users file key refused by policy; it cannot log in');
    }
    log.info(
      {
        file,
        users: diff.users,
        keys: diff.keys,
        changed: diff.changed.length,
        removed: diff.removed.length,
        ...(diff.refused.length > 0 ? { keys_refused: diff.refused.length } : {}),
        parse_ms: Math.round(reply.parseMs),
        apply_ms: Math.round(performance.now() - started),
      },
      message,
    );
  }

  private ask(): Promise<UsersWorkerReply> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker ??= this.startWorker();
      this.worker.ref();
      this.worker.postMessage({ id });
    });
  }

  private failAll(err: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(err);
    this.waiting.clear();
  }
}

/**
 * The worker runs the compiled usersWorker.js; when this module runs from source under tsx
 * (tests, benchmarks), the worker registers tsx first: a worker does not inherit its loader.
 */
function startWorker(data: UsersWorkerData): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./usersWorker.js', here), { workerData: data });
  const source = new URL('./usersWorker.ts', here).href;
  const code = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(source)}); })`;
  return new Worker(code, { eval: true, workerData: data });
}
