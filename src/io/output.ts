export type OutputStream = 'stdout' | 'stderr';

/**
 * What a command writes its output through: one chunk at a time, resolved once taken.
 * Taken means copied or sent: the writer may reuse the chunk's memory once it resolves.
 */
export interface CommandOutput {
  write(stream: OutputStream, chunk: Buffer): Promise<void>;
  readonly bytes: number;
}
