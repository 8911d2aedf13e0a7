import type { Connection as Ssh2Connection } from 'ssh2';

/** RFC 4254 section 5.1 reason codes. */
const REASONS = {
  administratively_prohibited: 1,
  connect_failed: 2,
  unknown_channel_type: 3,
  resource_shortage: 4,
} as const;

interface ProtocolWithOpenFail {
  channelOpenFail(remote: number, reason: number, description: string): void;
}

/**
 * Refuses a channel open with the reason code and text we choose. ssh2's own `reject()`
 * always sends CONNECT_FAILED with no text once it has reserved a channel, so for the
 * length of that synchronous call its protocol's `channelOpenFail` (ssh2 1.17, pinned)
 * is made to send ours. Without that method, ssh2's default reply goes out.
 */
export function rejectChannel(client: Ssh2Connection, reject: () => void, reason: keyof typeof REASONS, description: string): void {
  const protocol = (client as unknown as { _protocol?: Partial<ProtocolWithOpenFail> })._protocol;
  const original = protocol?.channelOpenFail;
  if (!protocol || typeof original !== 'function') return reject();
  const ownProperty = Object.hasOwn(protocol, 'channelOpenFail');
  protocol.channelOpenFail = (remote: number) => original.call(protocol, remote, REASONS[reason], description);
  try {
    reject();
  } finally {
    if (ownProperty) protocol.channelOpenFail = original;
    else delete protocol.channelOpenFail;
  }
}
