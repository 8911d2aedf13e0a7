import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';

/** Clock ticks per second for /proc times (USER_HZ; 100 on Linux x86-64). */
const TICKS = 100;

interface Stat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime of the process itself, in ticks. */
  readonly own: number;
  /** stime alone, in ticks. */
  readonly system: number;
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
  return { pid, ppid: n(4), own: n(14) + n(15), system: n(15), reaped: n(16) + n(17) };
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

/**
 * Resident memory of the whole tree, KiB (shared pages counted in every process); with
 * `skip`, leaving out the processes whose name matches it (e.g. git's, to see the SSH layer's).
 */
export function treeRssKiB(root: number, skip?: RegExp): number {
  return sumOver(root, 'status', 'VmRSS:', skip);
}

function sumOver(root: number, file: string, field: string, skip?: RegExp): number {
  let total = 0;
  for (const pid of processTree(root)) {
    try {
      if (skip && skip.test(readFileSync(`/proc/${pid}/comm`, 'utf8').trim())) continue;
      const line = readFileSync(`/proc/${pid}/${file}`, 'utf8').split('\n').find((text) => text.startsWith(field));
      total += Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0);
    } catch {
      // Exited meanwhile.
    }
  }
  return total;
}

const CPUACCT = '/sys/fs/cgroup/cpuacct';

/**
 * CPU time of everything a server ever ran, exited processes included, from a cgroup v1
 * cpuacct group of its own. /proc cannot give that for OpenSSH: its per-connection
 * processes' time does not reach the listener's cutime. Falls back to the /proc tree
 * (live processes plus what they reaped) where no cgroup can be made.
 */
export class CpuAccount {
  private readonly dir: string | undefined;

  constructor(name: string, private readonly root: number) {
    const dir = `${CPUACCT}/git-sshd-bench-${name}-${root}`;
    try {
      mkdirSync(dir);
      writeFileSync(`${dir}/cgroup.procs`, String(root));
      this.dir = dir;
    } catch {
      this.dir = undefined;
    }
  }

  get source(): string {
    return this.dir ? 'cgroup cpuacct' : '/proc (live processes and what they reaped)';
  }

  seconds(): number {
    if (!this.dir) return treeCpuSeconds(this.root);
    return Number(readFileSync(`${this.dir}/cpuacct.usage`, 'utf8')) / 1e9;
  }

  /** User and system CPU seconds of the group (cgroup cpuacct.stat), or undefined without a cgroup. */
  split(): { user: number; system: number } | undefined {
    if (!this.dir) return undefined;
    const text = readFileSync(`${this.dir}/cpuacct.stat`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0) / TICKS;
    return { user: field('user'), system: field('system') };
  }

  /** Removes the group once the server has exited (its processes gone). */
  close(): void {
    if (!this.dir) return;
    for (let attempt = 0; attempt < 50; attempt += 1) {
      try {
        rmdirSync(this.dir);
        return;
      } catch {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
  }
}

/** System CPU seconds of one live process alone: the kernel's share of ownCpuSeconds. */
export function ownSystemSeconds(pid: number): number {
  return (stat(pid)?.system ?? 0) / TICKS;
}

/** CPU seconds (user + system) of one live process alone: not its children. */
export function ownCpuSeconds(pid: number): number {
  return (stat(pid)?.own ?? 0) / TICKS;
}
