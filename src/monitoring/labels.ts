/** Authentication methods of RFC 4252 and its extensions; a client may send any name. */
const AUTH_METHODS = new Set(['none', 'publickey', 'password', 'keyboard-interactive', 'hostbased', 'gssapi-with-mic']);

export function authMethodLabel(method: string): string {
  return AUTH_METHODS.has(method) ? method : 'other';
}

/**
 * Label values that come from clients: kept to a fixed number of distinct values, so a
 * client that invents a new version string per connection cannot grow the metrics.
 */
export class BoundedLabels {
  private readonly seen = new Set<string>();
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  label(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.limit) return 'other';
    this.seen.add(value);
    return value;
  }
}

/**
 * "OpenSSH_9.2p1 Debian-2" -> "OpenSSH_9.2"; "libssh2_1.10.0" -> "libssh2_1.10"; "Go" -> "Go".
 * The product name and major.minor are what an operator asks about; patch levels would
 * only multiply the series.
 */
export function clientSoftwareFamily(software: string): string {
  const product = (software.split(/\s/, 1)[0] ?? '').replace(/[^A-Za-z0-9._-]/g, '');
  const version =
    /^(.*?)[_-]v?(\d+)(?:\.(\d+))?[^_-]*$/.exec(product) ?? /^(.*?[A-Za-z])(\d+)\.(\d+)/.exec(product);
  const name = (version ? version[1] : product)?.slice(0, 32) || 'unknown';
  if (!version) return name;
  return `${name}_${version[2]}${version[3] === undefined ? '' : `.${version[3]}`}`;
}
