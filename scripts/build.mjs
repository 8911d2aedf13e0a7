#!/usr/bin/env node
// Compiles src/ to dist/ only when something changed: `npm start` and the users CLI call it
// on every run, so it must cost milliseconds when dist/ is current (a stat of each source
// file against a stamp), and it stays plain JavaScript so that it needs no build itself.
//
//   node scripts/build.mjs            compile if a source is newer than the last build
//   node scripts/build.mjs --force    compile (incrementally) whatever the stamps say
//   node scripts/build.mjs --prepare  as `npm ci`'s prepare step: also skip quietly where no
//                                     build is possible (no src/ yet, or no TypeScript)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const stamp = join(dist, '.build-stamp');
// What `npm start` and the CLI run: a build that lost one of them is not a build.
const ENTRY_POINTS = ['main.js', 'cli/users.js'];
const INPUTS = ['tsconfig.json', 'package.json', 'package-lock.json'];


/** The newest modification time among the sources and their directories (a deletion touches its directory). */
function newestInput() {
  let newest = 0;
  const visit = (path) => {
    const info = statSync(path);
    newest = Math.max(newest, info.mtimeMs);
    if (!info.isDirectory()) return;
    for (const entry of readdirSync(path)) {
      if (entry.endsWith('.test.ts')) continue;
      visit(join(path, entry));
    }
  };
  visit(join(root, 'src'));
  for (const file of INPUTS) if (existsSync(join(root, file))) newest = Math.max(newest, statSync(join(root, file)).mtimeMs);
  return newest;
}

function isCurrent() {
  if (!existsSync(stamp) || ENTRY_POINTS.some((file) => !existsSync(join(dist, file)))) return false;
  return statSync(stamp).mtimeMs >= newestInput();
}

function typescriptCompiler() {
  try {
    return createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    return undefined;
  }
}

/**
 * Brings dist/ up to date; returns the exit status (0: current or built). `prepare` is
 * `npm ci`'s hook: it also succeeds where no build is possible.
 */
export function ensureBuilt({ force = false, prepare = false } = {}) {
  if (!existsSync(join(root, 'src'))) {
    // The image's `npm ci` runs before the sources are copied in (the Dockerfile builds
    // later), and the image itself ships dist/ without sources.
    if (prepare || ENTRY_POINTS.every((file) => existsSync(join(dist, file)))) return 0;
    console.error('git-sshd: no src/ directory to build');
    return 1;
  }
  if (!force && isCurrent()) return 0;

  const tsc = typescriptCompiler();
  // The incremental state remembers emitting files that are gone now: start it afresh then.
  if (ENTRY_POINTS.some((file) => !existsSync(join(dist, file)))) rmSync(join(dist, '.tsbuildinfo'), { force: true });
  if (tsc === undefined) {
    if (prepare) {
      console.error('git-sshd: TypeScript is not installed (npm ci --omit=dev?); dist/ is not built');
      return 0;
    }
    console.error('git-sshd: dist/ is missing or older than src/, and TypeScript is not installed to build it: run `npm ci`');
    return 1;
  }

  // Sources saved while the compiler runs must count as newer than this build.
  const startedAt = new Date();
  console.error(`git-sshd: compiling src/ to dist/ (${existsSync(stamp) ? 'sources changed' : 'first build'}; up to a minute on a busy 2-core machine)...`);
  mkdirSync(dist, { recursive: true });
  const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json'), '--incremental', '--tsBuildInfoFile', join(dist, '.tsbuildinfo')], {
    stdio: 'inherit',
    cwd: root,
  });
  if (result.status !== 0) {
    console.error(`git-sshd: the build failed (tsc exit ${result.status ?? result.signal}); dist/ is not current`);
    return 1;
  }
  writeFileSync(stamp, `${startedAt.toISOString()}\n`);
  utimesSync(stamp, startedAt, startedAt);
  console.error(`git-sshd: built dist/ in ${((Date.now() - startedAt.getTime()) / 1000).toFixed(1)} s`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = ensureBuilt({ force: process.argv.includes('--force'), prepare: process.argv.includes('--prepare') });
}
