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
 * SSH client software seen on git hosts, by the prefix of its identification string. Only
 * these become label values: anything else is "other", however many names clients invent.
 */
const CLIENT_FAMILIES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^OpenSSH/i, 'OpenSSH'],
  [/^PuTTY/i, 'PuTTY'],
  [/^libssh2/i, 'libssh2'],
  [/^libssh/i, 'libssh'],
  [/^Go$/, 'Go'],
  [/^JSCH/i, 'JSch'],
  [/^APACHE-SSHD/i, 'Apache-SSHD'],
  [/^SSHJ/i, 'SSHJ'],
  [/^paramiko/i, 'paramiko'],
  [/^AsyncSSH/i, 'AsyncSSH'],
  [/^dropbear/i, 'dropbear'],
  [/^ssh2js/i, 'ssh2js'],
  [/^russh/i, 'russh'],
  [/^Twisted/i, 'Twisted'],
  [/^WinSCP/i, 'WinSCP'],
  [/^(FlowSsh|Bitvise)/i, 'Bitvise'],
  [/^(SSHTectia|Tectia)/i, 'Tectia'],
  [/^(SecureCRT|VShell)/i, 'VanDyke'],
  [/^git-sshd/i, 'git-sshd'],
];

/** Versions kept per family; older or invented ones beyond are `<family>_other`. */
const VERSIONS_PER_FAMILY = 20;

/**
 * "OpenSSH_9.2p1 Debian-2" -> "OpenSSH_9.2"; "libssh2_1.10.0" -> "libssh2_1.10"; "Go" -> "Go";
 * "EvilBot_1.0" -> "other". The family and major.minor are what an operator asks about;
 * the set of values is bounded (families x versions), so a client that sends a new string
 * per connection, even right after a restart, cannot fill the label space with junk.
 */
export class ClientSoftwareLabels {
  private readonly versions = new Map<string, BoundedLabels>();

  label(software: string): string {
    const product = software.split(/\s/, 1)[0] ?? '';
    const family = CLIENT_FAMILIES.find(([pattern]) => pattern.test(product))?.[1];
    if (family === undefined) return 'other';
    const rest = product.slice(family.length);
    const version = /(\d{1,4})\.(\d{1,3})/.exec(rest) ?? /^[^\d]*(\d{1,4})(?:[^\d.]|$)/.exec(rest);
    if (!version) return family;
    const value = version[2] === undefined ? (version[1] ?? '') : `${version[1]}.${version[2]}`;
    let seen = this.versions.get(family);
    if (!seen) {
      seen = new BoundedLabels(VERSIONS_PER_FAMILY);
      this.versions.set(family, seen);
    }
    return `${family}_${seen.label(value)}`;
  }
}
