import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import ssh2, { type ServerChannel } from 'ssh2';
import { ChannelOutput } from './channelOutput.js';
import { generateUsableKeyPair } from './hostkeys/generate.js';

const { Server, Client } = ssh2;

/**
 * A real ssh2 server and client on loopback: the server's exec handler is the test's,
 * the client reads as slowly as the test wants, so the SSH window really fills up.
 */
describe('channel output', () => {
  let server: InstanceType<typeof Server>;
  let port: number;
  let onExec: (channel: ServerChannel, socket: Socket) => void = () => undefined;

  before(async () => {
    server = new Server({ hostKeys: [generateUsableKeyPair('ed25519').private] }, (client) => {
      const socket = (client as unknown as { _sock: Socket })._sock;
      client.on('error', () => undefined);
      client.on('authentication', (ctx) => ctx.accept());
      client.on('session', (accept) => {
        accept().on('exec', (acceptExec) => onExec(acceptExec(), socket));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  after(() => server.close());

  interface Received {
    stdout: Buffer;
    stderr: Buffer;
    exitCode: number | undefined;
  }

  /** Runs one exec, reading `pauseMs` late after every chunk, and collects everything. */
  async function execSlowly(pauseMs: number): Promise<Received> {
    const client = new Client();
    client.on('error', () => undefined);
    client.connect({ host: '127.0.0.1', port, username: 'test', password: 'x', readyTimeout: 60_000 });
    await once(client, 'ready');
    const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      client.exec('produce', (err, channel) => (err ? reject(err) : resolve(channel))),
    );
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let exitCode: number | undefined;
    stream.on('exit', (code: number) => (exitCode = code));
    stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    stream.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      stream.pause();
      setTimeout(() => stream.resume(), pauseMs);
    });
    await once(stream, 'close');
    client.end();
    return { stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr), exitCode };
  }

  test('a slow reader gets every stdout byte once, then stderr, then the exit status', async () => {
    const big = randomBytes(3 * 1024 * 1024);
    const errors = randomBytes(64 * 1024);
    onExec = (channel, socket) => {
      const output = new ChannelOutput(channel, socket, new AbortController().signal);
      void (async () => {
        for (let offset = 0; offset < big.length; offset += 65536) await output.write('stdout', big.subarray(offset, offset + 65536));
        for (let offset = 0; offset < errors.length; offset += 8192) await output.write('stderr', errors.subarray(offset, offset + 8192));
        await output.write('stdout', Buffer.from('tail'));
        channel.exit(7);
        channel.end();
      })();
    };
    const received = await execSlowly(2);
    assert.equal(received.stdout.length, big.length + 4);
    assert.ok(received.stdout.subarray(0, big.length).equals(big), 'stdout bytes differ');
    assert.equal(received.stdout.subarray(big.length).toString(), 'tail');
    assert.ok(received.stderr.equals(errors), `stderr: ${received.stderr.length} of ${errors.length} bytes`);
    assert.equal(received.exitCode, 7);
  });

  test('interleaved stdout and stderr while the window is full arrive complete and in order per stream', async () => {
    const chunks = Array.from({ length: 200 }, (_, i) => randomBytes(20_000 + i));
    onExec = (channel, socket) => {
      const output = new ChannelOutput(channel, socket, new AbortController().signal);
      void (async () => {
        await Promise.all(chunks.map((chunk, i) => output.write(i % 3 === 0 ? 'stderr' : 'stdout', chunk)));
        channel.exit(0);
        channel.end();
      })();
    };
    const received = await execSlowly(1);
    assert.ok(received.stdout.equals(Buffer.concat(chunks.filter((_, i) => i % 3 !== 0))));
    assert.ok(received.stderr.equals(Buffer.concat(chunks.filter((_, i) => i % 3 === 0))));
    assert.equal(received.exitCode, 0);
  });

  test('an abort rejects a write that waits for the window', async () => {
    const controller = new AbortController();
    let rejected: unknown;
    onExec = (channel, socket) => {
      const output = new ChannelOutput(channel, socket, controller.signal);
      void (async () => {
        try {
          for (let i = 0; i < 100; i++) {
            if (i === 50) controller.abort(new Error('stop'));
            await output.write('stdout', randomBytes(65536));
          }
        } catch (err) {
          rejected = err;
        }
        channel.end();
      })();
    };
    await execSlowly(1);
    assert.match(String(rejected), /stop/);
  });
});
