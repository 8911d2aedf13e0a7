import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SocketPairs } from './socketPair.js';

const parent = mkdtempSync(join(tmpdir(), 'socketpair-test-'));
after(() => rmSync(parent, { recursive: true, force: true }));

describe('SocketPairs', () => {
  test('a child writing to their end is read by ours into our own buffer; no listener path is left, and the directory goes at exit', async () => {
    const pairs = new SocketPairs(parent);
    for (const text of ['hello world', 'second pair']) {
      const received: string[] = [];
      const { ours, theirs } = await pairs.make({ buffer: Buffer.alloc(4096), callback: (nread, buf) => received.push(Buffer.from(buf.subarray(0, nread)).toString()) > 0 });
      const ended = once(ours, 'end');
      const child = spawn('sh', ['-c', `printf '${text.slice(0, 5)}'; printf '${text.slice(5)}'`], { stdio: ['ignore', theirs, 'ignore'] });
      theirs.destroy();
      const [code] = (await once(child, 'exit')) as [number];
      assert.equal(code, 0);
      await ended;
      ours.destroy();
      assert.equal(received.join(''), text);
    }
    const [dir, ...others] = readdirSync(parent);
    assert.deepEqual(others, [], 'one directory for every pair');
    assert.equal(statSync(join(parent, dir ?? '')).mode & 0o777, 0o700, 'only we can connect');
    assert.deepEqual(readdirSync(join(parent, dir ?? '')), [], 'no listener path left');
    pairs.removeDirectory();
    assert.deepEqual(readdirSync(parent), []);
  });

  test('a directory it cannot use rejects with the cause and leaves nothing behind', async () => {
    const pairs = new SocketPairs(join(parent, 'missing'));
    await assert.rejects(pairs.make({ buffer: Buffer.alloc(16), callback: () => true }), { code: 'ENOENT' });
    assert.deepEqual(readdirSync(parent), []);
  });

  test('a directory removed under it is made again', async () => {
    const pairs = new SocketPairs(parent);
    const first = await pairs.make({ buffer: Buffer.alloc(16), callback: () => true });
    first.ours.destroy();
    first.theirs.destroy();
    pairs.removeDirectory();
    await assert.rejects(pairs.make({ buffer: Buffer.alloc(16), callback: () => true }), { code: 'EACCES' });
    const again = await pairs.make({ buffer: Buffer.alloc(16), callback: () => true });
    again.ours.destroy();
    again.theirs.destroy();
    pairs.removeDirectory();
    assert.deepEqual(readdirSync(parent), []);
  });
});
