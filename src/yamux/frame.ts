/** hashicorp/yamux framing: a 12-byte header, then `length` bytes for data frames. */

export const HEADER_SIZE = 12;
export const VERSION = 0;

export const FrameType = { data: 0, windowUpdate: 1, ping: 2, goAway: 3 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const Flag = { syn: 1, ack: 2, fin: 4, rst: 8 } as const;

/** Go-away reasons carried in the length field. */
export const GoAway = { normal: 0, protocolError: 1, internalError: 2 } as const;

export interface FrameHeader {
  readonly type: FrameType;
  readonly flags: number;
  readonly streamId: number;
  /** Data length, window delta, ping opaque value or go-away code, by type. */
  readonly length: number;
}

export function encodeHeader(header: FrameHeader): Buffer {
  const buffer = Buffer.allocUnsafe(HEADER_SIZE);
  buffer.writeUInt8(VERSION, 0);
  buffer.writeUInt8(header.type, 1);
  buffer.writeUInt16BE(header.flags, 2);
  buffer.writeUInt32BE(header.streamId, 4);
  buffer.writeUInt32BE(header.length, 8);
  return buffer;
}

export function decodeHeader(buffer: Buffer, at: number): FrameHeader {
  const version = buffer.readUInt8(at);
  if (version !== VERSION) throw new YamuxProtocolError(`unsupported yamux version ${version}`);
  const type = buffer.readUInt8(at + 1);
  if (type > FrameType.goAway) throw new YamuxProtocolError(`unknown yamux frame type ${type}`);
  return { type: type as FrameType, flags: buffer.readUInt16BE(at + 2), streamId: buffer.readUInt32BE(at + 4), length: buffer.readUInt32BE(at + 8) };
}

export class YamuxProtocolError extends Error {
  readonly code = 'ERR_YAMUX_PROTOCOL';

  constructor(message: string) {
    super(message);
    this.name = 'YamuxProtocolError';
  }
}
