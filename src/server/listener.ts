import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { ListenAddress } from '../config/types.js';
import type { Logger } from '../logging/logger.js';

export interface ListenerOptions {
  readonly address: ListenAddress;
  readonly log: Logger;
  readonly onSocket: (socket: Socket) => void;
}

/**
 * The SSH port. It owns accepted sockets only long enough to make them safe to hand on:
 * an error listener (a reset must never crash the process) and Nagle off, which halves
 * the latency of git's many small request/response turns.
 */
export class Listener {
  private readonly options: ListenerOptions;
  private readonly server: Server;

  constructor(options: ListenerOptions) {
    this.options = options;
    this.server = createServer({ noDelay: true, pauseOnConnect: false }, (socket) => this.accept(socket));
    this.server.on('error', (err) => options.log.error({ err }, 'ssh listener error'));
  }

  listen(): Promise<AddressInfo> {
    const { host, port } = this.options.address;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: host === '' ? undefined : host, port }, () => {
        this.server.removeListener('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Stops accepting at once (new connections are refused from here on); live connections
   * are not touched. node's close callback would wait for all of them, so it is not awaited.
   */
  close(): Promise<void> {
    if (this.server.listening) this.server.close();
    return Promise.resolve();
  }

  private accept(socket: Socket): void {
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.options.log.debug({ code: err.code, remote_ip: socket.remoteAddress }, 'socket error');
    });
    socket.setNoDelay(true);
    if (!socket.remoteAddress) {
      socket.destroy();
      return;
    }
    this.options.onSocket(socket);
  }
}
