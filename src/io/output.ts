export type OutputStream = 'stdout' | 'stderr';

/** What a command writes its output through: one chunk at a time, resolved once taken. */
export interface CommandOutput {
  write(stream: OutputStream, chunk: Buffer): Promise<void>;
  readonly bytes: number;
}
