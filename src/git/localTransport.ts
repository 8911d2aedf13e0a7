import type { ChildProcessByStdio } from 'node:child_process';
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import type { UploadPackOptions } from '../config/types.js';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { Logger } from '../logging/logger.js';
import { forward } from '../io/forward.js';
import { ReusedBufferReader } from '../io/reusedBufferReader.js';
import { SocketPairs, type SocketPair } from '../io/socketPair.js';
import { signalProcess } from '../spawn/signal.js';
import type { SpawnHelper } from '../spawn/spawnHelper.js';
import { spawnError, spawnGit } from './spawnGit.js';
import type { GitOutcome, GitRun, GitTransport } from './transport.js';
import { uploadPackConfigArgs } from './uploadPackConfig.js';

const SUBCOMMAND = {
  'git-upload-pack': ['upload-pack', '--strict'],
  'git-receive-pack': ['receive-pack'],
  'git-upload-archive': ['upload-archive'],
} as const;

/** A child killed by a signal exits 128 + its number, as a shell would report it. */
function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 15) : 0);
}

/**
 * After its stdin is closed, how long receive-pack gets to end by itself before SIGTERM.
 * EOF is how OpenSSH's sshd ends a session whose client left: receive-pack then fails an
 * incomplete push and removes its objects/tmp_objdir-incoming-* (a signal leaves it behind,
 * megabytes that gc keeps for two weeks), or finishes one it has wholly received. Generous,
 * since git may still be checking a large push it has all of. upload-pack and
 * upload-archive, which write nothing, get SIGTERM at once.
 */
const EOF_GRACE_MS = 30_000;
/** After SIGTERM, how long git (and hooks that trap TERM) get before SIGKILL. */
const KILL_AFTER_MS = 5000;
/** At the shutdown cut, what is left of `settle`'s time after EOF goes to SIGTERM. */
const SETTLE_TERM_SHARE = 0.6;
/** After git exits, how long its output pipes may stay open (a hook's background child holding them). */
const PIPES_AFTER_EXIT_MS = 5000;
/** The size of each of the two buffers git's stdout is read into (a pipe's read, as Node's own). */
const STDOUT_BUFFER = 64 * 1024;
const TRANSIENT_PAIR_ERRORS = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'EAGAIN']);

/** What a git run uses of its process, whether this process or the spawn helper started it. */
interface GitProcess {
  readonly pid?: number | undefined;
  readonly stdin: Writable;
  /** null where git's stdout is read by a ReusedBufferReader. */
  readonly stdout: Readable | null;
  readonly stderr: Readable;
  on(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  once(event: 'exit', listener: () => void): unknown;
}

interface HelperStdio {
  readonly reader: ReusedBufferReader;
  readonly stdin: Socket;
  readonly stderr: Socket;
  /** git's ends, for the helper. */
  readonly theirs: readonly [Socket, Socket, Socket];
  /** Destroys every end still here, for a start that failed. */
  close(): void;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Runs git in a child process on a repository on local disk. */
export class LocalGitTransport implements GitTransport {
  private readonly baseEnv: Readonly<Record<string, string>>;
  private readonly log: Logger;
  /** Process groups still running; killed if the server exits without aborting them. */
  private readonly groups = new Set<number>();
  /** How to end each running git gently, and when it has exited. */
  private readonly running = new Map<number, { readonly end: () => void; readonly exited: Promise<unknown> }>();

  private readonly uploadPackArgs: readonly string[];
  /** Set while socket pairs for git's stdout cannot be made (warned once, not per command). */
  private stdoutPairFailing = false;
  /** Where the socket pairs for git's stdio are made. */
  private readonly socketPairs: SocketPairs;
  /** Starts git where this process's fork would be costly (spawnHelper.ts); none: from this process. */
  private readonly spawnHelper: SpawnHelper | undefined;

  /** Without `uploadPack`, git-upload-pack runs with git's own defaults; without `socketDir`, the OS's temp directory serves. */
  constructor(options: { baseEnv: Readonly<Record<string, string>>; uploadPack?: UploadPackOptions; log: Logger; socketDir?: string; spawnHelper?: SpawnHelper }) {
    this.baseEnv = options.baseEnv;
    this.spawnHelper = options.spawnHelper;
    this.socketPairs = new SocketPairs(options.socketDir);
    this.uploadPackArgs = options.uploadPack ? uploadPackConfigArgs(options.uploadPack) : [];
    this.log = options.log;
  }

  /** SIGKILLs every git process group still running, and removes the socket pairs' directory (for process exit). */
  killAll(): void {
    for (const group of this.groups) signalProcess(group, true, 'SIGKILL');
    this.socketPairs.removeDirectory();
  }

  /**
   * The shutdown cut: every git still running gets EOF (if it has not yet), then SIGTERM
   * once most of `timeoutMs` has passed; resolves when all have exited or the time is up.
   */
  async settle(timeoutMs: number): Promise<void> {
    if (this.running.size === 0) return;
    for (const { end } of this.running.values()) end();
    const all = Promise.all([...this.running.values()].map(({ exited }) => exited));
    await Promise.race([all, delay(timeoutMs * SETTLE_TERM_SHARE)]);
    for (const group of this.running.keys()) signalProcess(group, true, 'SIGTERM');
    await Promise.race([all, delay(timeoutMs * (1 - SETTLE_TERM_SHARE))]);
  }

  async run(run: GitRun): Promise<GitOutcome> {
    run.signal.throwIfAborted();
    const env: Record<string, string> = { ...this.baseEnv, ...run.target.env };
    if (run.gitProtocol) env.GIT_PROTOCOL = run.gitProtocol;
    // Its own process group, so that an abort also stops what git started (pack-objects,
    // hooks) instead of orphaning it.
    const config = run.service === 'git-upload-pack' ? this.uploadPackArgs : [];
    const { child, reader } = await this.start([...config, ...SUBCOMMAND[run.service], run.target.repoDir], env, run.signal);
    const group = child.pid;
    if (group !== undefined) this.groups.add(group);
    let termTimer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let leaderExited = false;
    // git's output reaches the client through these, so that ending the session can detach
    // them from git's pipes and decide what becomes of those.
    const stdout = child.stdout?.pipe(new PassThrough());
    const stderr = child.stderr.pipe(new PassThrough());
    const writesRepository = run.service === 'git-receive-pack';
    const kill = (): void => {
      if (group === undefined || termTimer || leaderExited) return;
      for (const pipe of [child.stdout, child.stderr]) {
        if (!pipe) continue;
        pipe.unpipe();
        // receive-pack's output is drained: writing to a closed pipe it would die of SIGPIPE
        // half-way through removing its incoming objects. upload-pack and upload-archive only
        // read: a closed pipe ends them (and pack-objects) at once, as when sshd closes the channel.
        if (writesRepository) pipe.resume();
        else pipe.destroy();
      }
      if (writesRepository) reader?.drain();
      else reader?.destroy();
      run.stdin.unpipe(child.stdin);
      // Closed, not ended: what the client sent and git has not read yet is dropped.
      child.stdin.destroy();
      // A reading git has nothing to clean up: no reason to let pack-objects compute on.
      termTimer = setTimeout(() => {
        signalProcess(group, true, 'SIGTERM');
        killTimer = setTimeout(() => signalProcess(group, true, 'SIGKILL'), KILL_AFTER_MS).unref();
      }, writesRepository ? EOF_GRACE_MS : 0).unref();
    };
    run.signal.addEventListener('abort', kill, { once: true });
    // Aborted while git was starting: the listener above never fires for that.
    if (run.signal.aborted) kill();
    let pipesTimer: NodeJS.Timeout | undefined;
    const exited = new Promise<number>((resolve) => {
      child.on('exit', (code, signal) => {
        // Its group id may be given to a stranger once it is gone: no signal after this.
        leaderExited = true;
        clearTimeout(termTimer);
        clearTimeout(killTimer);
        if (group !== undefined) this.running.delete(group);
        pipesTimer = setTimeout(() => {
          this.log.warn('git exited but its output stayed open; closing it');
          for (const pipe of [child.stdout, child.stderr, stdout, stderr]) pipe?.destroy();
          reader?.destroy();
        }, PIPES_AFTER_EXIT_MS).unref();
        resolve(exitStatus(code, signal));
      });
    });
    if (group !== undefined) this.running.set(group, { end: kill, exited });
    // The client may go away while git still writes to stdin's pipe: EPIPE is expected.
    child.stdin.on('error', (err) => this.log.debug({ err }, 'git stdin closed early'));
    let bytesIn = 0;
    const count = (chunk: Buffer): void => {
      bytesIn += chunk.length;
    };
    run.stdin.on('data', count);
    run.stdin.pipe(child.stdin);

    const settle = (err: unknown): void => {
      if (run.signal.aborted) return;
      // Our own destroy of pipes held open after git exited: what was read was sent.
      if ((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
      throw err;
    };
    try {
      const [exitCode] = await Promise.all([
        exited,
        forward(reader?.chunks(run.signal) ?? stdout!, (chunk) => run.output.write('stdout', chunk), run.signal).catch(settle),
        forward(stderr, (chunk) => run.output.write('stderr', chunk), run.signal).catch(settle),
      ]);
      return { exitCode, bytesIn };
    } catch (err) {
      kill();
      throw err;
    } finally {
      clearTimeout(pipesTimer);
      if (group !== undefined && leaderExited) this.groups.delete(group);
      else if (group !== undefined) child.once('exit', () => this.groups.delete(group));
      run.signal.removeEventListener('abort', kill);
      run.stdin.off('data', count);
      run.stdin.unpipe(child.stdin);
    }
  }

  /**
   * Starts git: through the spawn helper where there is one and three socket pairs can be
   * made (git's stdout read into reused buffers), else from this process, with a socket
   * pair for stdout if one can be made and Node's pipes for the rest.
   */
  private async start(args: readonly string[], env: Record<string, string>, signal: AbortSignal): Promise<{ child: GitProcess; reader: ReusedBufferReader | undefined }> {
    if (this.spawnHelper) {
      const stdio = await this.helperStdio();
      if (stdio) {
        if (signal.aborted) {
          stdio.close();
          signal.throwIfAborted();
        }
        try {
          const child = await this.spawnHelper.spawn('git', args, { env, detached: true, stdio: stdio.theirs });
          // As a ChildProcess does: what git's descendants may still hold of stdin gets EOF.
          child.once('exit', () => stdio.stdin.destroy());
          return { child: Object.assign(child, { stdin: stdio.stdin, stdout: null, stderr: stdio.stderr }), reader: stdio.reader };
        } catch (err) {
          stdio.close();
          if ((err as NodeJS.ErrnoException).code !== 'EHELPER') throw spawnError(err);
          this.log.warn({ err }, 'the spawn helper failed; starting git from the server');
        }
      }
    }
    const pair = await this.stdoutPair();
    if (signal.aborted) {
      pair?.reader.destroy();
      pair?.childEnd.destroy();
      signal.throwIfAborted();
    }
    try {
      const child = (await spawnGit(args, { env, stdio: ['pipe', pair?.childEnd ?? 'pipe', 'pipe'], detached: true })) as ChildProcessByStdio<Writable, Readable | null, Readable>;
      // After 'spawn' only a failed kill() or send() could emit it; neither is used.
      child.on('error', (err) => this.log.error({ err }, 'git process error'));
      return { child, reader: pair?.reader };
    } catch (err) {
      pair?.reader.destroy();
      throw err;
    } finally {
      // git has its own copy now (or none): ours would keep its output open after it exits.
      pair?.childEnd.destroy();
    }
  }

  /** Socket pairs for git's stdin, stdout and stderr, or undefined where they cannot be made (then the fallback's own errors speak). */
  private async helperStdio(): Promise<HelperStdio | undefined> {
    const reader = new ReusedBufferReader(STDOUT_BUFFER);
    const made: SocketPair[] = [];
    const close = (): void => {
      for (const pair of made) {
        pair.ours.destroy();
        pair.theirs.destroy();
      }
      reader.destroy();
    };
    try {
      made.push(await this.socketPairs.make());
      made.push(await this.socketPairs.make(reader.onread));
      made.push(await this.socketPairs.make());
    } catch (err) {
      close();
      this.pairFailed(err);
      return undefined;
    }
    this.stdoutPairFailing = false;
    const [stdin, stdout, stderr] = made as [SocketPair, SocketPair, SocketPair];
    reader.attach(stdout.ours);
    return {
      reader,
      stdin: stdin.ours,
      stderr: stderr.ours,
      theirs: [stdin.theirs, stdout.theirs, stderr.theirs],
      close,
    };
  }

  /**
   * A socket pair for git's stdout, read into reused buffers (the clone's data path), or
   * undefined where none can be made (a temp directory we cannot write, a full disk): then
   * Node's pipe serves, and the next command tries again.
   */
  private async stdoutPair(): Promise<{ reader: ReusedBufferReader; childEnd: Socket } | undefined> {
    const reader = new ReusedBufferReader(STDOUT_BUFFER);
    try {
      const { ours, theirs } = await this.socketPairs.make(reader.onread);
      reader.attach(ours);
      this.stdoutPairFailing = false;
      return { reader, childEnd: theirs };
    } catch (err) {
      this.pairFailed(err);
      return undefined;
    }
  }

  private pairFailed(err: unknown): void {
    // Out of descriptors: git cannot start either, and says so.
    if (!this.stdoutPairFailing && !TRANSIENT_PAIR_ERRORS.has((err as NodeJS.ErrnoException).code ?? '')) {
      this.log.warn({ err }, 'cannot make a socket pair for git output; reading it through pipes until one can be made');
    }
    this.stdoutPairFailing = true;
  }
}
