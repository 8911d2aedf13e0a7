import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { ERR_USERS_FILE, GitSshdError } from '../../errors.js';
import type { Logger } from '../../logging/logger.js';
import { parseUsersFile, type UsersIndex } from './usersFile.js';

const TEMPLATE = `# Users of the embedded git-sshd backend. Changes apply within a second, no restart.
# Add yourself in one step:  npm run add-user -- --name me --key ~/.ssh/id_ed25519.pub
#
# users:
#   - name: alice
#     keys: ["ssh-ed25519 AAAA... alice@laptop"]
#     access: { "*": admin }              # repository glob -> read | write | admin
#   - name: bob
#     keys: ["ssh-rsa AAAA..."]
#     access: { "team/*": write, "docs": read }
users: []
`;

export interface UsersStoreOptions {
  readonly file: string;
  /** A missing file is created from a template only when the operator did not name it. */
  readonly createIfMissing: boolean;
  readonly log: Logger;
  /** Coalesces the bursts of events an editor's save produces. */
  readonly debounceMs?: number;
}

/**
 * The users file, kept current: watched (the directory, so editors' rename-on-save and
 * Kubernetes ConfigMap symlink swaps are seen), re-read on change, swapped in only when
 * the whole file is valid. A bad edit is logged and the last good file stays in force.
 */
export class UsersStore {
  private index: UsersIndex;
  private digest: string;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly options: UsersStoreOptions;

  constructor(options: UsersStoreOptions) {
    this.options = options;
    if (!existsSync(options.file)) {
      if (!options.createIfMissing) {
        throw new GitSshdError(ERR_USERS_FILE, `users file ${options.file} does not exist`);
      }
      mkdirSync(dirname(options.file), { recursive: true, mode: 0o700 });
      writeFileSync(options.file, TEMPLATE, { mode: 0o600, flag: 'wx' });
      options.log.warn({ file: options.file }, 'created an empty users file; nobody can log in until a user is added');
    }
    const text = this.read();
    this.index = parseUsersFile(options.file, text);
    this.digest = sha256(text);
    options.log.info({ file: options.file, users: this.index.users.size, keys: this.index.keys.size }, 'loaded users file');
  }

  get current(): UsersIndex {
    return this.index;
  }

  watch(): void {
    const dir = dirname(this.options.file);
    const name = basename(this.options.file);
    this.watcher = watch(dir, { persistent: false }, (_event, changed) => {
      if (changed && changed !== name && !changed.startsWith('..')) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload(), this.options.debounceMs ?? 100);
    });
    this.watcher.on('error', (err) => this.options.log.error({ err }, 'users file watcher failed; changes need a restart'));
  }

  /** Re-reads the file now; returns whether a new version was taken. */
  reload(): boolean {
    const { log, file } = this.options;
    let text: string;
    try {
      text = this.read();
    } catch (err) {
      log.error({ file, reason: (err as NodeJS.ErrnoException).code ?? String(err) }, 'cannot read users file; keeping the last good one');
      return false;
    }
    const digest = sha256(text);
    if (digest === this.digest) return false;
    try {
      this.index = parseUsersFile(file, text);
      this.digest = digest;
      log.info({ file, users: this.index.users.size, keys: this.index.keys.size }, 'reloaded users file');
      return true;
    } catch (err) {
      log.error({ file, error: (err as Error).message }, 'users file is invalid; keeping the last good one');
      this.digest = digest;
      return false;
    }
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }

  private read(): string {
    return readFileSync(this.options.file, 'utf8');
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
