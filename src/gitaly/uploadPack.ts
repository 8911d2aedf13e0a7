import { Transform, type Readable } from 'node:stream';
import { GitSshdError } from '../errors.js';
import type { GitOutcome } from '../git/transport.js';
import type { CommandOutput } from '../io/output.js';
import type { YamuxStream } from '../yamux/stream.js';
import type { GitalyChannel } from './channel.js';
import { isGitFailure } from './failure.js';
import { FLUSH, pktLines, SidebandReader } from './pktline.js';
import type { CallContext } from './transport.js';

export const ERR_SIDECHANNEL = 'ERR_SIDECHANNEL';

/**
 * SSHUploadPackWithSidechannel: a unary call whose git data flows over the stream Gitaly
 * opens back. Our stdin goes out as pkt-lines (a flush is the half-close); Gitaly's
 * output comes back as sideband pkt-lines, each taken by the client before the next is
 * read, so a slow client holds Gitaly back instead of filling our memory.
 */
export async function uploadPack(channel: GitalyChannel, context: CallContext): Promise<GitOutcome> {
  const { run, call, signal } = context;
  const pending = channel.sidechannels.register();
  const rpc = channel.client.sSHUploadPackWithSidechannel(
    { repository: context.repository, gitConfigOptions: [...call.gitConfigOptions], gitProtocol: run.gitProtocol ?? '' },
    { headers: { ...context.headers, 'gitaly-sidechannel-id': pending.id }, signal },
  );
  // Settled below; a rejection before then must not count as unhandled.
  rpc.catch(() => undefined);
  let pump: StdinPump | undefined;
  try {
    const stream = await Promise.race([
      pending.stream,
      rpc.then(() => {
        throw new GitSshdError(ERR_SIDECHANNEL, 'Gitaly finished upload-pack without opening its sidechannel');
      }),
    ]);
    context.started();
    const stop = (): void => {
      stream.destroy();
    };
    signal.addEventListener('abort', stop, { once: true });
    pump = new StdinPump(run.stdin, stream);
    try {
      await copySideband(stream, run.output);
    } finally {
      signal.removeEventListener('abort', stop);
    }
    try {
      await rpc;
    } catch (err) {
      if (!isGitFailure(err)) throw err;
      context.log.warn({ err }, 'upload-pack failed in Gitaly');
      return { exitCode: 1, bytesIn: pump.bytes };
    }
    return { exitCode: 0, bytesIn: pump.bytes };
  } finally {
    pending.cancel();
    pump?.stop();
  }
}

async function copySideband(stream: YamuxStream, output: CommandOutput): Promise<void> {
  const reader = new SidebandReader();
  for await (const chunk of stream) {
    for (const packet of reader.push(chunk as Buffer)) await output.write(packet.band, packet.data);
  }
  if (!reader.clean) throw new GitSshdError(ERR_SIDECHANNEL, 'the sidechannel ended inside a packet');
}

/** The client's stdin, framed as pkt-lines onto the sidechannel, until git no longer needs it. */
class StdinPump {
  bytes = 0;
  private readonly framer: Transform;
  private readonly count = (chunk: Buffer): void => {
    this.bytes += chunk.length;
  };

  constructor(
    private readonly stdin: Readable,
    stream: YamuxStream,
  ) {
    this.framer = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        for (const packet of pktLines(chunk)) this.push(packet);
        callback();
      },
      flush(callback) {
        this.push(FLUSH);
        callback();
      },
    });
    stdin.on('data', this.count);
    stdin.pipe(this.framer).pipe(stream);
  }

  /** Leaves the session's channel as it found it, minus what was read. */
  stop(): void {
    this.stdin.off('data', this.count);
    this.stdin.unpipe(this.framer);
    this.framer.destroy();
  }
}
