/**
 * Durations as gitlab-shell's config.yml writes them: a bare integer is seconds (its
 * yamlDuration type), a string is a Go duration such as "500ms", "1m" or "1h30m".
 * We keep milliseconds internally because every Node timer API takes them.
 */
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const GO_DURATION = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;

export const DURATION_HELP =
  'a non-negative number of seconds or a duration string such as "500ms", "30s", "1m", "1h30m"';

/** Returns milliseconds, or undefined when the value is not a duration. */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  }
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  let rest = text;
  let total = 0;
  while (rest.length > 0) {
    const match = GO_DURATION.exec(rest);
    if (!match) return undefined;
    const amount = Number(match[1]);
    const unit = UNIT_MS[match[2] as string];
    if (unit === undefined || !Number.isFinite(amount)) return undefined;
    total += amount * unit;
    rest = rest.slice(match[0].length);
  }
  return Number.isFinite(total) ? total : undefined;
}
