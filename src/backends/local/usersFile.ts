import { DEFAULT_PUBLIC_KEY_ALGORITHMS } from '../../config/algorithms.js';
import { DEFAULT_MIN_RSA_KEY_BITS, type KeyPolicy } from '../../ssh/keyPolicy.js';
import { compileGrant, type Grant } from './access.js';
import ssh2, { type ParsedKey } from 'ssh2';
import { ERR_USERS_FILE, GitSshdError } from '../../errors.js';
import { judgeKeyLine, USER_NAME, UsersCompiler, type RefusedKey, type UserRecord, type UsersDiff } from './usersCompiler.js';

export interface LocalUser {
  readonly name: string;
  readonly grants: readonly Grant[];
  /** The ids (base64 blobs) of the keys that may log in as this user. */
  readonly keyIds: readonly string[];
}

export interface UserKey {
  readonly user: LocalUser;
  /** The key type, e.g. `ssh-ed25519`. */
  readonly type: string;
  readonly fingerprint: string;
  /** The key line's comment (often user@host), for listings. */
  readonly comment: string;
}

/** The users file as the server uses it: users by name, and each public key (base64 blob) to its owner. */
export interface UsersIndex {
  readonly users: ReadonlyMap<string, LocalUser>;
  readonly keys: ReadonlyMap<string, UserKey>;
  /** Keys of the file refused by the key policy, with where they are. */
  readonly refused: readonly RefusedKey[];
}

export const EMPTY_INDEX: UsersIndex = { users: new Map(), keys: new Map(), refused: [] };

export const DEFAULT_KEY_POLICY: KeyPolicy = { allowedAlgorithms: DEFAULT_PUBLIC_KEY_ALGORITHMS, minRsaKeyBits: DEFAULT_MIN_RSA_KEY_BITS };

function toUser(record: UserRecord): LocalUser {
  return {
    name: record.name,
    grants: record.access.map(([pattern, level]) => compileGrant(pattern, level)),
    keyIds: record.keys.map((key) => key.id),
  };
}

/**
 * The next index: the previous one with a compile's changes applied. The cost is the size
 * of the change plus two map copies (native, fast), not a re-validation of every user.
 */
export function applyUsersDiff(previous: UsersIndex, diff: UsersDiff): UsersIndex {
  const users = new Map(previous.users);
  const keys = new Map(previous.keys);
  const forget = (name: string): void => {
    const old = users.get(name);
    if (!old) return;
    for (const id of old.keyIds) if (keys.get(id)?.user === old) keys.delete(id);
  };
  for (const name of diff.removed) {
    forget(name);
    users.delete(name);
  }
  for (const record of diff.changed) forget(record.name);
  for (const record of diff.changed) {
    const user = toUser(record);
    users.set(record.name, user);
    for (const key of record.keys) keys.set(key.id, { user, type: key.type, fingerprint: key.fingerprint, comment: key.comment });
  }
  return { users, keys, refused: diff.refused };
}

/** Parses and validates a whole file at once (the add-user CLI, tests); any problem rejects it. */
export function parseUsersFile(file: string, text: string, policy: KeyPolicy = DEFAULT_KEY_POLICY): UsersIndex {
  return applyUsersDiff(EMPTY_INDEX, new UsersCompiler(file, policy).compile(text).diff);
}

export const USER_NAME_RULE = '1-64 letters, digits, ".", "_" or "-", starting with a letter or digit';

export function isValidUserName(name: string): boolean {
  return USER_NAME.test(name);
}

/**
 * One OpenSSH public key line as the server would take it (the users CLI checks a key
 * before writing it), or a coded error naming `file` and `where`: not a key, a private
 * key, or a key the default key policy refuses.
 */
export function parseKeyLine(file: string, where: string, line: unknown, policy: KeyPolicy = DEFAULT_KEY_POLICY): ParsedKey {
  const result = judgeKeyLine(typeof line === 'string' ? line : '', policy);
  if ('invalid' in result) throw new GitSshdError(ERR_USERS_FILE, `${file}: ${where}: ${result.invalid}`);
  if ('refused' in result) throw new GitSshdError(ERR_USERS_FILE, `${file}: ${where}: ${result.refused}; make a new key, e.g. ssh-keygen -t ed25519`);
  const parsed = ssh2.utils.parseKey((line as string).trim());
  return (Array.isArray(parsed) ? parsed[0] : parsed) as ParsedKey;
}
