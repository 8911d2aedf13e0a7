import type { Logger } from '../logging/logger.js';
import type { YamuxStream } from '../yamux/stream.js';

const MAGIC = Buffer.from('sidechannel');
const HANDSHAKE_SIZE = MAGIC.length + 8;
/** As Gitaly's: how long the handshake on a new stream may take. */
const HANDSHAKE_TIMEOUT_MS = 5_000;

export interface PendingSidechannel {
  /** The value of the call's `gitaly-sidechannel-id` metadata. */
  readonly id: string;
  /** The stream Gitaly opens back for this call, once it has said `ok` to it. */
  readonly stream: Promise<YamuxStream>;
  /** Stops waiting (the call ended or failed); a stream arriving later is reset. */
  cancel(): void;
}

/**
 * The client's side of Gitaly's sidechannel: a call registers an id and sends it as
 * metadata; Gitaly opens a yamux stream on the same connection, writes `sidechannel` and
 * the id (int64, big-endian), and waits for our `ok` before the git data flows.
 */
export class SidechannelRegistry {
  private nextId = 1;
  private readonly waiting = new Map<string, (stream: YamuxStream) => void>();

  constructor(private readonly log: Logger) {}

  register(): PendingSidechannel {
    const id = String(this.nextId++);
    let resolveStream: (stream: YamuxStream) => void = () => undefined;
    const stream = new Promise<YamuxStream>((resolve) => {
      resolveStream = resolve;
    });
    this.waiting.set(id, resolveStream);
    return { id, stream, cancel: () => this.waiting.delete(id) };
  }

  /** A stream the server opened: hand it to its call, or reset it. */
  accept(stream: YamuxStream): void {
    stream.on('error', (err) => this.log.debug({ err, stream: stream.id }, 'sidechannel stream failed'));
    const timer = setTimeout(() => reject('handshake timed out'), HANDSHAKE_TIMEOUT_MS);
    const reject = (why: string): void => {
      clearTimeout(timer);
      stream.off('readable', onReadable);
      this.log.warn({ stream: stream.id, why }, 'stream from Gitaly refused');
      stream.destroy();
    };
    const onReadable = (): void => {
      const head = stream.read(HANDSHAKE_SIZE) as Buffer | null;
      if (head === null) return;
      if (head.length < HANDSHAKE_SIZE) return reject('ended during the handshake');
      clearTimeout(timer);
      stream.off('readable', onReadable);
      // Anything else (Praefect's backchannel gRPC, say) is not served here.
      if (!head.subarray(0, MAGIC.length).equals(MAGIC)) return reject('not a sidechannel');
      const id = head.readBigInt64BE(MAGIC.length).toString();
      const waiter = this.waiting.get(id);
      if (!waiter) return reject(`no call waits for sidechannel ${id}`);
      this.waiting.delete(id);
      stream.write('ok');
      waiter(stream);
    };
    stream.on('readable', onReadable);
  }
}
