/** Fields pino and pino-pretty already show (time, level) or that say nothing on one machine. */
const SHOWN_ELSEWHERE = new Set(['level', 'time', 'pid', 'hostname', 'service', 'msg']);

/**
 * A value as logfmt writes it: a string bare when it is one plain word, double-quoted
 * otherwise; numbers, lists and objects as JSON; an error as its message.
 */
function formatValue(value: unknown): string {
  if (value instanceof Object && 'message' in value && typeof value.message === 'string') return formatValue(value.message);
  if (typeof value !== 'string') return JSON.stringify(value) ?? String(value);
  return /^[\w.:/@+=,[\]-]+$/.test(value) ? value : JSON.stringify(value);
}

/**
 * The message and its fields as one line, `message key=value key="two words"`, so that a
 * value (a fingerprint, a known_hosts line) can be copied straight out of a terminal. An
 * error's stack follows on the next lines, as a person debugging wants it.
 */
export function textLine(log: Record<string, unknown>, messageKey: string): string {
  const fields = Object.entries(log)
    .filter(([key, value]) => key !== messageKey && !SHOWN_ELSEWHERE.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${formatValue(value)}`);
  const message = [String(log[messageKey] ?? ''), ...fields].join(' ');
  const err = log.err as { stack?: unknown } | undefined;
  return typeof err?.stack === 'string' ? `${message}\n${err.stack}` : message;
}
