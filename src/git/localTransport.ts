import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Logger } from '../logging/logger.js';
import { forward } from '../ssh/streams.js';
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

/** Runs git in a child process on a repository on local disk. */
export class LocalGitTransport implements GitTransport {
  private readonly baseEnv: Readonly<Record<string, string>>;
  private readonly log: Logger;

  constructor(options: { baseEnv: Readonly<Record<string, string>>; log: Logger }) {
    this.baseEnv = options.baseEnv;
    this.log = options.log;
  }

  async run(run: GitRun): Promise<GitOutcome> {
    const env: Record<string, string> = { ...this.baseEnv, ...run.target.env };
    if (run.gitProtocol) env.GIT_PROTOCOL = run.gitProtocol;
    // Its own process group, so that an abort also stops what git started (pack-objects,
    // hooks) instead of orphaning it.
    const child = spawn('git', [...SUBCOMMAND[run.service], run.target.repoDir], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const kill = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    };
    run.signal.addEventListener('abort', kill, { once: true });
    const exited = new Promise<number>((resolve) => {
      child.on('error', (err) => {
        this.log.error({ err }, 'git process failed to start');
        resolve(128);
      });
      child.on('exit', (code, signal) => resolve(exitStatus(code, signal)));
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
      if (!run.signal.aborted) throw err;
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
      run.signal.removeEventListener('abort', kill);
      run.stdin.off('data', count);
      run.stdin.unpipe(child.stdin);
    }
  }
}
