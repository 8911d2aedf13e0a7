import { EventEmitter } from 'node:events';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import { createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import type { Logger } from '../logging/logger.js';
import { YamuxSession } from '../yamux/session.js';
import type { YamuxStream } from '../yamux/stream.js';
import type { GitalyAddress } from './address.js';
import { SSHService } from './gen/gitaly/ssh_pb.js';
import { SidechannelRegistry } from './sidechannel.js';

/** What a client writes first on a connection to ask Gitaly for a yamux session. */
const BACKCHANNEL_MAGIC = Buffer.from('backchannel');

export interface ChannelOptions {
  readonly address: GitalyAddress;
  /** Extra CA certificates (PEM) for tls:// addresses, beside the system's. */
  readonly ca: readonly string[];
  readonly connectTimeoutMs: number;
  /** yamux pings that find a dead connection; 0 = off. */
  readonly keepAliveMs: number;
  readonly log: Logger;
}

/**
 * One connection to one Gitaly, as Gitaly's own sidechannel-capable client makes it: the
 * `backchannel` magic, a yamux session over the connection, gRPC (HTTP/2) on the first
 * stream we open, and sidechannel streams that Gitaly opens back.
 */
export class GitalyChannel extends EventEmitter<{ close: [Error | undefined] }> {
  private constructor(
    private readonly session: YamuxSession,
    readonly client: Client<typeof SSHService>,
    readonly sidechannels: SidechannelRegistry,
  ) {
    super();
    session.on('close', (err) => this.emit('close', err));
  }

  static async open(options: ChannelOptions, signal: AbortSignal): Promise<GitalyChannel> {
    const socket = await dial(options, signal);
    socket.setNoDelay(true);
    socket.write(BACKCHANNEL_MAGIC);
    const session = new YamuxSession(socket, { keepAliveMs: options.keepAliveMs, pingTimeoutMs: Math.max(options.keepAliveMs, 5_000) });
    const grpcStream = session.openStream();
    grpcStream.on('error', (err) => options.log.debug({ err }, 'Gitaly gRPC stream failed'));
    // Gitaly serves gRPC on the first stream of the session only: when it closes, so does
    // the channel, and the pool dials a new one.
    grpcStream.on('close', () => session.close());
    let handedOut = false;
    const transport = createGrpcTransport({
      baseUrl: 'http://gitaly',
      // Keep the one HTTP/2 connection for the life of the session.
      idleConnectionTimeoutMs: 2 ** 31 - 1,
      nodeOptions: {
        createConnection: () => {
          if (handedOut) return closedStream();
          handedOut = true;
          return grpcStream;
        },
      },
    });
    const sidechannels = new SidechannelRegistry(options.log);
    session.on('stream', (stream: YamuxStream) => sidechannels.accept(stream));
    return new GitalyChannel(session, createClient(SSHService, transport), sidechannels);
  }

  get alive(): boolean {
    return this.session.usable;
  }

  close(): void {
    this.session.close();
  }
}

function dial(options: ChannelOptions, signal: AbortSignal): Promise<Socket> {
  const { address } = options;
  return new Promise((resolve, reject) => {
    let socket: Socket;
    let event: string;
    if (address.kind === 'unix') {
      socket = netConnect(address.path);
      event = 'connect';
    } else if (address.kind === 'tcp') {
      socket = netConnect({ host: address.host, port: address.port });
      event = 'connect';
    } else {
      socket = tlsConnect({
        host: address.host,
        port: address.port,
        ...(isIP(address.host) ? {} : { servername: address.host }),
        ca: options.ca.length > 0 ? [...rootCertificates, ...options.ca] : undefined,
        // Gitaly's gRPC server requires ALPN h2.
        ALPNProtocols: ['h2'],
      });
      event = 'secureConnect';
    }
    const timer = setTimeout(() => fail(new Error(`connecting to Gitaly timed out after ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
    const onAbort = (): void => fail(signal.reason as Error);
    const cleanup = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.off('error', fail);
      socket.off(event, done);
    };
    function fail(err: Error): void {
      cleanup();
      socket.destroy();
      reject(err);
    }
    function done(): void {
      cleanup();
      resolve(socket);
    }
    if (signal.aborted) return fail(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', fail);
    socket.once(event, done);
  });
}

/** What HTTP/2 gets if it asks for a second connection on a session that has only one. */
function closedStream(): Duplex {
  const stream = new Duplex({ read() {}, write(_chunk, _encoding, callback) { callback(new Error('the Gitaly channel is closed')); } });
  process.nextTick(() => stream.destroy(new Error('the Gitaly channel is closed')));
  return stream;
}
