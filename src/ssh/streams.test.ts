import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable, Writable } from 'node:stream';
import { forward, writeLine } from './streams.js';

/** A writable that keeps what it is given and calls each write back only when `release` says so. */
function collector(release: (callback: () => void) => void = (callback) => callback()) {
  const chunks: Buffer[] = [];
  const events: string[] = [];
  const stream = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      const n = chunks.length;
      release(() => {
        events.push(`callback ${n}`);
        callback();
      });
    },
  });
  return { stream, chunks, events, text: () => Buffer.concat(chunks).toString() };
}

describe('forward', () => {
  test('copies every byte in order and returns the count', async () => {
    const parts = ['first ', 'second ', '', 'third', Buffer.from([0, 1, 2, 255]).toString('latin1')];
    const to = collector();
    const bytes = await forward(Readable.from(parts.map((part) => Buffer.from(part, 'latin1'))), to.stream, new AbortController().signal);
    const expected = Buffer.concat(parts.map((part) => Buffer.from(part, 'latin1')));
    assert.equal(bytes, expected.length);
    assert.deepEqual(Buffer.concat(to.chunks), expected);
  });

  test('copies string chunks as their bytes', async () => {
    const to = collector();
    const bytes = await forward(Readable.from(['héllo', ' wörld'], { objectMode: true }), to.stream, new AbortController().signal);
    assert.equal(to.text(), 'héllo wörld');
    assert.equal(bytes, Buffer.byteLength('héllo wörld'));
  });

  test('resolves only after the last write has been called back', async () => {
    const to = collector((callback) => setTimeout(() => setImmediate(callback), 5));
    const from = Readable.from([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]);
    const done = forward(from, to.stream, new AbortController().signal).then(() => to.events.push('resolved'));
    await done;
    assert.deepEqual(to.events, ['callback 1', 'callback 2', 'callback 3', 'resolved']);
  });

  test('rejects with the reason when aborted while a write is held back', async () => {
    let held: (() => void) | undefined;
    let writeStarted!: () => void;
    const started = new Promise<void>((resolve) => (writeStarted = resolve));
    const to = collector((callback) => {
      held = callback;
      writeStarted();
    });
    const from = new PassThrough();
    const controller = new AbortController();
    const result = forward(from, to.stream, controller.signal);
    from.write('stuck');
    await started;
    const reason = new Error('shutting down');
    controller.abort(reason);
    await assert.rejects(result, reason);
    held?.();
    from.destroy();
  });

  test('rejects at once when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('already gone'));
    const to = collector();
    await assert.rejects(forward(Readable.from([Buffer.from('x')]), to.stream, controller.signal), /already gone/);
    assert.equal(to.chunks.length, 0);
  });

  test('rejects with the error of the source', async () => {
    const from = new Readable({
      read() {
        this.destroy(new Error('source broke'));
      },
    });
    await assert.rejects(forward(from, collector().stream, new AbortController().signal), /source broke/);
  });

  test('leaves the destination open', async () => {
    const to = collector();
    await forward(Readable.from([Buffer.from('data')]), to.stream, new AbortController().signal);
    assert.equal(to.stream.writableEnded, false);
    await writeLine(to.stream, 'exit message', new AbortController().signal);
    assert.equal(to.text(), 'dataexit message\n');
  });
});
