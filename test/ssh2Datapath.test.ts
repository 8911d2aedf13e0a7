import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { makeKey } from './helpers/client.js';

// What patches/ssh2+1.17.0+004+datapath.patch changes in ssh2's outbound data path:
// packets carved from shared slabs, padding from a pool of random bytes, and the socket
// corked for a tick so that a channel write's packets leave in one writev.

interface PaddingPoolClass {
  new (size: number, fill: (buf: Buffer) => Buffer): { take(target: Buffer, offset: number, len: number): void };
}
const crypto = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as {
  PaddingPool: PaddingPoolClass;
  allocPacketBuffer(size: number): Buffer;
  releasePacketBuffer(packet: Buffer): void;
};

describe('the padding pool', () => {
  test('hands out every random byte once, in order, and refills when a request does not fit', () => {
    const pools: Buffer[] = [];
    const pool = new crypto.PaddingPool(64, (buf) => {
      randomBytes(buf.length).copy(buf);
      pools.push(Buffer.from(buf));
      return buf;
    });
    const taken: Buffer[][] = [];
    for (let i = 0; i < 500; i += 1) {
      const len = 4 + (i % 16);
      const target = Buffer.alloc(len + 10);
      pool.take(target, 5, len);
      assert.equal(target.subarray(0, 5).compare(Buffer.alloc(5)), 0, 'nothing written before the offset');
      assert.equal(target.subarray(5 + len).compare(Buffer.alloc(5)), 0, 'nothing written past the padding');
      const padding = target.subarray(5, 5 + len);
      if (taken.length < pools.length) taken.push([]);
      taken[pools.length - 1]!.push(Buffer.from(padding));
    }
    assert.ok(pools.length > 50, 'the pool was refilled many times');
    // Each pool's bytes were handed out as consecutive, non-overlapping runs from its start.
    taken.forEach((runs, index) => {
      const handed = Buffer.concat(runs);
      assert.ok(handed.length <= 64);
      assert.equal(handed.compare(pools[index]!.subarray(0, handed.length)), 0, `pool ${index} handed out in order, once`);
    });
  });

  test('a packet buffer is never handed out again while it has not been released', () => {
    // Random allocations and releases, as sockets taking packets late and out of order
    // would make; every live packet holds a tag that no later packet may overwrite.
    let seed = 12345;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const live: Array<{ packet: Buffer; tag: number }> = [];
    const memories = new Set<ArrayBufferLike>();
    let reused = 0;
    for (let step = 0; step < 6_000; step += 1) {
      if (live.length > 0 && (random() < 0.45 || live.length > 60)) {
        const [{ packet, tag }] = live.splice(Math.floor(random() * live.length), 1) as [{ packet: Buffer; tag: number }];
        assert.ok(packet.equals(Buffer.alloc(packet.length, tag)), `a live packet (tag ${tag}) was overwritten`);
        crypto.releasePacketBuffer(packet);
        crypto.releasePacketBuffer(packet); // a second release is ignored
        crypto.releasePacketBuffer(packet.subarray(0, 4)); // so is a slice
        continue;
      }
      const size = [48, 1000, 32_800, 16_400, 140_000][Math.floor(random() * 5)]!;
      const packet = crypto.allocPacketBuffer(size);
      assert.equal(packet.length, size);
      if (memories.has(packet.buffer)) reused += 1;
      memories.add(packet.buffer);
      const tag = step % 251;
      packet.fill(tag);
      live.push({ packet, tag });
    }
    for (const { packet, tag } of live) {
      assert.ok(packet.equals(Buffer.alloc(packet.length, tag)));
      crypto.releasePacketBuffer(packet);
    }
    assert.ok(reused > 500, `slabs were reused (${reused} packets in reused memory)`);
  });

  test('an unreleased packet keeps its whole slab out of reuse', () => {
    const held = crypto.allocPacketBuffer(32_800);
    const heldMemory = held.buffer;
    let movedOn = false;
    for (let i = 0; i < 2_000; i += 1) {
      const packet = crypto.allocPacketBuffer(32_800);
      // The rest of the held packet's slab is used up, then never that slab again.
      if (packet.buffer !== heldMemory) movedOn = true;
      else assert.ok(!movedOn, 'a slab with a live packet was handed out again');
      crypto.releasePacketBuffer(packet);
    }
    assert.ok(movedOn);
    crypto.releasePacketBuffer(held);
  });
});

describe('the outbound data path, end to end between ssh2 server and client', () => {
  let net: NetServer;
  let server: ssh2.Server;
  let port: number;
  const payload = randomBytes(3 * 1024 * 1024 + 777);
  const errors = randomBytes(200 * 1024 + 5);
  const sockets: Socket[] = [];
  let socketWrites = 0;
  let packetsSent = 0;

  before(async () => {
    const hostKey = makeKey('ed25519');
    server = new ssh2.Server({ hostKeys: [(await import('node:fs')).readFileSync(hostKey.path)] }, (client) => {
      client.on('error', () => undefined);
      client.on('authentication', (ctx) => ctx.accept());
      client.on('session', (accept) => {
        accept().once('exec', (acceptExec) => {
          const channel = acceptExec();
          // Chunks of uneven sizes (some several packets long), stdout and stderr
          // interleaved, one write at a time as git-sshd's ChannelOutput does (ssh2 resends
          // a stale chunk when writes to both streams wait for window space at once).
          const write = (stream: NodeJS.WritableStream, chunk: Buffer): Promise<void> =>
            new Promise((resolve, reject) => void stream.write(chunk, (err) => (err ? reject(err) : resolve())));
          void (async () => {
            let out = 0;
            let err = 0;
            for (let step = 1; out < payload.length || err < errors.length; step += 1) {
              if (err < errors.length && (step % 3 === 0 || out === payload.length)) {
                const size = Math.min(errors.length - err, 1 + ((step * 7919) % 9000));
                await write(channel.stderr, errors.subarray(err, err + size));
                err += size;
              } else {
                const size = Math.min(payload.length - out, 1 + ((step * 104_729) % 150_000));
                await write(channel, payload.subarray(out, out + size));
                out += size;
              }
            }
            channel.exit(0);
            channel.end();
          })();
        });
      });
    });
    net = createServer((socket) => {
      sockets.push(socket);
      const counted = socket as unknown as { _write: (...args: unknown[]) => void; _writev: (...args: unknown[]) => void };
      const write = counted._write.bind(socket);
      const writev = counted._writev.bind(socket);
      counted._write = (...args) => {
        socketWrites += 1;
        packetsSent += 1;
        write(...args);
      };
      counted._writev = (chunks, ...rest) => {
        socketWrites += 1;
        packetsSent += (chunks as unknown[]).length;
        writev(chunks, ...rest);
      };
      server.injectSocket(socket);
    });
    net.listen(0, '127.0.0.1');
    await once(net, 'listening');
    port = (net.address() as AddressInfo).port;
  });

  after(() => {
    for (const socket of sockets) socket.destroy();
    net.close();
  });

  for (const cipher of ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr'] as const) {
    test(`stdout and stderr arrive whole and in order (${cipher}), with several packets per socket write`, async () => {
      const client = new ssh2.Client();
      client.on('error', () => undefined);
      const writesBefore = socketWrites;
      const packetsBefore = packetsSent;
      try {
        const ready = once(client, 'ready');
        client.connect({ host: '127.0.0.1', port, username: 'u', password: 'p', algorithms: { cipher: [cipher] }, readyTimeout: 60_000 });
        await ready;
        const { stdout, stderr } = await new Promise<{ stdout: Buffer; stderr: Buffer }>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no exit within 120 s')), 120_000);
          client.exec('send', (err, stream) => {
            if (err) return reject(err);
            const out: Buffer[] = [];
            const errOut: Buffer[] = [];
            stream.on('data', (chunk: Buffer) => out.push(chunk));
            stream.stderr.on('data', (chunk: Buffer) => errOut.push(chunk));
            stream.once('close', () => {
              clearTimeout(timer);
              resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(errOut) });
            });
          });
        });
        assert.equal(stdout.length, payload.length);
        assert.ok(stdout.equals(payload), 'stdout intact and in order');
        assert.ok(stderr.equals(errors), 'stderr intact and in order');
        const writes = socketWrites - writesBefore;
        const packets = packetsSent - packetsBefore;
        assert.ok(packets > 100);
        assert.ok(writes < packets / 1.5, `${packets} packets in ${writes} socket writes: batched`);
      } finally {
        client.end();
      }
    });
  }
});
