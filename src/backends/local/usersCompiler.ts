import jsyaml from 'js-yaml';
import ssh2 from 'ssh2';
import { ERR_USERS_FILE, GitSshdError } from '../../errors.js';
import { fingerprint } from '../../ssh/fingerprint.js';
import { judgeKey, type KeyPolicy } from '../../ssh/keyPolicy.js';
import { ACCESS_LEVELS, type AccessLevel } from './access.js';

const { utils } = ssh2;

/** One user as plain data (it crosses from the worker thread to the main thread). */
export interface UserRecord {
  readonly name: string;
  readonly access: ReadonlyArray<readonly [string, AccessLevel]>;
  readonly keys: readonly KeyRecord[];
}

export interface KeyRecord {
  /** The public key blob, base64: what a client presents. */
  readonly id: string;
  readonly type: string;
  readonly fingerprint: string;
  readonly comment: string;
}

/** A key of the file that may not log in (too weak, or of an algorithm not accepted). */
export interface RefusedKey {
  readonly where: string;
  readonly fingerprint: string;
  readonly reason: string;
}

/** What changed since the previous successful compile: the main thread applies it to its index. */
export interface UsersDiff {
  /** Users added or changed, in file order. */
  readonly changed: readonly UserRecord[];
  readonly removed: readonly string[];
  readonly users: number;
  readonly keys: number;
  readonly refused: readonly RefusedKey[];
}

interface CompiledEntry {
  readonly json: string;
  readonly record: UserRecord;
  readonly refused: ReadonlyArray<{ readonly keyIndex: number; readonly fingerprint: string; readonly reason: string }>;
}

export type KeyResult = { readonly key: KeyRecord } | { readonly refused: string } | { readonly invalid: string };

export const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const USER_FIELDS = new Set(['name', 'keys', 'access']);

function fail(file: string, where: string, message: string, cause?: unknown): GitSshdError {
  return new GitSshdError(ERR_USERS_FILE, `${file}: ${where}: ${message}`, { cause });
}

const isMapping = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Parses and validates users files, remembering what it saw: a user entry unchanged since
 * the last compile is not validated again, and a key line seen before is not parsed again.
 * Any problem rejects the whole file (the caller keeps the last good one). Meant to run in
 * a worker thread: with 100,000 users the YAML alone takes seconds.
 */
export class UsersCompiler {
  private readonly file: string;
  private readonly policy: KeyPolicy;
  /** Each user of the last good file: its entry as JSON, and what it compiled to. */
  private previous = new Map<string, CompiledEntry>();
  private keyCache = new Map<string, KeyResult>();

  constructor(file: string, policy: KeyPolicy) {
    this.file = file;
    this.policy = policy;
  }

  /**
   * Compiles `text` against the last committed file. The result is taken (and becomes the
   * base of the next compile) only once `commit` is called: the caller may find the file
   * changed under it and throw this one away.
   */
  compile(text: string): { readonly diff: UsersDiff; readonly commit: () => void } {
    const { file } = this;
    let doc: unknown;
    try {
      doc = jsyaml.load(text, { filename: file });
    } catch (err) {
      const line = err instanceof jsyaml.YAMLException ? `line ${err.mark.line + 1}` : 'file';
      const reason = err instanceof jsyaml.YAMLException ? err.reason : (err as Error).message;
      throw fail(file, line, `not valid YAML: ${reason}`, err);
    }
    // An empty file is what a reader sees halfway through a non-atomic write: it must not
    // be taken as "nobody may log in". Removing every user is said with `users: []`.
    if (doc === null || doc === undefined) {
      throw fail(file, 'top level', 'the file is empty (or was caught half-written); to remove every user write "users: []"');
    }
    if (!isMapping(doc)) throw fail(file, 'top level', 'must be a mapping with a "users" list');
    for (const key of Object.keys(doc)) {
      if (key !== 'users') throw fail(file, key, 'unknown key; the file has one key, "users"');
    }
    if (!('users' in doc)) throw fail(file, 'top level', 'has no "users" key');
    const list = doc.users ?? [];
    if (!Array.isArray(list)) throw fail(file, 'users', 'must be a list of users');

    const seen = new Map<string, CompiledEntry>();
    const keyOwners = new Map<string, string>();
    const keyCache = new Map<string, KeyResult>();
    const changed: UserRecord[] = [];
    const refused: RefusedKey[] = [];
    let keys = 0;
    list.forEach((entry: unknown, index) => {
      const at = `users[${index}]`;
      const json = JSON.stringify(entry);
      const name = isMapping(entry) ? entry.name : undefined;
      const before = typeof name === 'string' ? this.previous.get(name) : undefined;
      // Unchanged since the last good file: nothing to validate or parse again.
      const compiled = before?.json === json ? before : this.compileEntry(entry, at, json, keyCache);
      const { record } = compiled;
      if (seen.has(record.name)) throw fail(file, `${at}.name`, `user "${record.name}" is listed twice`);
      seen.set(record.name, compiled);
      if (compiled !== before) changed.push(record);
      for (const refusal of compiled.refused) {
        refused.push({ where: `${at}.keys[${refusal.keyIndex}] (user ${record.name})`, fingerprint: refusal.fingerprint, reason: refusal.reason });
      }
      for (const key of record.keys) {
        const owner = keyOwners.get(key.id);
        if (owner !== undefined) {
          const keyIndex = (entry as { keys: unknown[] }).keys.findIndex((line) => typeof line === 'string' && keyIdOf(line, this.policy) === key.id);
          throw fail(file, `${at}.keys[${keyIndex}] (user ${record.name})`, `the same key is already listed for user "${owner}"; a key must identify one user`);
        }
        keyOwners.set(key.id, record.name);
        keys += 1;
      }
    });
    const removed = [...this.previous.keys()].filter((name) => !seen.has(name));
    const commit = (): void => {
      // Only what the current file holds is remembered, so memory follows the file.
      this.previous = seen;
      this.keyCache = keyCache;
    };
    return { diff: { changed, removed, users: seen.size, keys, refused }, commit };
  }

  private compileEntry(entry: unknown, at: string, json: string, keyCache: Map<string, KeyResult>): CompiledEntry {
    const { file } = this;
    if (!isMapping(entry)) throw fail(file, at, 'must be a mapping with name, keys and access');
    for (const field of Object.keys(entry)) {
      if (!USER_FIELDS.has(field)) throw fail(file, `${at}.${field}`, 'unknown field; allowed: name, keys, access');
    }
    const name = entry.name;
    if (typeof name !== 'string' || !USER_NAME.test(name)) {
      throw fail(file, `${at}.name`, 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
    }
    const access = entry.access ?? {};
    if (!isMapping(access)) throw fail(file, `${at}.access`, 'must be a mapping of repository glob to read, write or admin');
    const grants = Object.entries(access).map(([pattern, level]): readonly [string, AccessLevel] => {
      if (typeof level !== 'string' || !ACCESS_LEVELS.includes(level as AccessLevel)) {
        throw fail(file, `${at}.access["${pattern}"]`, `must be one of ${ACCESS_LEVELS.join(', ')} (was ${JSON.stringify(level)})`);
      }
      if (pattern.trim() === '' || pattern.includes('..') || pattern.includes('\0')) {
        throw fail(file, `${at}.access["${pattern}"]`, 'is not a usable repository glob');
      }
      return [pattern, level as AccessLevel];
    });
    const keyLines = entry.keys ?? [];
    if (!Array.isArray(keyLines)) throw fail(file, `${at}.keys`, 'must be a list of public key lines');
    const keys: KeyRecord[] = [];
    const refused: Array<CompiledEntry['refused'][number]> = [];
    keyLines.forEach((line: unknown, keyIndex) => {
      const result = this.parseKeyLine(line, keyCache);
      if ('invalid' in result) throw fail(file, `${at}.keys[${keyIndex}] (user ${name})`, result.invalid);
      if ('refused' in result) refused.push({ keyIndex, fingerprint: fingerprintOfLine(line as string), reason: result.refused });
      else keys.push(result.key);
    });
    return { json, record: { name, access: grants, keys }, refused };
  }

  private parseKeyLine(line: unknown, keyCache: Map<string, KeyResult>): KeyResult {
    if (typeof line !== 'string' || line.trim() === '') {
      return { invalid: 'must be an OpenSSH public key line such as "ssh-ed25519 AAAA... comment"' };
    }
    const cached = keyCache.get(line) ?? this.keyCache.get(line);
    if (cached) {
      keyCache.set(line, cached);
      return cached;
    }
    const result = judgeKeyLine(line, this.policy);
    keyCache.set(line, result);
    return result;
  }
}

export function judgeKeyLine(line: string, policy: KeyPolicy): KeyResult {
  const parsed = utils.parseKey(line.trim());
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || key instanceof Error) {
    const reason = key instanceof Error ? key.message : 'no key';
    return { invalid: `not a valid OpenSSH public key (${reason}); it must look like "ssh-ed25519 AAAA... comment"` };
  }
  if (key.isPrivateKey()) return { invalid: 'is a PRIVATE key; put the .pub file here and keep the private key secret' };
  const blob = key.getPublicSSH();
  const verdict = judgeKey(blob, policy);
  if (verdict.refusal !== undefined) return { refused: verdict.refusal };
  return { key: { id: blob.toString('base64'), type: key.type, fingerprint: fingerprint(blob), comment: key.comment } };
}

/** Only on the error path: which of an entry's lines holds a duplicated key. */
function keyIdOf(line: string, policy: KeyPolicy): string | undefined {
  const result = judgeKeyLine(line, policy);
  return 'key' in result ? result.key.id : undefined;
}

function fingerprintOfLine(line: string): string {
  const blob = line.trim().split(/\s+/)[1];
  return blob ? fingerprint(Buffer.from(blob, 'base64')) : '';
}
