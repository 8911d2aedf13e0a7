import type { Socket } from 'node:net';

/** What a client sent before its connection closed without a valid SSH banner. */
export type PreBannerReason = 'no_data' | 'http' | 'tls' | 'invalid_banner' | 'incomplete_banner' | 'oversized_banner' | 'garbage';

export const PRE_BANNER_REASONS: readonly PreBannerReason[] = [
  'no_data',
  'http',
  'tls',
  'invalid_banner',
  'incomplete_banner',
  'oversized_banner',
  'garbage',
];

/** ssh2's longest accepted identification line (MAX_LINE_LEN in its Protocol.js, 1.17). */
const MAX_BANNER_LINE = 8192;
const KEPT = 64;
const HTTP = /^(GET|POST|HEAD|PUT|DELETE|OPTIONS|CONNECT|PATCH|TRACE|PRI) /;
const TLS_HANDSHAKE = 0x16;

/**
 * Watches what a client sends before ssh2 has read its banner. ssh2 silences every error
 * before the banner (and has no connection object yet), so a port scanner, an HTTP
 * health check aimed at the wrong port or a flood of junk would leave no trace: this says
 * what came, for the log and the metrics. It keeps the first bytes only, and stops at the banner.
 */
export class BannerWatch {
  private readonly socket: Socket;
  private head = Buffer.alloc(0);
  private bytes = 0;
  private sawNewline = false;
  private readonly onData = (chunk: Buffer): void => {
    this.bytes += chunk.length;
    if (this.head.length < KEPT) this.head = Buffer.concat([this.head, chunk.subarray(0, KEPT - this.head.length)]);
    if (!this.sawNewline && chunk.includes(0x0a)) this.sawNewline = true;
  };

  constructor(socket: Socket) {
    this.socket = socket;
  }

  /** Called once ssh2 has the socket (and has paused it): a 'data' listener must not set it flowing before. */
  start(): void {
    this.socket.on('data', this.onData);
  }

  /** The banner arrived: nothing more to watch. */
  stop(): void {
    this.socket.off('data', this.onData);
  }

  get bytesSeen(): number {
    return this.bytes;
  }

  reason(): PreBannerReason {
    if (this.bytes === 0) return 'no_data';
    const text = this.head.toString('latin1');
    if (HTTP.test(text)) return 'http';
    if (this.head[0] === TLS_HANDSHAKE) return 'tls';
    if (!this.sawNewline && this.bytes >= MAX_BANNER_LINE) return 'oversized_banner';
    if (text.startsWith('SSH-')) return this.sawNewline ? 'invalid_banner' : 'incomplete_banner';
    return 'garbage';
  }

  /** The first bytes, printable, for the log line (never more than a short prefix). */
  preview(): string {
    return this.head.subarray(0, 32).toString('latin1').replace(/[^\x20-\x7e]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
  }
}
