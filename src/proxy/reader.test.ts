import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { v1Header, v2Header } from '../../test/helpers/proxyHeaders.js';
import { readProxyHeader, type ReadOutcome } from './reader.js';

describe('readProxyHeader on real sockets', () => {
  let server: Server;
  let port: number;
  const accepted: Socket[] = [];
  let waiting: ((socket: Socket) => void) | undefined;

  before(async () => {
    server = createServer((socket) => {
      socket.on('error', () => undefined);
      accepted.push(socket);
      waiting?.(socket);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    for (const socket of accepted) socket.destroy();
    server.close();
  });

  /**
   * Connects, lets `send` talk, and reads the header on the server side. The header timeout
   * is generous unless a test is about it: a busy machine must not turn data into a timeout.
   * `arrived`: bytes to wait for on the server side before reading starts, so that a test of
   * the timeout is not raced by bytes still on their way.
   */
  async function exchange(send: (client: Socket) => void, timeoutMs = 60_000, signal = new AbortController().signal, arrived = 0) {
    const serverSide = new Promise<Socket>((resolve) => (waiting = resolve));
    const client = connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    await once(client, 'connect');
    const socket = await serverSide;
    send(client);
    // A 'readable' listener buffers the bytes without consuming them; the reader gets them at once.
    while (socket.readableLength < arrived) await once(socket, 'readable');
    const outcome = await readProxyHeader(socket, { timeoutMs, signal });
    return { outcome, socket, client };
  }

  async function restOf(socket: Socket, client: Socket): Promise<string> {
    client.end();
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.resume();
    await once(socket, 'end');
    return Buffer.concat(chunks).toString('latin1');
  }

  test('a header split over several writes is read whole, and the bytes after it are handed on intact', async () => {
    const header = v2Header('203.0.113.9', 51000, '10.0.0.5', 22);
    const { outcome, socket, client } = await exchange((c) => {
      c.write(header.subarray(0, 5));
      setTimeout(() => c.write(header.subarray(5, 20)), 20);
      setTimeout(() => c.write(Buffer.concat([header.subarray(20), Buffer.from('SSH-2.0-x\r\n')])), 40);
    });
    assert.equal(outcome.kind, 'header');
    assert.deepEqual((outcome as Extract<ReadOutcome, { kind: 'header' }>).header, {
      version: 2,
      kind: 'proxied',
      source: { ip: '203.0.113.9', port: 51000 },
      destination: { ip: '10.0.0.5', port: 22 },
    });
    assert.equal(await restOf(socket, client), 'SSH-2.0-x\r\n');
  });

  test('a client that speaks SSH first is absent, and keeps every byte it sent', async () => {
    const { outcome, socket, client } = await exchange((c) => c.write('SSH-2.0-OpenSSH_9.2\r\nkexinit...'));
    assert.deepEqual(outcome, { kind: 'absent', silent: false });
    assert.equal(await restOf(socket, client), 'SSH-2.0-OpenSSH_9.2\r\nkexinit...');
  });

  test('a silent client is absent once the timeout passes', async () => {
    const { outcome } = await exchange(() => undefined, 50);
    assert.deepEqual(outcome, { kind: 'absent', silent: true });
  });

  test('half a header and then silence fails with timeout; half a header and a close fails as truncated', async () => {
    const half = v1Header('192.0.2.1', 1).subarray(0, 12);
    const slow = await exchange((c) => c.write(half), 80, undefined, half.length);
    assert.equal(slow.outcome.kind === 'failed' && slow.outcome.reason, 'timeout');
    const cut = await exchange((c) => c.end(half));
    assert.equal(cut.outcome.kind === 'failed' && cut.outcome.reason, 'truncated');
  });

  test('a peer that closes without a byte is reported as closed (a TCP health check)', async () => {
    const { outcome } = await exchange((c) => c.end());
    assert.deepEqual(outcome, { kind: 'closed' });
  });

  test('a malformed header fails at once, without waiting for the timeout', async () => {
    // Had it waited, the outcome would be the timeout's, an hour on.
    const { outcome } = await exchange((c) => c.write('PROXY TCP4 nonsense\r\n'), 3_600_000);
    assert.equal(outcome.kind === 'failed' && outcome.reason, 'malformed');
  });

  test('the shutdown signal ends the wait', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    const { outcome } = await exchange(() => undefined, 3_600_000, controller.signal);
    assert.equal(outcome.kind === 'failed' && outcome.reason, 'shutdown');
  });
});
