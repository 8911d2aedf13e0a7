import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second for /proc times (USER_HZ; 100 on Linux x86-64). */
const TICKS = 100;

interface Stat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime of the process itself, in ticks. */
  readonly own: number;
  /** cutime + cstime: children it has waited for (exited ones). */
  readonly reaped: number;
}

function stat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number): number => Number(fields[i - 3]);
  return { pid, ppid: n(4), own: n(14) + n(15), reaped: n(16) + n(17) };
}

/** The process and all its live descendants. */
export function processTree(root: number): number[] {
  const all = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map((name) => stat(Number(name))).filter((s): s is Stat => s !== undefined);
  const children = new Map<number, number[]>();
  for (const s of all) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/**
 * CPU seconds (user + system) used by a server's whole process tree so far: the live
 * processes' own time plus what their exited children used (OpenSSH's per-connection
 * processes, git's processes under git-sshd), which the kernel adds to the parent.
 */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) {
    const s = stat(pid);
    if (s) ticks += s.own + s.reaped;
  }
  return ticks / TICKS;
}

/**
 * Memory of the whole tree, KiB, as PSS (proportional set size: a page shared by N
 * processes counts 1/N in each). Summing RSS would count the libraries and the sshd
 * binary that OpenSSH's per-connection processes share once per process.
 */
export function treePssKiB(root: number): number {
  return sumOver(root, 'smaps_rollup', 'Pss:');
}

/** Resident memory of the whole tree, KiB (shared pages counted in every process). */
export function treeRssKiB(root: number): number {
  return sumOver(root, 'status', 'VmRSS:');
}

function sumOver(root: number, file: string, field: string): number {
  let total = 0;
  for (const pid of processTree(root)) {
    try {
      const line = readFileSync(`/proc/${pid}/${file}`, 'utf8').split('\n').find((text) => text.startsWith(field));
      total += Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0);
    } catch {
      // Exited meanwhile.
    }
  }
  return total;
}
