import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { seededRandom } from '../../test/helpers/mutate.js';
import { GitSshdError } from '../errors.js';
import { parseCommand } from './parse.js';

const SEED = Number(process.env.FUZZ_SEED ?? 15);
/** A bounded number of inputs, not a wall-clock budget. */
const ITERATIONS = Number(process.env.FUZZ_EXEC_INPUTS ?? 50_000);
const CORPUS = join(import.meta.dirname, '..', '..', 'test', 'fuzz-corpus', 'exec');

const VERBS = ['git-upload-pack', 'git-receive-pack', 'git-upload-archive', 'git upload-pack', 'git', 'git-lfs-authenticate', 'git-lfs-transfer', '2fa_verify', 'personal_access_token', 'ls', 'sh', ''];
const PIECES = ["'", '"', '\\', ' ', '\t', '\n', '\0', '$(id)', '`id`', ';', '|', '&&', '..', '/', '~', '-', '--upload-pack=x', '%00', '\u00e9', '\ud83d\ude00', '\ud800', 'a'.repeat(300), '*', '\\\'', '"\'"'];

/** Shell-ish command lines: a verb, then arguments built from quotes, escapes and metacharacters. */
function commandLine(random: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const words = [pick(VERBS)];
  const count = Math.floor(random() * 4);
  for (let i = 0; i < count; i += 1) {
    let word = '';
    const parts = 1 + Math.floor(random() * 4);
    for (let j = 0; j < parts; j += 1) word += random() < 0.5 ? pick(PIECES) : pick(['team/app.git', '/group/sub/repo', "'quoted repo'", 'repo', '']);
    words.push(word);
  }
  let text = words.join(random() < 0.9 ? ' ' : '  ');
  if (random() < 0.05) text = text.repeat(1 + Math.floor(random() * 40));
  return text;
}

/** The invariants: a valid command, or a policy error whose message is safe to show; never anything else. */
function check(input: string): void {
  let command;
  try {
    command = parseCommand(input);
  } catch (err) {
    if (!(err instanceof GitSshdError) || err.errorClass !== 'policy') throw new Error(`not a policy error: ${String(err)}`);
    if (/[\0\n\r]/.test(err.message) || err.message.length > 200) throw new Error(`unsafe message: ${JSON.stringify(err.message)}`);
    return;
  }
  if (command.kind === 'git') {
    if (command.repo === '' || command.repo.includes('\0')) throw new Error(`bad repository ${JSON.stringify(command.repo)}`);
  } else if (command.kind === 'backend') {
    if (!Array.isArray(command.args)) throw new Error('arguments are not a list');
  } else if (command.kind !== 'welcome') {
    throw new Error(`unknown kind ${JSON.stringify(command)}`);
  }
}

test(`parseCommand holds its invariants on the regression corpus and ${ITERATIONS} generated command lines (seed ${SEED})`, () => {
  const corpus = readdirSync(CORPUS).filter((name) => name.endsWith('.txt'));
  for (const name of corpus) {
    const input = readFileSync(join(CORPUS, name), 'utf8');
    assert.doesNotThrow(() => check(input), `corpus ${name}`);
  }
  const random = seededRandom(SEED);
  for (let i = 0; i < ITERATIONS; i += 1) {
    const input = commandLine(random);
    try {
      check(input);
    } catch (err) {
      // Kept as a regression input: every later run replays it first.
      mkdirSync(CORPUS, { recursive: true });
      const file = join(CORPUS, `crash-seed${SEED}-${i}.txt`);
      writeFileSync(file, input);
      assert.fail(`${(err as Error).message} for input ${JSON.stringify(input.slice(0, 200))} (saved to ${file})`);
    }
  }
});
