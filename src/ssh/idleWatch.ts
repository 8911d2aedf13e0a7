import type { ServerChannel } from 'ssh2';

/**
 * Calls `onIdle` once the channel has carried nothing in either direction for
 * `timeoutMs`: a git waiting forever for a client that sends nothing and reads nothing.
 * Incoming data is seen where ssh2 hands it to the channel (`push`), outgoing where it is
 * written, so that watching changes nothing about how the channel flows. Returns the stop.
 */
export function watchIdle(channel: ServerChannel, timeoutMs: number, onIdle: (idleMs: number) => void): () => void {
  let last = performance.now();
  const touch = (): void => {
    last = performance.now();
  };
  const push = channel.push.bind(channel);
  channel.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    touch();
    return push(chunk, encoding);
  };
  for (const stream of [channel, channel.stderr] as Array<{ write: (...args: unknown[]) => boolean }>) {
    const write = stream.write.bind(stream);
    stream.write = (...args: unknown[]): boolean => {
      touch();
      return write(...args);
    };
  }
  let timer: NodeJS.Timeout;
  const check = (): void => {
    const idle = performance.now() - last;
    if (idle >= timeoutMs) onIdle(idle);
    else timer = setTimeout(check, timeoutMs - idle).unref();
  };
  timer = setTimeout(check, timeoutMs).unref();
  return () => clearTimeout(timer);
}
