import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { parseUsersFile } from '../backends/local/usersFile.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { GitSshdError } from '../errors.js';
import { CliError } from './cliError.js';
import { parsePublicKeys, readKeyInput } from './keyInput.js';
import { describeUsers, parseAccess, UsersDocument } from './usersDocument.js';
import { serverConfigArgs, writableUsersFile } from './usersTarget.js';

export const USAGE = `usage:
  npm run add-user -- --name NAME --key KEY [--access 'GLOB=LEVEL' ...]
  npm run remove-user -- --name NAME              remove a user and all their keys
  npm run remove-user -- [--name NAME] --key KEY  remove one key
  npm run list-users

KEY is a public key file (~/.ssh/id_ed25519.pub), the key itself ("ssh-ed25519 AAAA..."),
or - to read it from standard input. LEVEL is read, write or admin; a new user without
--access gets '*=admin'. Adding a key to an existing user keeps their other keys.
Every command takes --config FILE: the server's config file, if it runs with one
(GIT_SSHD_CONFIG works as for the server). The running server applies changes within a second.`;

export interface CliIo {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly readStdin: () => string;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** `add`, `remove` or `list` on the users file the server reads; returns the exit status. */
export function runUsersCli(io: CliIo): number {
  const [command, ...rest] = io.argv;
  try {
    const { values } = parseArgs({
      args: rest,
      options: {
        name: { type: 'string' },
        key: { type: 'string', multiple: true },
        access: { type: 'string', multiple: true },
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help || command === 'help' || command === '--help') {
      io.out(`${USAGE}\n`);
      return 0;
    }
    const config = loadServerConfig(values.config, io);
    if (command === 'list') {
      io.out(list(config));
      return 0;
    }
    if (command === undefined) throw new CliError('which command? add, remove or list');
    if (command !== 'add' && command !== 'remove') throw new CliError(`unknown command ${JSON.stringify(command ?? '')}: use add, remove or list`);
    const keys = (values.key ?? []).flatMap((value) => {
      const { text, origin } = readKeyInput(value, io.readStdin);
      return parsePublicKeys(text, origin);
    });
    if (command === 'add' && (values.name === undefined || keys.length === 0)) throw new CliError('add needs --name NAME and --key KEY (see --help)');
    const access = parseAccess(values.access);
    if (command === 'remove' && access) throw new CliError('remove takes no --access');
    io.out(`${edit(config, (doc) => (command === 'add' ? doc.add(values.name as string, keys, access) : doc.remove(values.name, keys)))}\n`);
    return 0;
  } catch (err) {
    const usage = command === undefined || String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS');
    if (!(usage || err instanceof CliError || err instanceof GitSshdError)) throw err;
    io.err(`${command ?? 'users'}: ${(err as Error).message}\n`);
    if (usage) io.err(`${USAGE}\n`);
    return usage ? 2 : 1;
  }
}

/** The CLI as a process: `prefix` is prepended to the arguments (`add` for the add-user entry point). */
export function runFromProcess(prefix: readonly string[]): number {
  return runUsersCli({
    argv: [...prefix, ...process.argv.slice(2)],
    env: process.env,
    cwd: process.cwd(),
    readStdin: () => readFileSync(0, 'utf8'),
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  });
}

function loadServerConfig(explicit: string | undefined, io: CliIo): Config {
  const argv = serverConfigArgs(explicit, io.env);
  const { config } = loadConfig({ argv, env: io.env, cwd: io.cwd });
  if (argv.length > 0 && explicit === undefined) io.err(`using the server's configuration ${config.source}\n`);
  return config;
}

function list(config: Config): string {
  const file = config.local.usersFile;
  if (config.backend !== 'local') throw new CliError(`the server uses backend ${config.backend}: its users are GitLab's`);
  if (!existsSync(file)) return `no users file yet at ${file} (the server creates it at its first start; add-user creates it too)\n`;
  return `${file}:\n${describeUsers(parseUsersFile(file, readFileSync(file, 'utf8')))}`;
}

/**
 * Reads, edits and writes the file atomically (a complete new file renamed over the old),
 * so the running server's watcher only ever sees a whole, valid file.
 */
function edit(config: Config, change: (doc: UsersDocument) => string): string {
  const file = writableUsersFile(config);
  const exists = existsSync(file);
  const doc = new UsersDocument(file, exists ? readFileSync(file, 'utf8') : '');
  const summary = change(doc);
  const text = doc.toString();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.tmp-${process.pid}`;
  writeFileSync(temporary, text, { mode: exists ? statSync(file).mode & 0o777 : 0o600 });
  renameSync(temporary, file);
  return `${summary} in ${file}`;
}
