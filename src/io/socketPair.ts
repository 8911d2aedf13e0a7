import { once } from 'node:events';
import { mkdtemp, rm, rmdir } from 'node:fs/promises';
import { createServer, connect, type OnReadOpts, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SocketPair {
  /** Our end: reads with the given `onread` (into the caller's buffers, not a fresh one per read). */
  readonly ours: Socket;
  /** The other end, paused, to be handed to a child's stdio and then destroyed here. */
  readonly theirs: Socket;
}

/**
 * Two connected Unix stream sockets, the kind libuv gives a child for its stdio pipes, but
 * with our end built by `net.connect` so that it can take `onread`: `child_process` offers
 * no way to read a child's output into a reused buffer, and Node has no socketpair(2).
 * Made by connecting to a listening socket in a fresh directory only we can enter (0700,
 * so no other user can connect first); the listener, its path and the directory are gone
 * before this resolves, whatever happens.
 */
export async function socketPair(onread: OnReadOpts, directory: string = tmpdir()): Promise<SocketPair> {
  const dir = await mkdtemp(join(directory, 'git-sshd-'));
  const server = createServer({ pauseOnConnect: true });
  let ours: Socket | undefined;
  let accepted: Promise<[Socket]> | undefined;
  try {
    server.listen(join(dir, 's'));
    await once(server, 'listening');
    accepted = once(server, 'connection') as Promise<[Socket]>;
    ours = connect({ path: join(dir, 's'), onread });
    const [[theirs]] = await Promise.all([accepted, once(ours, 'connect')]);
    // git owns that socket from now on: nothing of ours reads or writes it.
    theirs.on('error', () => undefined);
    // Whoever else might connect before the listener closes gets nothing.
    server.on('connection', (stray: Socket) => stray.destroy());
    return { ours, theirs };
  } catch (err) {
    ours?.destroy();
    accepted?.then(([theirs]) => theirs.destroy(), () => undefined);
    throw err;
  } finally {
    // Closes the listener at once (libuv unlinks its path); its 'close' waits for `theirs`.
    server.close();
    await rmdir(dir).catch(() => rm(dir, { recursive: true, force: true }));
  }
}
