/** Signals a process, or its whole group where it leads one (`group`); one already gone is no error. */
export function signalProcess(pid: number, group: boolean, signal: NodeJS.Signals): void {
  try {
    process.kill(group ? -pid : pid, signal);
  } catch {
    // Already gone.
  }
}
