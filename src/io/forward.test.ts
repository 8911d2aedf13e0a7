import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { forward } from './forward.js';

/** A sink whose writes complete only after a delay, recording when each completed. */
function slowSink(delayMs: number): { send: (chunk: Buffer) => Promise<void>; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  return {
    chunks,
    send: (chunk) =>
      new Promise((resolve) =>
        setTimeout(() => {
          chunks.push(chunk);
          resolve();
        }, delayMs),
      ),
  };
}

describe('forward', () => {
  test('copies every chunk in order and resolves only after the last one was taken', async () => {
    const sink = slowSink(5);
    const parts = ['a', 'bb', 'ccc', 'dddd'].map((text) => Buffer.from(text));
    await forward(Readable.from(parts), sink.send, new AbortController().signal);
    assert.equal(Buffer.concat(sink.chunks).toString(), 'abbcccdddd');
  });

  test('reads the next chunk only once the previous one was taken', async () => {
    let inFlight = 0;
    let most = 0;
    const send = async (): Promise<void> => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 2));
      inFlight -= 1;
    };
    await forward(Readable.from(Array.from({ length: 20 }, () => Buffer.alloc(10))), send, new AbortController().signal);
    assert.equal(most, 1);
  });

  test('rejects with the abort reason when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('already gone'));
    const sink = slowSink(0);
    await assert.rejects(forward(Readable.from([Buffer.from('x')]), sink.send, controller.signal), /already gone/);
    assert.equal(sink.chunks.length, 0);
  });

  test('rejects with the abort reason while the source is quiet', async () => {
    const controller = new AbortController();
    const quiet = new Readable({ read() {} });
    const forwarding = forward(quiet, slowSink(0).send, controller.signal);
    setTimeout(() => controller.abort(new Error('stopped while quiet')), 10);
    await assert.rejects(forwarding, /stopped while quiet/);
  });

  test('rejects with the error of the source', async () => {
    const from = new Readable({
      read() {
        this.destroy(new Error('source broke'));
      },
    });
    await assert.rejects(forward(from, slowSink(0).send, new AbortController().signal), /source broke/);
  });

  test('sends a side-band header with the data written right after it, as one chunk', async () => {
    const from = new PassThrough();
    const sent: Buffer[] = [];
    const forwarding = forward(from, async (chunk) => void sent.push(chunk), new AbortController().signal);
    // git writes a packet's 5-byte header and its data with two system calls
    from.write(Buffer.from('ffff\x01'));
    setImmediate(() => {
      from.write(Buffer.alloc(65531, 7));
      from.end();
    });
    await forwarding;
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.length, 65536);
    assert.equal(sent[0]!.subarray(0, 5).toString('latin1'), 'ffff\x01');
  });

  test('sends a small chunk on its own, without waiting for more, when nothing follows it', async () => {
    const from = new PassThrough();
    let first: (chunk: Buffer) => void = () => undefined;
    const firstSent = new Promise<Buffer>((resolve) => (first = resolve));
    const forwarding = forward(from, async (chunk) => first(chunk), new AbortController().signal);
    from.write(Buffer.from('0008NAK\n'));
    assert.equal((await firstSent).toString(), '0008NAK\n');
    from.end();
    await forwarding;
  });
});
