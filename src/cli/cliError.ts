/** A refusal the CLI prints as one line and exits 1 on: the user's input or situation, never a bug. */
export class CliError extends Error {
  override name = 'CliError';
}
