import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import pino from 'pino';
import { ERR_GIT_SPAWN, GitSshdError } from '../errors.js';
import { LocalGitTransport } from './localTransport.js';
import { runGit } from './runGit.js';

const FIXTURE = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'spawnWithoutFds.ts');
const log = pino({ level: 'silent' });

function uploadPack(transport: LocalGitTransport): Promise<unknown> {
  return transport.run({
    service: 'git-upload-pack',
    target: { repo: 'x', repoDir: '/nonexistent.git', env: {} },
    gitProtocol: undefined,
    stdin: new PassThrough(),
    output: { write: async () => undefined } as never,
    signal: new AbortController().signal,
  });
}

const isSpawnError = (cause: string) => (err: unknown): boolean =>
  err instanceof GitSshdError && err.code === ERR_GIT_SPAWN && err.message.includes(cause) && (err.cause as NodeJS.ErrnoException).code === cause;

describe('a git that cannot start is reported by its cause', () => {
  test('git missing from PATH: ENOENT, from a transfer and from housekeeping', async () => {
    const env = { PATH: '/nonexistent-bin' };
    const transport = new LocalGitTransport({ baseEnv: env, log });
    await assert.rejects(uploadPack(transport), isSpawnError('ENOENT'));
    transport.killAll();
    await assert.rejects(runGit(['--version'], { env }), isSpawnError('ENOENT'));
  });

  test('out of file descriptors (prlimit): EMFILE, not a TypeError about child.stdin, and the user is asked to retry', () => {
    const output = execFileSync('prlimit', ['--nofile=256:256', process.execPath, '--import', 'tsx', FIXTURE], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const results = JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as Record<string, Record<string, unknown>>;
    assert.ok(Number(results.held) > 0, 'the fixture took the free descriptors');
    for (const path of ['transport', 'runGit']) {
      const result = results[path] ?? {};
      assert.equal(result.name, 'GitSshdError', `${path}: ${JSON.stringify(result)}`);
      assert.equal(result.code, ERR_GIT_SPAWN, path);
      assert.equal(result.cause, 'EMFILE', path);
      assert.match(String(result.message), /EMFILE: the server has run out of file descriptors/, path);
    }
  });

  test('a git that starts is unaffected', async () => {
    const result = await runGit(['--version'], { env: { PATH: process.env.PATH ?? '' } });
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^git version/);
  });
});
