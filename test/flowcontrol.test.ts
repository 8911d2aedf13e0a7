import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import ssh2 from 'ssh2';
import { git, gitLocal, makeKey, ssh, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { TestServer } from './helpers/server.js';

const { Client } = ssh2;
type Ssh2Client = InstanceType<typeof Client>;

const MEGABYTE = 1024 * 1024;
/** Random bytes do not compress: `git archive` of this repository is a ~60 MB tar. */
const REPO_FILES = 6;
const REPO_FILE_SIZE = 10 * MEGABYTE;
/** `git archive --remote` asks for HEAD: one pkt-line (length includes its own 4 digits), then a flush. */
const ARCHIVE_REQUEST = Buffer.from('0012argument HEAD\n0000');
/**
 * Flood packets are one byte short of 32 KiB: ssh2 silently drops data when a channel's
 * window is at exactly 0, and 32 KiB packets would land there; this size never does.
 */
const FLOOD_PACKET = 32 * 1024 - 1;
/** What the flooding client would send if nobody stopped it. */
const FLOOD_BUDGET = 160 * MEGABYTE;
/**
 * What the client may have sent when it notices the cut-off: the 4 MiB cap, the 2 MiB
 * window, and what loopback's socket buffers hold, the server having stopped reading at
 * the violation (9-11 MiB measured, also beside `stress-ng --cpu 2`). Before it stopped
 * reading, what the client sent grew with how long a loaded machine took to close the
 * connection: 95 MiB once.
 */
const FLOOD_SENT_LIMIT = 64 * MEGABYTE;
/**
 * Bounds on the server's peak RSS growth during an attack. Measured undefended (the guard
 * removed from a scratch build): ~205 MiB for the flood, ~43-48 MiB for the stalled reader
 * (the rest of the 60 MB waits in kernel socket buffers). Defended: under 10 MiB and 1 MiB.
 */
const FLOOD_GROWTH_LIMIT = 32 * MEGABYTE;
const STALL_GROWTH_LIMIT = 20 * MEGABYTE;
/** Every test here finishes in seconds; a bound far above that, for a loaded machine, makes a hang fail instead of stalling the suite. */
const TIMEOUT = { timeout: 5 * 60_000 };

/** The parts of ssh2's client an attacker reaches past: its packet writer and its socket. */
interface ClientInternals {
  _protocol: {
    channelData(channel: number, data: Buffer): void;
    channelWindowAdjust(channel: number, amount: number): void;
  };
  _sock: Socket;
}

function internals(client: Ssh2Client): ClientInternals {
  return client as unknown as ClientInternals;
}

/** The channel number the server knows a client channel by. */
function remoteId(stream: ssh2.ClientChannel): number {
  return (stream.outgoing as { id: number }).id;
}

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match, `no ${field} for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** Starts measuring a process's peak memory from now (resets its VmHWM). */
function memoryProbe(pid: number): { peakGrowth: () => number } {
  const start = procStatus(pid, 'VmRSS');
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  return { peakGrowth: () => procStatus(pid, 'VmHWM') - start };
}

function mib(bytes: number): string {
  return `${(bytes / MEGABYTE).toFixed(1)} MiB`;
}

/** Resolves once the socket takes more data, or has closed (never rejects). */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** Resolves when the client's connection is gone; ends it first, whatever state it is in. */
function destroy(client: Ssh2Client): Promise<void> {
  const socket = internals(client)._sock;
  const closed = socket.closed ? Promise.resolve() : once(socket, 'close').then(() => undefined);
  socket.destroy();
  return closed;
}

async function connect(key: ClientKey, port: number): Promise<Ssh2Client> {
  const client = new Client();
  client.on('error', () => undefined);
  const ready = once(client, 'ready');
  client.connect({ host: '127.0.0.1', port, username: 'git', privateKey: readFileSync(key.path), readyTimeout: 60_000 });
  await ready;
  return client;
}

function exec(client: Ssh2Client, command: string): Promise<ssh2.ClientChannel> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(err);
      stream.on('error', () => undefined);
      stream.stderr.on('error', () => undefined);
      resolve(stream);
    });
  });
}

describe('SSH flow control against a client that ignores it', () => {
  let server: TestServer;
  let key: ClientKey;
  let archiveWriters: () => number;

  before(async () => {
    key = makeKey();
    server = await TestServer.start({ users: [{ name: 'alice', keys: [key.publicLine], access: { '*': 'admin' } }] });
    const work = temporaryDir('git-sshd-flow-');
    gitLocal(['init', '-q', '-b', 'main', work]);
    for (let file = 0; file < REPO_FILES; file++) writeFileSync(join(work, `blob-${file}.bin`), randomBytes(REPO_FILE_SIZE));
    gitLocal(['add', '.'], work);
    gitLocal(['-c', 'user.name=T', '-c', 'user.email=t@e', 'commit', '-qm', 'big'], work);
    const pushed = await git(key, server.port, ['push', url(server.port, 'big'), 'main'], work);
    assert.equal(pushed.code, 0, pushed.stderr);
    const repoDir = join(server.reposDir, 'big.git');
    archiveWriters = () => {
      try {
        return execFileSync('pgrep', ['-f', `upload-archive--writer ${repoDir}`], { encoding: 'utf8' }).trim().split('\n').length;
      } catch {
        return 0;
      }
    };
  });

  after(() => server.dispose());

  /** Waits (bounded) until no git archive writer of ours is left, and says whether none is. */
  async function writersGone(): Promise<boolean> {
    for (let attempt = 0; attempt < 1200 && archiveWriters() > 0; attempt++) await sleep(50);
    return archiveWriters() === 0;
  }

  async function welcomeStillWorks(): Promise<void> {
    const welcome = await ssh(key, server.port);
    assert.equal(welcome.stdout, 'Welcome to git-sshd, @alice!\n');
    assert.equal(server.child.exitCode, null, 'the server exited');
  }

  test('a client that sends far past its window is cut off after a few megabytes, and server memory stays flat', TIMEOUT, async (t) => {
    const client = await connect(key, server.port);
    try {
      const stream = await exec(client, "git-upload-archive 'big'");
      // The test never reads the archive, so git blocks writing it, and after its request
      // nothing reads the channel's input: everything sent now waits in the server.
      stream.write(ARCHIVE_REQUEST);
      const mark = server.mark();
      const memory = memoryProbe(server.child.pid!);
      const { _protocol: protocol, _sock: socket } = internals(client);
      const packet = Buffer.alloc(FLOOD_PACKET, 'x');
      let sent = 0;
      while (sent < FLOOD_BUDGET && socket.writable) {
        protocol.channelData(remoteId(stream), packet);
        sent += packet.length;
        if (socket.writableLength > MEGABYTE) await drained(socket);
      }
      const growth = memory.peakGrowth();
      t.diagnostic(`flood: sent ${mib(sent)} before the cut-off, server peak RSS growth ${mib(growth)}`);
      assert.ok(sent < FLOOD_SENT_LIMIT, `the client could send ${mib(sent)} past its window`);
      assert.ok(growth < FLOOD_GROWTH_LIMIT, `server peak RSS grew by ${mib(growth)}`);
      const logged = await server.waitForLogSince(mark, (line) => line.msg === 'client sent past its window; closing the session');
      assert.ok((logged.unread as number) <= 4 * MEGABYTE, `unread ${logged.unread}`);
    } finally {
      await destroy(client);
    }
    assert.ok(await writersGone(), 'git upload-archive is still running');
    await welcomeStillWorks();
  });

  test('a client that stops reading TCP while granting a huge window leaves the archive unbuffered', TIMEOUT, async (t) => {
    const client = await connect(key, server.port);
    try {
      const stream = await exec(client, "git-upload-archive 'big'");
      const { _protocol: protocol, _sock: socket } = internals(client);
      // 2 GiB more window than ssh2 granted: SSH flow control no longer holds the server back.
      protocol.channelWindowAdjust(remoteId(stream), 2 ** 31);
      stream.write(ARCHIVE_REQUEST);
      socket.pause();
      const memory = memoryProbe(server.child.pid!);
      // Nothing to await: the server's only sign of the defense is doing nothing. Give it time
      // that, undefended, is ample to read the whole archive into memory.
      let growth = 0;
      for (let tick = 0; tick < 30 && growth < STALL_GROWTH_LIMIT; tick++) {
        await sleep(100);
        growth = memory.peakGrowth();
      }
      const stillWriting = archiveWriters() > 0;
      t.diagnostic(`stalled reader: server peak RSS growth ${mib(growth)}, git still writing: ${stillWriting}`);
      assert.ok(growth < STALL_GROWTH_LIMIT, `server peak RSS grew by ${mib(growth)} for a ${(REPO_FILES * REPO_FILE_SIZE) / MEGABYTE} MB archive`);
      assert.ok(stillWriting, 'git finished the archive although the client read none of it: the server buffered it');
    } finally {
      const summary = server.nextLog((line) => line.msg === 'connection closed');
      await destroy(client);
      await summary;
    }
    assert.ok(await writersGone(), 'git upload-archive is still running after the client went away');
    await welcomeStillWorks();
  });
});
