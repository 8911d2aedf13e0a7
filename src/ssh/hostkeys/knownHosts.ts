import { isIP } from 'node:net';

/** What a user compares or pastes: the fingerprint `ssh` shows, and a line for ~/.ssh/known_hosts. */
export interface HostKeyAnnouncement {
  /** As `ssh` names the type when it asks: ED25519, ECDSA, RSA. */
  readonly type: string;
  /** SHA256:..., as `ssh-keygen -lf` and `ssh`'s first-connection prompt print it. */
  readonly fingerprint: string;
  readonly known_hosts: string;
}

const SHORT_TYPES: Record<string, string> = { 'ssh-ed25519': 'ED25519', 'ssh-rsa': 'RSA', 'ssh-dss': 'DSA' };

/**
 * The host name a client on this machine uses for an address we listen on: `localhost`
 * for the wildcard and loopback addresses, else the address itself.
 */
export function clientHostFor(listenAddress: string): string {
  if (['', '::', '0.0.0.0', '::1', '127.0.0.1'].includes(listenAddress)) return 'localhost';
  return listenAddress;
}

/** known_hosts' host field: bare for port 22, `[host]:port` otherwise, as OpenSSH writes it. */
export function knownHostsHost(host: string, port: number): string {
  return port === 22 && isIP(host) !== 6 ? host : `[${host}]:${port}`;
}

export function announceHostKey(key: { type: string; fingerprint: string; publicKey: string }, host: string, port: number): HostKeyAnnouncement {
  const type = SHORT_TYPES[key.type] ?? (key.type.startsWith('ecdsa-') ? 'ECDSA' : key.type);
  return { type, fingerprint: key.fingerprint, known_hosts: `${knownHostsHost(host, port)} ${key.publicKey}` };
}
