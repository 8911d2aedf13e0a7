import type { Socket } from 'node:net';
import type { PenaltyReason } from './sourcePenalties.js';

/** What became of a connection before it authenticated: decides the penalty its source earns. */
export class PreAuthOutcome {
  sawBanner = false;
  attemptedAuth = false;
  authenticated = false;
  bannerTimedOut = false;
  graceExceeded = false;
  /** Its slot was given to a client from a source holding fewer. */
  evicted = false;

  /** The penalty for a connection that has just closed, if it earned one. */
  penalty(): PenaltyReason | undefined {
    if (this.authenticated) return undefined;
    if (this.graceExceeded) return 'grace_exceeded';
    if (this.bannerTimedOut) return 'banner_timeout';
    if (this.attemptedAuth) return 'authfail';
    return 'noauth';
  }
}

/**
 * Refuses a connection before the SSH banner with one line, as OpenSSH does ("Exceeded
 * MaxStartups", "Not allowed at this time"): a person trying `ssh -v` reads why, a
 * scanner learns nothing more. A peer that does not read it is cut off anyway.
 */
export function refuseBeforeBanner(socket: Socket, line: string): void {
  if (socket.destroyed) return;
  // A line this short goes to the kernel at once; closing right after (as OpenSSH does)
  // means a flood of refused connections holds no sockets at all.
  socket.write(`${line}\r\n`);
  socket.destroy();
}
