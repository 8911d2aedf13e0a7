import { isMap, isScalar, isSeq, parseDocument, YAMLMap, YAMLSeq, type Document } from 'yaml';
import { ACCESS_LEVELS } from '../backends/local/access.js';
import { isValidUserName, parseKeyLine, parseUsersFile, USER_NAME_RULE, type UsersIndex } from '../backends/local/usersFile.js';
import { fingerprint } from '../ssh/fingerprint.js';
import { CliError } from './cliError.js';
import type { PublicKey } from './keyInput.js';

/**
 * users.yml as a YAML document, edited in place so that an operator's comments and layout
 * survive; every result is validated with the server's own parser before it is returned,
 * so the CLI never writes a file the server would refuse.
 */
export class UsersDocument {
  private readonly doc: Document;
  private readonly index: UsersIndex;

  constructor(
    private readonly file: string,
    text: string,
  ) {
    // The server's parser first: a file it refuses is reported as it would report it.
    // No file yet, or an empty one: the CLI starts a new list (the server itself refuses an
    // empty file, which may be one caught half-written).
    const start = text.trim() === '' ? 'users: []\n' : text;
    this.index = parseUsersFile(file, start);
    this.doc = parseDocument(start);
    if (!isMap(this.doc.contents)) this.doc.contents = new YAMLMap() as never;
    if (!isSeq(this.doc.get('users'))) this.doc.set('users', this.doc.createNode([]));
    this.users.flow = false;
  }

  get current(): UsersIndex {
    return this.index;
  }

  /** Adds a user, or keys to an existing one; `access` replaces an existing user's grants. */
  add(name: string, keys: readonly PublicKey[], access: Record<string, string> | undefined): string {
    if (!isValidUserName(name)) throw new CliError(`--name ${JSON.stringify(name)}: a user name is ${USER_NAME_RULE}`);
    const seen = new Set<string>();
    for (const key of keys) {
      const owner = this.index.keys.get(key.blob)?.user.name;
      if (owner === name) throw new CliError(`user ${name} already has this key (${key.fingerprint}); nothing changed`);
      if (owner !== undefined) {
        throw new CliError(`this key (${key.fingerprint}) already belongs to user ${owner}: a key identifies one user. Remove it there first (remove-user --key ...) or use another key`);
      }
      if (seen.has(key.blob)) throw new CliError(`the same key (${key.fingerprint}) is given twice`);
      seen.add(key.blob);
    }
    const existing = this.entry(name);
    if (existing) {
      const list = existing.get('keys');
      if (isSeq(list)) for (const key of keys) list.add(key.line);
      else existing.set('keys', this.doc.createNode(keys.map((key) => key.line)));
      if (access) existing.set('access', this.doc.createNode(access));
      const count = (this.index.users.has(name) ? this.keysOf(name) : 0) + keys.length;
      return `added ${plural(keys.length, 'key')} to existing user ${name} (now ${plural(count, 'key')}${access ? `; access set to ${grants(access)}` : ''})`;
    }
    const granted = access ?? { '*': 'admin' };
    this.users.add(this.doc.createNode({ name, keys: keys.map((key) => key.line), access: granted }));
    return `added user ${name} with ${plural(keys.length, 'key')} (${keys.map((key) => key.fingerprint).join(', ')}); access ${grants(granted)}`;
  }

  /** Removes a whole user, or (with keys) only those keys, from whoever holds them. */
  remove(name: string | undefined, keys: readonly PublicKey[]): string {
    if (keys.length === 0) {
      if (name === undefined) throw new CliError('remove needs --name NAME, --key KEY, or both');
      const index = this.users.items.findIndex((item) => isMap(item) && item.get('name') === name);
      if (index < 0) throw new CliError(`no user ${name}${this.suggestion()}`);
      this.users.delete(index);
      return `removed user ${name} and ${plural(this.keysOf(name), 'key')}`;
    }
    const removed: string[] = [];
    for (const key of keys) {
      const owner = this.index.keys.get(key.blob)?.user.name;
      if (owner === undefined) throw new CliError(`no user has the key ${key.fingerprint}`);
      if (name !== undefined && owner !== name) throw new CliError(`the key ${key.fingerprint} belongs to user ${owner}, not ${name}`);
      const list = this.entry(owner)?.get('keys');
      if (!isSeq(list)) throw new CliError(`user ${owner}: keys is not a list`);
      list.delete(list.items.findIndex((item) => blobOf(scalarValue(item)) === key.blob));
      removed.push(`${key.fingerprint} from user ${owner}`);
    }
    return `removed key ${removed.join(', ')}`;
  }

  /** The file's new text, checked by the server's parser. */
  toString(): string {
    const text = this.doc.toString({ lineWidth: 0 });
    parseUsersFile(this.file, text);
    return text;
  }

  private get users(): YAMLSeq {
    return this.doc.get('users') as YAMLSeq;
  }

  private entry(name: string): YAMLMap | undefined {
    return this.users.items.find((item) => isMap(item) && item.get('name') === name) as YAMLMap | undefined;
  }

  private keysOf(name: string): number {
    return [...this.index.keys.values()].filter((key) => key.user.name === name).length;
  }

  private suggestion(): string {
    const names = [...this.index.users.keys()];
    return names.length === 0 ? ' (the file has no users)' : ` (users: ${names.join(', ')})`;
  }
}

/** Parses `--access GLOB=LEVEL` arguments. */
export function parseAccess(values: readonly string[] | undefined): Record<string, string> | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const access: Record<string, string> = {};
  for (const grant of values) {
    const at = grant.lastIndexOf('=');
    const level = grant.slice(at + 1);
    if (at <= 0 || !ACCESS_LEVELS.includes(level as never)) {
      throw new CliError(`--access ${grant}: expected GLOB=LEVEL with LEVEL one of ${ACCESS_LEVELS.join(', ')} (e.g. 'team/*=write')`);
    }
    access[grant.slice(0, at)] = level;
  }
  return access;
}

/** The users as `list` prints them: one line per user, then one per key. */
export function describeUsers(index: UsersIndex): string {
  if (index.users.size === 0) return 'no users yet: add one with  npm run add-user -- --name NAME --key ~/.ssh/id_ed25519.pub\n';
  const lines: string[] = [];
  for (const user of index.users.values()) {
    const keys = [...index.keys.values()].filter((key) => key.user === user);
    const access = user.grants.map((grant) => `${grant.pattern}=${grant.level}`).join(' ') || '(no access)';
    lines.push(`${user.name}  ${plural(keys.length, 'key')}  ${access}`);
    for (const key of keys) lines.push(`  ${key.type}  ${key.fingerprint}  ${key.comment}`.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}

function scalarValue(item: unknown): unknown {
  return isScalar(item) ? item.value : item;
}

/** The key's blob as the server indexes it (the file was validated, so every line parses). */
function blobOf(line: unknown): string {
  return parseKeyLine('users file', 'key', line).getPublicSSH().toString('base64');
}

function grants(access: Record<string, string>): string {
  return Object.entries(access)
    .map(([glob, level]) => `${glob}=${level}`)
    .join(' ');
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
