import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer, connect, type OnReadOpts, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SocketPair {
  /** Our end: reads with the given `onread` (into the caller's buffers, not a fresh one per read), if one was given. */
  readonly ours: Socket;
  /** The other end, paused, to be handed to a child's stdio and then destroyed here. */
  readonly theirs: Socket;
}

/**
 * Makes connected pairs of Unix stream sockets, the kind libuv gives a child for its stdio
 * pipes, but with our end built by `net.connect` so that it can take `onread`:
 * `child_process` offers no way to read a child's output into a reused buffer, and Node
 * has no socketpair(2). Each pair is made by connecting to a listener of its own in a
 * directory only we can enter (0700, so no other user can connect first); the listener
 * and its path are gone before the pair is returned. The directory is made once (making
 * one per pair cost more than the pair itself) and removed by `removeDirectory`.
 */
export class SocketPairs {
  private directory: Promise<string> | undefined;
  private made: string | undefined;
  private count = 0;

  constructor(private readonly parent: string = tmpdir()) {}

  async make(onread?: OnReadOpts): Promise<SocketPair> {
    try {
      return await this.connect(onread, await this.privateDirectory());
    } catch (err) {
      // Removed under us (a temp cleaner; libuv reports a missing directory as EACCES): a new one next time.
      if (['ENOENT', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) this.directory = undefined;
      throw err;
    }
  }

  /** Removes the directory (synchronous, for process exit). */
  removeDirectory(): void {
    if (this.made !== undefined) rmSync(this.made, { recursive: true, force: true });
  }

  private privateDirectory(): Promise<string> {
    this.directory ??= mkdtemp(join(this.parent, 'git-sshd-')).then(
      (dir) => (this.made = dir),
      (err: unknown) => {
        this.directory = undefined;
        throw err;
      },
    );
    return this.directory;
  }

  private async connect(onread: OnReadOpts | undefined, directory: string): Promise<SocketPair> {
    const path = join(directory, String((this.count += 1)));
    const server = createServer({ pauseOnConnect: true });
    let ours: Socket | undefined;
    let accepted: Promise<[Socket]> | undefined;
    try {
      server.listen(path);
      await once(server, 'listening');
      accepted = once(server, 'connection') as Promise<[Socket]>;
      ours = connect(onread ? { path, onread } : { path });
      const [[theirs]] = await Promise.all([Promise.race([accepted, droppedByListener(ours)]), once(ours, 'connect')]);
      // git owns that socket from now on: nothing of ours reads or writes it.
      theirs.on('error', () => undefined);
      // Not one of the listener's connections any more (it closes below): child_process.send
      // would otherwise track it for the cluster module, with a list and listeners per
      // listener, on both sides of the channel, kept as long as the channel lives.
      (theirs as Socket & { server: unknown }).server = null;
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
    }
  }
}

/**
 * Rejects when our end closes before the listener accepted it. Out of descriptors, libuv
 * accepts and closes a pending connection to keep the listener alive (its "EMFILE trick")
 * and reports nothing to the server, so `connection` would never come: our end seeing the
 * close is the only sign. Named EMFILE, the one cause, so that callers treat it as such.
 */
function droppedByListener(ours: Socket): Promise<never> {
  return new Promise((_resolve, reject) => {
    ours.once('close', () => reject(Object.assign(new Error('the socket pair was dropped before it was accepted: EMFILE (too many open files)'), { code: 'EMFILE' })));
  });
}
