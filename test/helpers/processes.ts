import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/**
 * What this test process started and must not leave behind, whether its tests pass, fail
 * or time out: process groups (a server and the git processes it forked, an ssh and its
 * children) and temp dirs. `after` hooks release them as usual; whatever is still here
 * when the process exits or is told to stop is killed and removed then. A test process
 * killed outright (SIGKILL) leaves the rest to scripts/reap.mjs at the end of the run.
 */
const groups = new Set<ChildProcess>();
const temporaryDirs = new Set<string>();

function killGroupNow(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

function releaseEverything(): void {
  for (const child of groups) killGroupNow(child);
  groups.clear();
  for (const dir of temporaryDirs) rmSync(dir, { recursive: true, force: true });
  temporaryDirs.clear();
}

process.once('exit', releaseEverything);
// Under the test runner: once the file's last test is over, even one that timed out while
// awaiting something that never comes, nothing it started may keep the file running.
if (process.env.NODE_TEST_CONTEXT) after(releaseEverything);
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  process.once(signal, () => {
    releaseEverything();
    process.exit(code);
  });
}

/**
 * The run's marker (set by scripts/test.sh) travels to every child, even those started
 * with an environment of their own, so that the reaper can find leftovers of this run.
 */
export function withRunMarker(env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const marker: NodeJS.ProcessEnv = {};
  if (process.env.GIT_SSHD_TEST_RUN) marker.GIT_SSHD_TEST_RUN = process.env.GIT_SSHD_TEST_RUN;
  if (process.env.TMPDIR) marker.TMPDIR = process.env.TMPDIR;
  return { ...(env ?? process.env), ...marker };
}

/**
 * `spawn` in a process group of its own. Signals sent with `child.kill()` still reach only
 * the child (a graceful SIGTERM test means exactly that); `killGroup` ends the whole group.
 * Once the child has exited its group is killed at once, so nothing it forked outlives it.
 */
export function spawnGroup(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, { ...options, env: withRunMarker(options.env), detached: true });
  groups.add(child);
  child.once('exit', () => {
    killGroupNow(child);
    groups.delete(child);
  });
  child.once('error', () => groups.delete(child));
  return child;
}

/** Kills the child's whole process group and resolves once the child has exited. */
export async function killGroup(child: ChildProcess): Promise<void> {
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => child.once('exit', () => resolve()));
  killGroupNow(child);
  await exited;
}

/** A temp dir removed by `removeTemporaryDir`, or when the test process exits. */
export function temporaryDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporaryDirs.add(dir);
  return dir;
}

export function removeTemporaryDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  temporaryDirs.delete(dir);
}
