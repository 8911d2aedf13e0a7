import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ParsedKey } from 'ssh2';
import { parseKeyLine } from '../backends/local/usersFile.js';
import { fingerprint } from '../ssh/fingerprint.js';
import { CliError } from './cliError.js';

export interface PublicKey {
  /** The line as it goes into users.yml: type, base64 blob and comment. */
  readonly line: string;
  readonly type: string;
  readonly fingerprint: string;
  /** The base64 blob: what identifies a key, whatever its comment. */
  readonly blob: string;
}

const KEY_TEXT = /^\s*(ssh-|ecdsa-|sk-)\S*\s+AAAA/;
const HINT = '--key takes a public key file (~/.ssh/id_ed25519.pub), the key itself ("ssh-ed25519 AAAA... me@laptop"), or - to read it from standard input';

/**
 * The text `--key` stands for: `-` is standard input, text that looks like a key is the
 * key itself (what `--key "$(cat id.pub)"` passes), anything else is a file name.
 */
export function readKeyInput(value: string, readStdin: () => string): { text: string; origin: string } {
  if (value === '-') return { text: readStdin(), origin: 'standard input' };
  if (KEY_TEXT.test(value)) return { text: value, origin: '--key' };
  const path = value.startsWith('~/') ? join(homedir(), value.slice(2)) : value;
  try {
    return { text: readFileSync(path, 'utf8'), origin: path };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory' : (code ?? (err as Error).message);
    throw new CliError(`cannot read --key ${value}: ${reason}. ${HINT}`);
  }
}

/** Every key line in the text (blank lines and # comments skipped); none, or a bad one, is an error. */
export function parsePublicKeys(text: string, origin: string): PublicKey[] {
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (lines.length === 0) throw new CliError(`${origin}: no public key in it. ${HINT}`);
  if (lines.some((line) => line.startsWith('-----BEGIN'))) {
    throw new CliError(`${origin}: this is a PRIVATE key; pass the public one (the .pub file beside it) and keep the private key secret`);
  }
  return lines.map((line, index) => {
    let key: ParsedKey;
    try {
      key = parseKeyLine(origin, `line ${index + 1}`, line);
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    const blob = key.getPublicSSH();
    const comment = line.split(/\s+/).slice(2).join(' ');
    const base64 = blob.toString('base64');
    return { line: [key.type, base64, comment].filter((part) => part !== '').join(' '), type: key.type, fingerprint: fingerprint(blob), blob: base64 };
  });
}
