import { GitSshdError } from '../errors.js';

export const ERR_SIDEBAND = 'ERR_SIDEBAND';

/** git's largest pkt-line, length prefix included. */
export const MAX_PKT_SIZE = 65520;
const MAX_DATA = MAX_PKT_SIZE - 4;

/** The sidechannel's half-close: a flush packet. */
export const FLUSH = Buffer.from('0000');

/** Data wrapped in pkt-lines, as a Gitaly sidechannel client sends its stdin. */
export function* pktLines(data: Buffer): Generator<Buffer> {
  for (let at = 0; at < data.length; at += MAX_DATA) {
    const chunk = data.subarray(at, at + MAX_DATA);
    yield Buffer.concat([Buffer.from((chunk.length + 4).toString(16).padStart(4, '0')), chunk]);
  }
}

export type Band = 'stdout' | 'stderr';

/**
 * Splits what Gitaly writes on a sidechannel into its bands (pkt-lines whose first byte is
 * 1 for stdout, 2 for stderr). Fed chunk by chunk; returns the complete packets so far.
 */
export class SidebandReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Array<{ band: Band; data: Buffer }> {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const packets: Array<{ band: Band; data: Buffer }> = [];
    for (;;) {
      if (this.pending.length < 4) break;
      const length = Number.parseInt(this.pending.subarray(0, 4).toString('latin1'), 16);
      if (!/^[0-9a-f]{4}$/i.test(this.pending.subarray(0, 4).toString('latin1')) || (length > 0 && length < 5) || length > MAX_PKT_SIZE) {
        throw new GitSshdError(ERR_SIDEBAND, `bad pkt-line header ${JSON.stringify(this.pending.subarray(0, 4).toString('latin1'))} on the sidechannel`);
      }
      if (length === 0) {
        this.pending = this.pending.subarray(4);
        continue;
      }
      if (this.pending.length < length) break;
      const band = this.pending[4];
      if (band !== 1 && band !== 2) throw new GitSshdError(ERR_SIDEBAND, `unexpected sideband ${band} on the sidechannel`);
      packets.push({ band: band === 1 ? 'stdout' : 'stderr', data: this.pending.subarray(5, length) });
      this.pending = this.pending.subarray(length);
    }
    return packets;
  }

  /** Whether the stream ended between packets (not inside one). */
  get clean(): boolean {
    return this.pending.length === 0;
  }
}
