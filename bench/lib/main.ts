import { rmSync } from 'node:fs';

/** Runs a benchmark's `main`: an error sets a failing exit status, and `work` is removed either way. */
export function runBench(main: () => Promise<void>, work: string): void {
  main()
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    })
    .finally(() => rmSync(work, { recursive: true, force: true }));
}
