import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { socketPair } from './socketPair.js';

const dir = mkdtempSync(join(tmpdir(), 'socketpair-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('socketPair', () => {
  test('a child writing to their end is read by ours into our own buffer, and nothing is left on disk', async () => {
    const buffer = Buffer.alloc(4096);
    const received: string[] = [];
    const { ours, theirs } = await socketPair({ buffer, callback: (nread, buf) => received.push(Buffer.from(buf.subarray(0, nread)).toString()) > 0 }, dir);
    assert.deepEqual(readdirSync(dir), [], 'the listener, its path and its directory are gone');
    const ended = once(ours, 'end');
    const child = spawn('sh', ['-c', 'printf hello; printf " world"'], { stdio: ['ignore', theirs, 'ignore'] });
    theirs.destroy();
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0);
    await ended;
    ours.destroy();
    assert.equal(received.join(''), 'hello world');
  });

  test('a directory it cannot use rejects with the cause and leaves nothing behind', async () => {
    await assert.rejects(socketPair({ buffer: Buffer.alloc(16), callback: () => true }, join(dir, 'missing')), { code: 'ENOENT' });
    assert.deepEqual(readdirSync(dir), []);
  });
});
