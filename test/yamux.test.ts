import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { YamuxSession } from '../src/yamux/session.js';
import type { YamuxStream } from '../src/yamux/stream.js';
import { GitalyPeer } from './helpers/gitalyPeer.js';

const PUSH_BYTES = 3 * 1024 * 1024;

function patternByte(index: number): number {
  return index % 251;
}

async function readAll(stream: YamuxStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('yamux against the real hashicorp/yamux (the Gitaly peer\'s echo mode)', () => {
  let peer: GitalyPeer;
  const sockets: Socket[] = [];

  before(async () => {
    peer = await GitalyPeer.start(['-yamux-echo', '-yamux-push-bytes', String(PUSH_BYTES)]);
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await peer.stop();
  });

  async function session(): Promise<{ session: YamuxSession; firstIncoming: Promise<YamuxStream> }> {
    const socket = connect(peer.port, '127.0.0.1');
    sockets.push(socket);
    await once(socket, 'connect');
    const yamux = new YamuxSession(socket);
    // Every session gets the server's pushed stream; those a test does not read are dropped.
    yamux.on('stream', (stream) => stream.on('error', () => undefined));
    const firstIncoming = once(yamux, 'stream').then(([stream]) => stream as YamuxStream);
    return { session: yamux, firstIncoming };
  }

  test('a stream we open echoes 5 MB back byte-identical, through both windows, and ends on FIN both ways', async () => {
    const { session: yamux } = await session();
    const stream = yamux.openStream();
    const payload = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 1) payload[i] = (i * 7) & 0xff;
    const echoed = readAll(stream);
    stream.end(payload);
    assert.ok((await echoed).equals(payload));
    const reported = await peer.waitFor((event) => event.event === 'yamux-echoed' && event.bytes === payload.length);
    assert.equal(reported.bytes, payload.length);
    yamux.close();
  });

  test('a stream the server opens delivers all its bytes to a slow reader, the server waiting on our window', async () => {
    const { session: yamux, firstIncoming } = await session();
    const stream = await firstIncoming;
    // Read nothing for a while: the server may have sent at most our window.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(stream.readableLength <= 256 * 1024, `buffered ${stream.readableLength}`);
    const received = await readAll(stream);
    assert.equal(received.length, PUSH_BYTES);
    for (let i = 0; i < received.length; i += 4099) assert.equal(received[i], patternByte(i), `byte ${i}`);
    yamux.close();
  });

  test('several streams at once stay apart', async () => {
    const { session: yamux } = await session();
    const results = await Promise.all(
      [1, 2, 3, 4].map(async (n) => {
        const stream = yamux.openStream();
        const echoed = readAll(stream);
        stream.end(Buffer.alloc(300_000 * n, n));
        return { n, data: await echoed };
      }),
    );
    for (const { n, data } of results) assert.ok(data.equals(Buffer.alloc(300_000 * n, n)), `stream ${n}`);
    yamux.close();
  });

  test('the server\'s keep-alive pings are answered (the session outlives several intervals) and ours are too', async () => {
    const { session: yamux } = await session();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.ok(yamux.open, 'the server would have closed the session on an unanswered ping');
    const rtt = await yamux.ping(10_000);
    assert.ok(rtt >= 0);
    const stream = yamux.openStream();
    const echoed = readAll(stream);
    stream.end('still here');
    assert.equal((await echoed).toString(), 'still here');
    yamux.close();
  });

  test('a stream we reset is dropped by the server, and the session carries on', async () => {
    const { session: yamux } = await session();
    const doomed = yamux.openStream();
    doomed.on('error', () => undefined);
    doomed.write('partial');
    doomed.destroy();
    const stream = yamux.openStream();
    const echoed = readAll(stream);
    stream.end('after reset');
    assert.equal((await echoed).toString(), 'after reset');
    yamux.close();
  });

  test('closing the session sends go-away: the server sees the session end', async () => {
    const { session: yamux } = await session();
    const closedBefore = peer.events.filter((event) => event.event === 'yamux-session-closed').length;
    yamux.close();
    await peer.waitFor((event) => event.event === 'yamux-session-closed' && peer.events.filter((e) => e.event === 'yamux-session-closed').length > closedBefore);
    assert.throws(() => yamux.openStream(), /closed/);
  });

  test('the connection dropping under a stream ends the stream with an error', async () => {
    const { session: yamux } = await session();
    const stream = yamux.openStream();
    const failed = once(stream, 'error');
    sockets.at(-1)!.destroy();
    const [err] = (await failed) as [Error];
    assert.match(err.message, /closed|ended/);
    assert.equal(yamux.open, false);
  });
});
