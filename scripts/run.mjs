#!/usr/bin/env node
// `node scripts/run.mjs main.js ARGS...` runs dist/main.js with ARGS after making sure dist/
// is current: one process, so `npm start` and the users CLI pay one Node start-up, not two.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBuilt, root } from './build.mjs';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run.mjs ENTRY.js [ARGS...]   (ENTRY relative to dist/)');
  process.exit(2);
}
const status = ensureBuilt();
if (status !== 0) process.exit(status);
const script = join(root, 'dist', entry);
// The entry point reads its arguments from process.argv as if node had started it.
process.argv = [process.argv[0], script, ...args];
await import(pathToFileURL(script).href);
