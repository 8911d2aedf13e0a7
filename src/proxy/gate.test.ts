import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import ssh2 from 'ssh2';
import { v1Header } from '../../test/helpers/proxyHeaders.js';
import { Metrics } from '../monitoring/metrics.js';
import type { ClientAddress } from '../server/address.js';
import { generateUsableKeyPair } from '../ssh/hostkeys/generate.js';
import { ProxyGate } from './gate.js';
import { ProxyPolicyResolver } from './policy.js';

/**
 * ProxyGate in front of a real ssh2 Server, as main wires it: what reaches ssh2 must be
 * exactly the client's bytes after the header, and the `reject` sniffer must see the first
 * chunk without ssh2 losing it.
 */
describe('ProxyGate in front of ssh2', { timeout: 60_000 }, () => {
  let listener: Server;
  let port: number;
  let gate: ProxyGate;
  let metrics: Metrics;
  let policy: 'use' | 'reject' = 'use';
  const handed: ClientAddress[] = [];
  const idents: string[] = [];
  let onIdent: ((ident: string) => void) | undefined;
  const nextIdent = (): Promise<string> => new Promise((resolve) => (onIdent = resolve));
  const sockets: Socket[] = [];

  before(async () => {
    const sshServer = new ssh2.Server({ hostKeys: [generateUsableKeyPair('ecdsa', { bits: 256 }).private] }, (client, info) => {
      idents.push(info.header.identRaw);
      onIdent?.(info.header.identRaw);
      client.on('error', () => undefined);
    });
    metrics = new Metrics(new Registry(), { lifecycleState: () => 'ready', drainSeconds: () => undefined, bytes: () => ({ received: 0, sent: 0 }) }, 'test');
    const make = (): ProxyGate =>
      new ProxyGate({
        policies: { policyFor: () => policy } as unknown as ProxyPolicyResolver,
        // Long enough that a busy machine cannot turn a header in flight into a timeout (the
        // client and the gate share this process's event loop); the idle() test waits it out.
        headerTimeoutMs: 2000,
        maxPending: 10,
        log: pino({ level: 'silent' }),
        metrics,
        signal: new AbortController().signal,
        next: (socket, client) => {
          handed.push(client);
          sshServer.injectSocket(socket);
        },
      });
    gate = make();
    listener = createServer((socket) => {
      socket.on('error', () => undefined);
      sockets.push(socket);
      gate.accept(socket);
    });
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    port = (listener.address() as AddressInfo).port;
  });
  after(() => {
    for (const socket of sockets) socket.destroy();
    listener.close();
  });

  async function client(firstWrite: Buffer): Promise<{ socket: Socket; closed: Promise<unknown> }> {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    sockets.push(socket);
    const closed = once(socket, 'close');
    // Read (and drop) what the server sends: a paused socket would never see the server close it.
    socket.resume();
    await once(socket, 'connect');
    socket.write(firstWrite);
    return { socket, closed };
  }

  test('use: a header and the SSH banner in one write give ssh2 the banner and the gate the client address', async () => {
    policy = 'use';
    const ident = nextIdent();
    await client(Buffer.concat([v1Header('192.0.2.9', 999), Buffer.from('SSH-2.0-OpenSSH_9.2 test\r\n')]));
    assert.equal(await ident, 'SSH-2.0-OpenSSH_9.2 test');
    assert.deepEqual(handed.at(-1), { ip: '192.0.2.9', port: 999, via: { ip: '127.0.0.1', port: handed.at(-1)!.via!.port } });
    assert.equal(gate.pending, 0);
  });

  test('reject: a plain client reaches ssh2 intact; a header in the first chunk is refused and counted', async () => {
    policy = 'reject';
    const ident = nextIdent();
    await client(Buffer.from('SSH-2.0-plain\r\n'));
    assert.equal(await ident, 'SSH-2.0-plain');
    const before = idents.length;
    const spoof = await client(Buffer.concat([v1Header('192.0.2.10', 1), Buffer.from('SSH-2.0-spoof\r\n')]));
    await spoof.closed;
    assert.equal(idents.length, before, 'the spoofing client never reached ssh2 with its banner');
    const refused = await metrics.connectionsRejected.get();
    assert.equal(refused.values.find((v) => v.labels.reason === 'proxy_header_not_allowed')?.value, 1);
  });

  test('idle() waits for connections still reading their header, then the count is zero', async () => {
    policy = 'use';
    const silent = connect(port, '127.0.0.1');
    silent.on('error', () => undefined);
    sockets.push(silent);
    await once(silent, 'connect');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(gate.pending, 1);
    await gate.idle();
    assert.equal(gate.pending, 0);
    // The silent client was handed on after the timeout: ssh2 speaks first to it.
    const [banner] = (await once(silent, 'data')) as [Buffer];
    assert.match(banner.toString('latin1'), /^SSH-2\.0-/);
  });
});
