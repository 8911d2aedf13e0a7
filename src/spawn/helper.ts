import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { FromHelper, ToHelper } from './protocol.js';

/** What the helper needs of its end of the IPC channel (the helper's `process`). */
export interface HelperChannel {
  on(event: 'message', listener: (message: ToHelper, handle: unknown) => void): unknown;
  send?(message: FromHelper): boolean;
}

/**
 * The helper's side: starts each requested process with the sockets it was sent as the
 * process's stdio, closes its own copies at once (so that the server's ends see EOF when
 * the process alone is done with them), and reports the start and the exit.
 */
export class SpawnServer {
  private readonly stdio = new Map<number, Socket[]>();

  constructor(private readonly channel: HelperChannel) {
    channel.on('message', (message, handle) => this.receive(message, handle as Socket | undefined));
  }

  private receive(message: ToHelper, handle: Socket | undefined): void {
    if (message.kind === 'stdio') {
      if (!handle) return this.reply({ kind: 'failed', id: message.id, code: 'EPROTO', message: `stdio ${message.index} arrived without its socket` });
      // Never read here: a byte read by the helper would be a byte git never sees.
      handle.pause();
      handle.on('error', () => undefined);
      const sockets = this.stdio.get(message.id) ?? [];
      sockets[message.index] = handle;
      this.stdio.set(message.id, sockets);
      return;
    }
    const sockets = this.stdio.get(message.id) ?? [];
    this.stdio.delete(message.id);
    if (![0, 1, 2].every((index) => sockets[index] !== undefined)) {
      for (const socket of sockets) socket?.destroy();
      return this.reply({ kind: 'failed', id: message.id, code: 'EPROTO', message: 'a stdio socket did not arrive' });
    }
    let child: ChildProcess;
    try {
      child = spawn(message.command, [...message.args], {
        env: message.env,
        ...(message.cwd !== undefined ? { cwd: message.cwd } : {}),
        detached: message.detached,
        stdio: [sockets[0]!, sockets[1]!, sockets[2]!],
      });
    } catch (err) {
      return this.reply(failure(message.id, err));
    } finally {
      // The child has its own copies (or none): ours would hold its pipes open after it exits.
      for (const socket of sockets) socket.destroy();
    }
    const id = message.id;
    child.once('error', (err) => {
      if (child.pid === undefined) this.reply(failure(id, err));
    });
    child.once('spawn', () => this.reply({ kind: 'spawned', id, pid: child.pid! }));
    child.once('exit', (code, signal) => this.reply({ kind: 'exit', id, code, signal }));
  }

  private reply(message: FromHelper): void {
    // The server is gone: the helper goes with it (see helperMain), nothing to tell.
    this.channel.send?.(message);
  }
}

function failure(id: number, err: unknown): FromHelper {
  return { kind: 'failed', id, code: (err as NodeJS.ErrnoException).code ?? 'unknown', message: (err as Error).message };
}
