import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { constants } from 'node:os';
import type { Logger } from '../logging/logger.js';
import { forward } from '../ssh/streams.js';
import { spawnGit } from './spawnGit.js';
import type { GitOutcome, GitRun, GitTransport } from './transport.js';

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

/** After SIGTERM, how long git (and hooks that trap TERM) get before SIGKILL. */
const KILL_AFTER_MS = 5000;
/** After git exits, how long its output pipes may stay open (a hook's background child holding them). */
const PIPES_AFTER_EXIT_MS = 5000;

function signalGroup(group: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-group, signal);
  } catch {
    // Already gone.
  }
}

/** Runs git in a child process on a repository on local disk. */
export class LocalGitTransport implements GitTransport {
  private readonly baseEnv: Readonly<Record<string, string>>;
  private readonly log: Logger;
  /** Process groups still running; killed if the server exits without aborting them. */
  private readonly groups = new Set<number>();

  constructor(options: { baseEnv: Readonly<Record<string, string>>; log: Logger }) {
    this.baseEnv = options.baseEnv;
    this.log = options.log;
  }

  /** SIGKILLs every git process group still running (for process exit). */
  killAll(): void {
    for (const group of this.groups) signalGroup(group, 'SIGKILL');
  }

  async run(run: GitRun): Promise<GitOutcome> {
    run.signal.throwIfAborted();
    const env: Record<string, string> = { ...this.baseEnv, ...run.target.env };
    if (run.gitProtocol) env.GIT_PROTOCOL = run.gitProtocol;
    // Its own process group, so that an abort also stops what git started (pack-objects,
    // hooks) instead of orphaning it.
    const child = (await spawnGit([...SUBCOMMAND[run.service], run.target.repoDir], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    })) as ChildProcessWithoutNullStreams;
    const group = child.pid;
    if (group !== undefined) this.groups.add(group);
    let killTimer: NodeJS.Timeout | undefined;
    const kill = (): void => {
      if (group === undefined || killTimer) return;
      signalGroup(group, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(group, 'SIGKILL'), KILL_AFTER_MS).unref();
    };
    run.signal.addEventListener('abort', kill, { once: true });
    let pipesTimer: NodeJS.Timeout | undefined;
    const exited = new Promise<number>((resolve) => {
      child.on('error', (err) => {
        this.log.error({ err }, 'git process failed to start');
        resolve(128);
      });
      child.on('exit', (code, signal) => {
        pipesTimer = setTimeout(() => {
          this.log.warn('git exited but its output stayed open; closing it');
          child.stdout.destroy();
          child.stderr.destroy();
        }, PIPES_AFTER_EXIT_MS).unref();
        resolve(exitStatus(code, signal));
      });
    });
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
        forward(child.stdout, (chunk) => run.output.write('stdout', chunk), run.signal).catch(settle),
        forward(child.stderr, (chunk) => run.output.write('stderr', chunk), run.signal).catch(settle),
      ]);
      return { exitCode, bytesIn };
    } catch (err) {
      kill();
      throw err;
    } finally {
      clearTimeout(pipesTimer);
      if (group !== undefined && child.exitCode !== null) this.groups.delete(group);
      else if (group !== undefined) child.once('exit', () => this.groups.delete(group));
      run.signal.removeEventListener('abort', kill);
      run.stdin.off('data', count);
      run.stdin.unpipe(child.stdin);
    }
  }
}
