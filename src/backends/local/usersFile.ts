import ssh2, { type ParsedKey } from 'ssh2';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ERR_USERS_FILE, GitSshdError } from '../../errors.js';
import { fingerprint } from '../../ssh/fingerprint.js';
import { ACCESS_LEVELS, compileGrant, type AccessLevel, type Grant } from './access.js';

const { utils } = ssh2;

export interface LocalUser {
  readonly name: string;
  readonly grants: readonly Grant[];
}

export interface UserKey {
  readonly user: LocalUser;
  readonly key: ParsedKey;
  readonly fingerprint: string;
}

/** The parsed users file: users by name, and each public key (base64 blob) to its owner. */
export interface UsersIndex {
  readonly users: ReadonlyMap<string, LocalUser>;
  readonly keys: ReadonlyMap<string, UserKey>;
}

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const USER_NAME_RULE = '1-64 letters, digits, ".", "_" or "-", starting with a letter or digit';

export function isValidUserName(name: string): boolean {
  return USER_NAME.test(name);
}
const USER_FIELDS = new Set(['name', 'keys', 'access']);

function fail(file: string, where: string, message: string, cause?: unknown): GitSshdError {
  return new GitSshdError(ERR_USERS_FILE, `${file}: ${where}: ${message}`, { cause });
}

const isMapping = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** One OpenSSH public key line, or a coded error naming `file` and `where`. */
export function parseKeyLine(file: string, where: string, line: unknown): ParsedKey {
  if (typeof line !== 'string' || line.trim() === '') {
    throw fail(file, where, 'must be an OpenSSH public key line such as "ssh-ed25519 AAAA... comment"');
  }
  const parsed = utils.parseKey(line.trim());
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || key instanceof Error) {
    const reason = key instanceof Error ? key.message : 'no key';
    throw fail(file, where, `not a valid OpenSSH public key (${reason}); it must look like "ssh-ed25519 AAAA... comment"`);
  }
  if (key.isPrivateKey()) throw fail(file, where, 'is a PRIVATE key; put the .pub file here and keep the private key secret');
  return key;
}

/** Parses and validates the whole file; any problem rejects the whole file. */
export function parseUsersFile(file: string, text: string): UsersIndex {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    const pos = err instanceof YAMLParseError && err.linePos?.[0] ? `line ${err.linePos[0].line}` : 'file';
    throw fail(file, pos, `not valid YAML: ${(err as Error).message.split('\n')[0]}`, err);
  }
  if (doc === null || doc === undefined) doc = { users: [] };
  if (!isMapping(doc)) throw fail(file, 'top level', 'must be a mapping with a "users" list');
  for (const key of Object.keys(doc)) {
    if (key !== 'users') throw fail(file, key, 'unknown key; the file has one key, "users"');
  }
  const list = doc.users ?? [];
  if (!Array.isArray(list)) throw fail(file, 'users', 'must be a list of users');

  const users = new Map<string, LocalUser>();
  const keys = new Map<string, UserKey>();
  list.forEach((entry: unknown, index) => {
    const at = `users[${index}]`;
    if (!isMapping(entry)) throw fail(file, at, 'must be a mapping with name, keys and access');
    for (const field of Object.keys(entry)) {
      if (!USER_FIELDS.has(field)) throw fail(file, `${at}.${field}`, 'unknown field; allowed: name, keys, access');
    }
    const name = entry.name;
    if (typeof name !== 'string' || !USER_NAME.test(name)) {
      throw fail(file, `${at}.name`, `must be ${USER_NAME_RULE}`);
    }
    if (users.has(name)) throw fail(file, `${at}.name`, `user "${name}" is listed twice`);

    const access = entry.access ?? {};
    if (!isMapping(access)) throw fail(file, `${at}.access`, 'must be a mapping of repository glob to read, write or admin');
    const grants = Object.entries(access).map(([pattern, level]) => {
      if (typeof level !== 'string' || !ACCESS_LEVELS.includes(level as AccessLevel)) {
        throw fail(file, `${at}.access["${pattern}"]`, `must be one of ${ACCESS_LEVELS.join(', ')} (was ${JSON.stringify(level)})`);
      }
      if (pattern.trim() === '' || pattern.includes('..') || pattern.includes('\0')) {
        throw fail(file, `${at}.access["${pattern}"]`, 'is not a usable repository glob');
      }
      return compileGrant(pattern, level as AccessLevel);
    });
    const user: LocalUser = { name, grants };
    users.set(name, user);

    const keyLines = entry.keys ?? [];
    if (!Array.isArray(keyLines)) throw fail(file, `${at}.keys`, 'must be a list of public key lines');
    keyLines.forEach((line: unknown, keyIndex) => {
      const where = `${at}.keys[${keyIndex}] (user ${name})`;
      const key = parseKeyLine(file, where, line);
      const blob = key.getPublicSSH().toString('base64');
      const owner = keys.get(blob);
      if (owner) {
        throw fail(file, where, `the same key is already listed for user "${owner.user.name}"; a key must identify one user`);
      }
      keys.set(blob, { user, key, fingerprint: fingerprint(key.getPublicSSH()) });
    });
  });
  return { users, keys };
}
