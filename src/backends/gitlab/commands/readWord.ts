/**
 * Reads one whitespace-delimited word from what the user types, as gitlab-shell's
 * Fscanln does: at most `limit` bytes, up to the first newline (or the end of input, or
 * `timeoutMs`). Resolves '' when nothing usable came.
 */
export function readWord(stdin: NodeJS.ReadableStream, limit: number, timeoutMs: number, signal: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const finish = (): void => {
      clearTimeout(timer);
      stdin.removeListener('data', onData);
      stdin.removeListener('end', finish);
      signal.removeEventListener('abort', finish);
      stdin.pause();
      resolve(text.split(/[\r\n]/)[0]?.trim().split(/\s+/)[0] ?? '');
    };
    const onData = (chunk: Buffer | string): void => {
      text += chunk.toString();
      if (text.length >= limit) text = text.slice(0, limit);
      if (text.includes('\n') || text.length >= limit) finish();
    };
    const timer = setTimeout(finish, timeoutMs);
    if (signal.aborted) return finish();
    signal.addEventListener('abort', finish, { once: true });
    stdin.on('data', onData);
    stdin.once('end', finish);
    stdin.resume();
  });
}
