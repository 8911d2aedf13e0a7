import type { GitOutcome } from '../git/transport.js';
import { chunksOf } from '../io/chunks.js';
import type { GitalyChannel } from './channel.js';
import { isGitFailure } from './failure.js';
import type { CallContext } from './transport.js';

/** What Gitaly streams back for receive-pack and upload-archive. */
interface StdResponse {
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
  readonly exitStatus?: { readonly value: number } | undefined;
}

/** Each stdin message at most this big (gRPC's default message limit is 4 MiB). */
const MAX_STDIN_MESSAGE = 64 * 1024;

export function receivePack(channel: GitalyChannel, context: CallContext): Promise<GitOutcome> {
  const { call, run } = context;
  return streamed(context, (stdin) =>
    channel.client.sSHReceivePack(
      (async function* () {
        yield {
          repository: context.repository,
          glId: call.glId,
          glRepository: call.glRepository,
          glUsername: call.glUsername,
          gitProtocol: run.gitProtocol ?? '',
          gitConfigOptions: [...call.gitConfigOptions],
        };
        for await (const chunk of stdin) yield { stdin: chunk };
      })(),
      { headers: context.headers, signal: context.signal },
    ),
  );
}

export function uploadArchive(channel: GitalyChannel, context: CallContext): Promise<GitOutcome> {
  return streamed(context, (stdin) =>
    channel.client.sSHUploadArchive(
      (async function* () {
        yield { repository: context.repository };
        for await (const chunk of stdin) yield { stdin: chunk };
      })(),
      { headers: context.headers, signal: context.signal },
    ),
  );
}

/**
 * A bidirectional call: stdin read only as the call asks for messages (HTTP/2 flow
 * control is the backpressure), each response taken by the client before the next.
 */
async function streamed(context: CallContext, start: (stdin: AsyncIterable<Uint8Array>) => AsyncIterable<StdResponse>): Promise<GitOutcome> {
  const { run } = context;
  let bytesIn = 0;
  const stdin = (async function* () {
    for await (const chunk of chunksOf(run.stdin, context.signal)) {
      bytesIn += chunk.length;
      for (let at = 0; at < chunk.length; at += MAX_STDIN_MESSAGE) yield chunk.subarray(at, at + MAX_STDIN_MESSAGE);
    }
  })();
  let exitStatus: number | undefined;
  try {
    for await (const response of start(stdin)) {
      context.started();
      if (response.stderr.length > 0) await run.output.write('stderr', asBuffer(response.stderr));
      if (response.stdout.length > 0) await run.output.write('stdout', asBuffer(response.stdout));
      if (response.exitStatus) exitStatus = response.exitStatus.value;
    }
  } catch (err) {
    // Gitaly reports git's own failure as an exit status and then an error: git's messages
    // already reached the user, so the exit status is the outcome.
    if (exitStatus === undefined || !isGitFailure(err)) throw err;
    context.log.info({ err, exit_status: exitStatus }, 'git exited with an error in Gitaly');
  }
  return { exitCode: exitStatus ?? 0, bytesIn };
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
