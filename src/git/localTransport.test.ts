import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import type { CommandOutput, OutputStream } from '../io/output.js';
import { SpawnHelper } from '../spawn/spawnHelper.js';
import { LocalGitTransport } from './localTransport.js';

const work = mkdtempSync(join(tmpdir(), 'local-transport-test-'));
after(() => rmSync(work, { recursive: true, force: true }));
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, GIT_CONFIG_NOSYSTEM: '1' };
const git = (args: string[]): string => execFileSync('git', args, { env, encoding: 'utf8' });

const tree = join(work, 'tree');
git(['init', '-q', tree]);
git(['-C', tree, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '--allow-empty', '-m', 'first']);
// Enough refs for an advertisement of several reads.
const tags = Array.from({ length: 600 }, (_, i) => `create refs/tags/tag-${String(i).padStart(4, '0')} HEAD\n`).join('');
execFileSync('git', ['-C', tree, 'update-ref', '--stdin'], { env, input: tags });
const repoDir = join(work, 'repo.git');
git(['clone', '-q', '--bare', tree, repoDir]);

/** Copies what it is given: a chunk's memory may be reused once a write resolves. */
function collector(): CommandOutput & { text: (stream: OutputStream) => string } {
  const taken: Record<OutputStream, Buffer[]> = { stdout: [], stderr: [] };
  return {
    bytes: 0,
    write: async (stream, chunk) => void taken[stream].push(Buffer.from(chunk)),
    text: (stream) => Buffer.concat(taken[stream]).toString('latin1'),
  };
}

/**
 * git upload-pack's ref advertisement, asked for with no request after it (git then fails:
 * the client hung up), or with `request` sent after it (a flush: "nothing wanted", git exits 0).
 */
async function advertise(transport: LocalGitTransport, request?: string): Promise<{ exitCode: number; stdout: string }> {
  const output = collector();
  const stdin = new PassThrough();
  stdin.end(request);
  const outcome = await transport.run({
    service: 'git-upload-pack',
    target: { repo: 'repo', repoDir, env: {} },
    gitProtocol: undefined,
    stdin,
    output,
    signal: new AbortController().signal,
  });
  return { exitCode: outcome.exitCode, stdout: output.text('stdout') };
}

describe('LocalGitTransport reads git\'s stdout', () => {
  const direct = spawnSync('git', ['upload-pack', '--strict', repoDir], { env, input: '', encoding: 'latin1' });
  const expected = direct.stdout;

  test('through a socket pair: the same bytes as git writes, and nothing left where the pairs were made', async () => {
    const socketDir = mkdtempSync(join(work, 'sockets-'));
    const transport = new LocalGitTransport({ baseEnv: env, log: pino({ level: 'silent' }), socketDir });
    for (let i = 0; i < 3; i += 1) {
      const { exitCode, stdout } = await advertise(transport);
      assert.equal(exitCode, direct.status);
      assert.equal(stdout, expected);
    }
    assert.ok(expected.length > 20_000, 'the advertisement spans several reads');
    const [made, ...others] = readdirSync(socketDir);
    assert.deepEqual(others, [], 'one private directory for all pairs');
    assert.deepEqual(readdirSync(join(socketDir, made ?? '')), [], 'no listener path left');
    transport.killAll();
    assert.deepEqual(readdirSync(socketDir), [], 'removed at exit');
  });

  test('through Node\'s pipe where no socket pair can be made: the same bytes, and a warning', async () => {
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const transport = new LocalGitTransport({ baseEnv: env, log, socketDir: join(work, 'missing') });
    for (let i = 0; i < 2; i += 1) {
      const { exitCode, stdout } = await advertise(transport);
      assert.equal(exitCode, direct.status);
      assert.equal(stdout, expected);
    }
    assert.equal(warnings.length, 1, 'warned once, not once per command');
    assert.match(warnings[0] ?? '', /cannot make a socket pair for git output/);
  });

  test('through the spawn helper: git is its child, reads what the client sent, and its output is the same bytes', async () => {
    const socketDir = mkdtempSync(join(work, 'sockets-'));
    const parents: number[] = [];
    // Records who forked each git while it still runs (it waits for the client's request).
    const spawnHelper = new (class extends SpawnHelper {
      override async spawn(...args: Parameters<SpawnHelper['spawn']>): ReturnType<SpawnHelper['spawn']> {
        const child = await super.spawn(...args);
        const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
        parents.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
        return child;
      }
    })({ log: pino({ level: 'silent' }) });
    const transport = new LocalGitTransport({ baseEnv: env, log: pino({ level: 'silent' }), socketDir, spawnHelper });
    try {
      const answered = spawnSync('git', ['upload-pack', '--strict', repoDir], { env, input: '0000', encoding: 'latin1' });
      assert.equal(answered.status, 0, 'a flush after the advertisement ends upload-pack well');
      for (let i = 0; i < 3; i += 1) {
        const { exitCode, stdout } = await advertise(transport, '0000');
        assert.equal(exitCode, 0, 'git read the flush the client sent');
        assert.equal(stdout, answered.stdout);
      }
      const { exitCode, stdout } = await advertise(transport);
      assert.equal(exitCode, direct.status, 'a client that hung up is seen as one');
      assert.equal(stdout, expected);
      assert.equal(parents.length, 4);
      assert.ok(parents.every((parent) => parent === spawnHelper.pid && parent !== process.pid), `git's parents: ${parents.join(', ')}`);
      assert.deepEqual(readdirSync(join(socketDir, readdirSync(socketDir)[0] ?? '')), [], 'no listener path left');
    } finally {
      spawnHelper.close();
      transport.killAll();
    }
  });

  test('a spawn helper that cannot run: git starts from the server instead, with the same bytes, and a warning', async () => {
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const spawnHelper = new SpawnHelper({ log: pino({ level: 'silent' }), entry: join(work, 'no-such-helper.js') });
    const transport = new LocalGitTransport({ baseEnv: env, log, socketDir: mkdtempSync(join(work, 'sockets-')), spawnHelper });
    try {
      const { exitCode, stdout } = await advertise(transport);
      assert.equal(exitCode, direct.status);
      assert.equal(stdout, expected);
      assert.match(warnings.join(''), /the spawn helper failed; starting git from the server/);
    } finally {
      spawnHelper.close();
      transport.killAll();
    }
  });
});
