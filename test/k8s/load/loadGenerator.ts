import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitLocal, run, sshArgs, type ClientKey, type RunResult } from '../../helpers/client.js';
import { waitUntil } from '../../helpers/wait.js';

const PROXY_COMMAND = join(import.meta.dirname, 'proxyCommand.mjs');
/** A bound on one operation, far above what a paced transfer needs: a hang is a failure, not a stuck run. */
const OPERATION_TIMEOUT_MS = 300_000;

/** Where the operations go: a Service's ClusterIP in the cluster, 127.0.0.1 on loopback. */
export interface LoadTarget {
  readonly host: string;
  readonly port: number;
  readonly key: ClientKey;
  /** The repository every worker uses (`team/big`); its `main` is cloned, branches are pushed. */
  readonly repo: string;
}

/**
 * One worker runs one kind of operation in a loop until stopped. `bytesPerSecond` paces the
 * transfer (0: as fast as it goes); a push carries `pushBytes` of new incompressible data.
 */
export interface WorkerPlan {
  readonly kind: 'clone' | 'push';
  readonly count: number;
  readonly bytesPerSecond: number;
  readonly pushBytes?: number;
  /** A name for the report: `clone`, `slow-clone`, `push`... */
  readonly label: string;
}

export type Outcome = 'ok' | 'failed' | 'rejected';

export interface TcpRecord {
  readonly localPort: number;
  readonly connectedAt: number;
  readonly closedAt?: number;
  readonly bytesReceived?: number;
  readonly bytesSent?: number;
}

/** One git operation, from the client's side. Times are epoch milliseconds. */
export interface Operation {
  readonly id: number;
  readonly kind: 'clone' | 'push';
  readonly label: string;
  readonly worker: string;
  readonly startedAt: number;
  endedAt?: number;
  outcome?: Outcome;
  /** Why it failed: git's stderr, or what the check after it found. */
  reason?: string;
  /** The TCP connection(s) the operation made through the proxy command. */
  connections: TcpRecord[];
  /** push: the branch and the commit it sent. */
  branch?: string;
  commit?: string;
  /** Set by whoever matches it with the server's logs: the pod (or server) that served it. */
  servedBy?: string;
}

export interface LoadSummary {
  readonly attempted: number;
  readonly ok: number;
  readonly failed: number;
  readonly rejected: number;
  readonly longestMs: number;
  readonly byLabel: Record<string, { attempted: number; ok: number; failed: number; rejected: number; longestMs: number }>;
}

/** A push refused by git's own rules (another writer got there first), which a user would fetch and retry: not a server failure. */
const REJECTED = /\[rejected\]|non-fast-forward|fetch first/;

function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * A continuous stream of real git clones and pushes through OpenSSH, each operation counted
 * and checked: a clone is fsck-clean and has the expected `main`; a push landed (checked
 * for every push at the end, by `verifyPushes`). Every pusher owns its branch, so a push is
 * never refused for a race with another pusher: anything but success is the server's fault.
 */
export class LoadGenerator {
  readonly operations: Operation[] = [];
  private readonly workers: Promise<void>[] = [];
  private stopping = false;
  private nextId = 0;
  private readonly records: string;
  /** branch -> every commit pushed to it that git said landed, in order. */
  private readonly landed = new Map<string, string[]>();

  constructor(
    private readonly target: LoadTarget,
    private readonly plan: readonly WorkerPlan[],
    private readonly workDir: string,
    /** The `main` every clone must have. */
    private readonly expectedMain: string,
    /** Where pushers start from: a local bare copy of the repository. */
    private readonly seed: string,
    /** Makes branch names unique to this run. */
    private readonly runId: string,
  ) {
    this.records = join(workDir, 'records');
    mkdirSync(this.records, { recursive: true });
  }

  start(): void {
    for (const worker of this.plan) {
      for (let index = 0; index < worker.count; index++) {
        const name = `${worker.label}-${index}`;
        this.workers.push(worker.kind === 'clone' ? this.cloneLoop(name, worker) : this.pushLoop(name, worker));
      }
    }
  }

  /** Starts no new operation and resolves once every running one has ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  /** Operations still running, with the connections their proxy commands have recorded so far. */
  inFlight(): Operation[] {
    const running = this.operations.filter((op) => op.outcome === undefined);
    for (const op of running) op.connections = readRecord(this.recordOf(op));
    return running;
  }

  /** Resolves once at least `count` operations of each label have ended (the stream is flowing everywhere). */
  async waitForCompleted(count: number, timeoutMs: number): Promise<void> {
    const labels = [...new Set(this.plan.map((worker) => worker.label))];
    await waitUntil(`${count} operations of each kind (${labels.join(', ')}) completed`, () =>
      labels.every((label) => this.operations.filter((op) => op.label === label && op.outcome !== undefined).length >= count), timeoutMs, 200);
  }

  /** Resolves once every operation started before `time` has ended. */
  async settledBefore(time: number, timeoutMs: number): Promise<void> {
    await waitUntil('operations started before the mark ended', () => this.operations.every((op) => op.startedAt >= time || op.outcome !== undefined), timeoutMs, 200);
  }

  summary(filter: (op: Operation) => boolean = () => true): LoadSummary {
    const done = this.operations.filter((op) => op.outcome !== undefined && filter(op));
    const byLabel: LoadSummary['byLabel'] = {};
    for (const op of done) {
      const entry = (byLabel[op.label] ??= { attempted: 0, ok: 0, failed: 0, rejected: 0, longestMs: 0 });
      entry.attempted++;
      entry[op.outcome!]++;
      entry.longestMs = Math.max(entry.longestMs, op.endedAt! - op.startedAt);
    }
    const count = (outcome: Outcome): number => done.filter((op) => op.outcome === outcome).length;
    return {
      attempted: done.length,
      ok: count('ok'),
      failed: count('failed'),
      rejected: count('rejected'),
      longestMs: Math.max(0, ...done.map((op) => op.endedAt! - op.startedAt)),
      byLabel,
    };
  }

  /**
   * Checks that each push git reported as landed is in the repository: through the server,
   * `git ls-remote` must show every pusher's branch at its last landed commit; in the
   * repository itself (`repository`: its directory on disk, the volume the pods share), every
   * earlier landed commit must be an ancestor of that tip, and the repository fsck-clean.
   * Reading it on disk rather than fetching it all back keeps the check to seconds. Returns
   * what is missing.
   */
  async verifyPushes(repository: string): Promise<{ branches: number; commits: number; missing: string[] }> {
    const missing: string[] = [];
    const listed = await this.git(['ls-remote', '--heads', this.url()], this.workDir, 0, join(this.records, 'verify-ls-remote.jsonl'));
    if (listed.code !== 0) return { branches: 0, commits: 0, missing: [`ls-remote through the server failed: ${listed.stderr.trim()}`] };
    const tips = new Map(listed.stdout.trim().split('\n').filter(Boolean).map((line) => {
      const [sha, ref] = line.split('\t') as [string, string];
      return [ref.replace(/^refs\/heads\//, ''), sha];
    }));
    // The repository belongs to the pods' user: git refuses to read it as another without this.
    const local = (args: string[]): Promise<RunResult> => run('git', ['-c', 'safe.directory=*', '-C', repository, ...args], { timeoutMs: OPERATION_TIMEOUT_MS });
    let commits = 0;
    for (const [branch, pushed] of this.landed) {
      if (pushed.length === 0) continue;
      const tip = tips.get(branch);
      if (tip !== pushed.at(-1)) missing.push(`${branch}: the server shows ${tip ?? 'no branch'}, last push ${pushed.at(-1)}`);
      if (tip === undefined) continue;
      for (const commit of pushed) {
        commits++;
        if ((await local(['merge-base', '--is-ancestor', commit, tip])).code !== 0) missing.push(`${branch}: pushed commit ${commit} is not on the branch`);
      }
    }
    const fsck = await local(['fsck', '--strict', '--no-dangling']);
    if (fsck.code !== 0) missing.push(`fsck of the repository: ${fsck.stderr.trim()}`);
    return { branches: [...this.landed.values()].filter((pushed) => pushed.length > 0).length, commits, missing };
  }

  private url(): string {
    const host = this.target.host.includes(':') ? `[${this.target.host}]` : this.target.host;
    return `ssh://git@${host}:${this.target.port}/${this.target.repo}`;
  }

  /** git through OpenSSH, whose TCP connection is made (and paced, and recorded) by the proxy command. */
  private git(args: string[], cwd: string, bytesPerSecond: number, record: string): Promise<RunResult> {
    const proxy = `ProxyCommand=${process.execPath} ${PROXY_COMMAND} %h %p ${record} ${bytesPerSecond}`;
    const ssh = ['ssh', ...sshArgs(this.target.key, this.target.port, ['-o', proxy])].map(quote).join(' ');
    return run('git', ['-c', 'user.name=Load', '-c', 'user.email=load@example.com', ...args], {
      cwd,
      env: { GIT_SSH_COMMAND: ssh, GIT_CONFIG_NOSYSTEM: '1', HOME: process.env.HOME ?? '/tmp' },
      timeoutMs: OPERATION_TIMEOUT_MS,
    });
  }

  /** Local git (no server), asynchronously; its stdout, or a rejection with its stderr. */
  private async local(args: string[], cwd = this.workDir): Promise<string> {
    const result = await run('git', args, { cwd, env: { GIT_CONFIG_NOSYSTEM: '1' }, timeoutMs: OPERATION_TIMEOUT_MS });
    if (result.code !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  private begin(kind: 'clone' | 'push', worker: string, label: string): { op: Operation; record: string } {
    const op: Operation = { id: this.nextId++, kind, label, worker, startedAt: Date.now(), connections: [] };
    this.operations.push(op);
    return { op, record: this.recordOf(op) };
  }

  private recordOf(op: Operation): string {
    return join(this.records, `op-${op.id}.jsonl`);
  }

  private finish(op: Operation, record: string, outcome: Outcome, reason?: string): void {
    op.connections = readRecord(record);
    op.endedAt = Date.now();
    op.outcome = outcome;
    if (reason !== undefined) op.reason = reason;
  }

  private async cloneLoop(name: string, worker: WorkerPlan): Promise<void> {
    const dir = join(this.workDir, name);
    while (!this.stopping) {
      rmSync(dir, { recursive: true, force: true });
      const { op, record } = this.begin('clone', name, worker.label);
      const cloned = await this.git(['clone', '-q', '--bare', '--single-branch', '--branch', 'main', this.url(), dir], this.workDir, worker.bytesPerSecond, record);
      if (cloned.code !== 0) {
        this.finish(op, record, 'failed', `clone exited ${cloned.code}: ${cloned.stderr.trim()}`);
        continue;
      }
      const fsck = await run('git', ['fsck', '--strict', '--no-dangling'], { cwd: dir, timeoutMs: OPERATION_TIMEOUT_MS });
      const main = (await run('git', ['-C', dir, 'rev-parse', 'refs/heads/main'], { timeoutMs: OPERATION_TIMEOUT_MS })).stdout.trim();
      if (fsck.code !== 0) this.finish(op, record, 'failed', `fsck: ${fsck.stderr.trim()}`);
      else if (main !== this.expectedMain) this.finish(op, record, 'failed', `main is ${main}, expected ${this.expectedMain}`);
      else this.finish(op, record, 'ok');
    }
    rmSync(dir, { recursive: true, force: true });
  }

  private async pushLoop(name: string, worker: WorkerPlan): Promise<void> {
    const dir = join(this.workDir, name);
    const branch = `load/${this.runId}/${name}`;
    this.landed.set(branch, []);
    // Shares the seed's objects: each pusher holds only what it adds. Local git runs
    // asynchronously: a synchronous call would stall the test's watches and polls with it.
    await this.local(['clone', '-q', '--shared', '--branch', 'main', this.seed, dir]);
    let round = 0;
    while (!this.stopping) {
      writeFileSync(join(dir, `${name}.bin`), randomBytes(worker.pushBytes ?? 1024 * 1024));
      await this.local(['add', '.'], dir);
      await this.local(['-c', 'user.name=Load', '-c', 'user.email=load@example.com', 'commit', '-q', '-m', `${name} round ${round++}`], dir);
      const commit = (await this.local(['rev-parse', 'HEAD'], dir)).trim();
      const { op, record } = this.begin('push', name, worker.label);
      op.branch = branch;
      op.commit = commit;
      const pushed = await this.git(['push', '-q', this.url(), `HEAD:refs/heads/${branch}`], dir, worker.bytesPerSecond, record);
      if (pushed.code === 0) {
        this.landed.get(branch)!.push(commit);
        this.finish(op, record, 'ok');
      } else {
        this.finish(op, record, REJECTED.test(pushed.stderr) ? 'rejected' : 'failed', `push exited ${pushed.code}: ${pushed.stderr.trim()}`);
      }
    }
  }
}

function readRecord(file: string): TcpRecord[] {
  if (!existsSync(file)) return [];
  const connections: TcpRecord[] = [];
  for (const text of readFileSync(file, 'utf8').split('\n')) {
    // The proxy command may be writing it right now: a line still incomplete is read next time.
    if (!text.endsWith('}')) continue;
    const line = JSON.parse(text) as { event: string; at: number; local_port?: number; bytes_received?: number; bytes_sent?: number };
    if (line.event === 'connected') connections.push({ localPort: line.local_port!, connectedAt: line.at });
    else if (line.event === 'closed' && connections.length > 0) {
      const last = connections.pop()!;
      connections.push({ ...last, closedAt: line.at, bytesReceived: line.bytes_received, bytesSent: line.bytes_sent });
    }
  }
  return connections;
}

/** A bare repository of `megabytes` of incompressible data in four commits on `main`, and its tip. */
export function makeBigRepository(dir: string, megabytes: number): { bare: string; main: string } {
  const work = join(dir, 'seed-work');
  gitLocal(['init', '-q', '-b', 'main', work]);
  for (let index = 0; index < 4; index++) {
    writeFileSync(join(work, `blob-${index}.bin`), randomBytes(Math.round((megabytes / 4) * 1024 * 1024)));
    gitLocal(['add', '.'], work);
    gitLocal(['-c', 'user.name=Seed', '-c', 'user.email=seed@example.com', 'commit', '-q', '-m', `seed ${index}`], work);
  }
  const bare = join(dir, 'seed.git');
  gitLocal(['clone', '-q', '--bare', work, bare]);
  rmSync(work, { recursive: true, force: true });
  return { bare, main: gitLocal(['rev-parse', 'refs/heads/main'], bare) };
}
