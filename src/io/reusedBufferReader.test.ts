import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { ReusedBufferReader } from './reusedBufferReader.js';
import { SocketPairs } from './socketPair.js';

const BUFFER = 64 * 1024;
const open: Socket[] = [];
const pairs = new SocketPairs();

/** A reader on our end of a fresh socket pair, and the other end to write into. */
async function readerPair(): Promise<{ reader: ReusedBufferReader; writer: Socket }> {
  const reader = new ReusedBufferReader(BUFFER);
  const { ours, theirs } = await pairs.make(reader.onread);
  reader.attach(ours);
  theirs.resume();
  open.push(ours, theirs);
  return { reader, writer: theirs };
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Writes `data` in `size`-byte writes, each after the previous was taken by the kernel. */
async function writeAll(writer: Socket, data: Buffer, size: number): Promise<void> {
  for (let offset = 0; offset < data.length; offset += size) {
    if (!writer.write(data.subarray(offset, offset + size))) await once(writer, 'drain');
  }
  writer.end();
}

after(() => {
  for (const socket of open) socket.destroy();
  pairs.removeDirectory();
});

describe('ReusedBufferReader', () => {
  test('delivers every byte in order, in chunks no larger than its buffer, from two buffers only', async () => {
    const { reader, writer } = await readerPair();
    const data = randomBytes(5 * 1024 * 1024);
    const writing = writeAll(writer, data, 48 * 1024);
    const copies: Buffer[] = [];
    const backing = new Set<ArrayBufferLike>();
    for await (const chunk of reader.chunks(new AbortController().signal)) {
      assert.ok(chunk.length <= BUFFER);
      backing.add(chunk.buffer);
      copies.push(Buffer.from(chunk));
    }
    await writing;
    assert.ok(Buffer.concat(copies).equals(data), 'the bytes read are the bytes written');
    assert.ok(backing.size <= 2, `chunks came from ${backing.size} buffers`);
  });

  test('does not read while the consumer holds a chunk, and the chunk stays as it was', async () => {
    const { reader, writer } = await readerPair();
    const signal = new AbortController().signal;
    const chunks = reader.chunks(signal);
    writer.write(Buffer.alloc(BUFFER, 1));
    const first = await chunks.next();
    assert.equal(first.done, false);
    const held = first.value as Buffer;
    const before = Buffer.from(held);
    // More than the kernel takes: what the reader does not read stays with the writer.
    const more = Buffer.alloc(4 * 1024 * 1024, 2);
    writer.write(more);
    for (let i = 0; i < 20; i += 1) await turn();
    assert.ok(held.equals(before), 'the held chunk was not overwritten');
    assert.ok(writer.writableLength > 0, 'the writer is held back: backpressure reaches it');
    let rest = 0;
    writer.end();
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) rest += next.value.length;
    assert.equal(rest, more.length);
  });

  test('sends a side-band header with the data written right after it, as one chunk', async () => {
    const { reader, writer } = await readerPair();
    const sent: Buffer[] = [];
    const reading = (async () => {
      for await (const chunk of reader.chunks(new AbortController().signal)) sent.push(Buffer.from(chunk));
    })();
    // git writes a packet's 5-byte header and its data with two system calls
    writer.write(Buffer.from('ffff\x01'));
    setImmediate(() => writer.end(Buffer.alloc(1000, 7)));
    await reading;
    assert.equal(Buffer.concat(sent).length, 1005);
    assert.equal(sent.length, 1, `chunks: ${sent.map((chunk) => chunk.length).join(', ')}`);
  });

  test('hands out a small write that nothing follows (a flush packet) without waiting for more', async () => {
    const { reader, writer } = await readerPair();
    const chunks = reader.chunks(new AbortController().signal);
    writer.write(Buffer.from('0000'));
    const next = await chunks.next();
    assert.equal((next.value as Buffer).toString(), '0000');
    writer.end();
  });

  test('gathered small writes each leave room for the next, however many come', async () => {
    const { reader, writer } = await readerPair();
    const chunks = reader.chunks(new AbortController().signal);
    let total = 0;
    // Each a little under SMALL_CHUNK, together more than a buffer.
    for (let i = 0; i < 1500; i += 1) {
      const line = `${String(i).padStart(49, '0')}\n`;
      writer.write(Buffer.from(line));
      const next = await chunks.next();
      assert.equal((next.value as Buffer).toString(), line);
      total += line.length;
    }
    assert.ok(total > BUFFER);
    writer.end();
  });

  test('drain reads on and drops, leaving the chunk a consumer gave up on untouched', async () => {
    const { reader, writer } = await readerPair();
    const chunks = reader.chunks(new AbortController().signal);
    writer.write(Buffer.alloc(BUFFER, 1));
    const held = (await chunks.next()).value as Buffer;
    const before = Buffer.from(held);
    await chunks.return(undefined);
    reader.drain();
    await writeAll(writer, randomBytes(8 * 1024 * 1024), 64 * 1024);
    assert.ok(held.equals(before), 'the given-up chunk was not overwritten');
  });

  test('drain ends the chunks at the end of the socket', async () => {
    const { reader, writer } = await readerPair();
    const reading = (async () => {
      let count = 0;
      for await (const chunk of reader.chunks(new AbortController().signal)) count += chunk.length;
      return count;
    })();
    await turn();
    reader.drain();
    await writeAll(writer, Buffer.alloc(1024 * 1024), 64 * 1024);
    assert.equal(await reading, 0);
  });

  test('destroy while the consumer waits ends it with a premature close', async () => {
    const { reader } = await readerPair();
    const reading = (async () => {
      for await (const chunk of reader.chunks(new AbortController().signal)) void chunk;
    })();
    await turn();
    reader.destroy();
    await assert.rejects(reading, { code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });

  test('an abort while the socket is quiet rejects with its reason', async () => {
    const { reader } = await readerPair();
    const controller = new AbortController();
    const reading = (async () => {
      for await (const chunk of reader.chunks(controller.signal)) void chunk;
    })();
    setTimeout(() => controller.abort(new Error('stopped while quiet')), 10);
    await assert.rejects(reading, /stopped while quiet/);
  });
});
