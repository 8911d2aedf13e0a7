import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isMap, isSeq, parseDocument, YAMLMap } from 'yaml';
import { parseUsersFile } from '../backends/local/usersFile.js';
import { loadConfig } from '../config/load.js';
import { fingerprint } from '../ssh/fingerprint.js';

const USAGE = `usage: npm run add-user -- --name NAME --key PUBLIC_KEY_FILE [--access 'GLOB=LEVEL' ...] [--config FILE]
Adds a user (or a key to an existing user) to the local backend's users file.
LEVEL is read, write or admin; without --access the user gets "*=admin".`;

/**
 * Edits users.yml in place, keeping its comments, and writes it atomically: the running
 * server sees one complete new file and reloads it.
 */
function main(): void {
  const { values } = parseArgs({
    options: {
      name: { type: 'string' },
      key: { type: 'string' },
      access: { type: 'string', multiple: true },
      config: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help || !values.name || !values.key) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(values.help ? 0 : 2);
  }
  const { config } = loadConfig({
    argv: values.config ? ['--config', values.config] : [],
    env: process.env,
    cwd: process.cwd(),
  });
  const file = config.local.usersFile;
  const keyLine = readFileSync(values.key, 'utf8').trim().split('\n')[0] ?? '';
  const access: Record<string, string> = {};
  for (const grant of values.access ?? ['*=admin']) {
    const at = grant.lastIndexOf('=');
    if (at <= 0) throw new Error(`--access ${grant}: expected GLOB=LEVEL`);
    access[grant.slice(0, at)] = grant.slice(at + 1);
  }

  const doc = parseDocument(existsSync(file) ? readFileSync(file, 'utf8') : 'users: []\n');
  if (!isMap(doc.contents)) doc.contents = new YAMLMap() as never;
  let users = doc.get('users');
  if (!isSeq(users)) {
    doc.set('users', doc.createNode([]));
    users = doc.get('users');
  }
  const seq = users as import('yaml').YAMLSeq;
  seq.flow = false;
  const existing = seq.items.find((item) => isMap(item) && item.get('name') === values.name) as YAMLMap | undefined;
  if (existing) {
    const keys = existing.get('keys');
    if (isSeq(keys)) keys.add(keyLine);
    else existing.set('keys', doc.createNode([keyLine]));
    if (values.access) existing.set('access', doc.createNode(access));
  } else {
    seq.add(doc.createNode({ name: values.name, keys: [keyLine], access }));
  }
  const text = doc.toString({ lineWidth: 0 });
  const checked = parseUsersFile(file, text, { allowedAlgorithms: config.sshd.publicKeyAlgorithms, minRsaKeyBits: config.sshd.minRsaKeyBits });
  // The server would refuse this key at login (and name it at load): say so now, not at the first push.
  const added = fingerprint(Buffer.from(keyLine.split(/\s+/)[1] ?? '', 'base64'));
  const refused = checked.refused.find((refusal) => refusal.fingerprint === added);
  if (refused) throw new Error(`${values.key}: ${refused.reason}; make a new key, e.g. ssh-keygen -t ed25519`);
  const temporary = `${file}.tmp-${process.pid}`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, file);
  process.stdout.write(`${existing ? 'updated' : 'added'} user ${values.name} in ${file}\n`);
}

try {
  main();
} catch (err) {
  process.stderr.write(`add-user: ${(err as Error).message}\n`);
  process.exit(1);
}

