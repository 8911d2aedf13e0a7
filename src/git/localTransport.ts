import { spawn } from 'node:child_process';
import { forward } from '../ssh/streams.js';
import type { Logger } from '../logging/logger.js';
import type { GitOutcome, GitRun, GitTransport } from './transport.js';

const SUBCOMMAND = {
  'git-upload-pack': 'upload-pack',
  'git-receive-pack': 'receive-pack',
  'git-upload-archive': 'upload-archive',
} as const;

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
    const child = spawn('git', [SUBCOMMAND[run.service], run.target.repoDir], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: run.signal,
      killSignal: 'SIGTERM',
    });
    const exited = new Promise<number>((resolve) => {
      child.on('error', (err) => {
        if ((err as Error).name !== 'AbortError') this.log.error({ err }, 'git process failed');
        resolve(128);
      });
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 128)));
    });
    // The client may go away while git still writes to stdin's pipe: EPIPE is expected.
    child.stdin.on('error', (err) => this.log.debug({ err }, 'git stdin closed early'));
    let bytesIn = 0;
    run.stdin.on('data', (chunk: Buffer) => {
      bytesIn += chunk.length;
    });
    run.stdin.pipe(child.stdin);

    const ignoreAbort = (err: unknown): number => {
      if (run.signal.aborted) return 0;
      throw err;
    };
    const [exitCode, bytesOut] = await Promise.all([
      exited,
      forward(child.stdout, run.stdout, run.signal).catch(ignoreAbort),
      forward(child.stderr, run.stderr, run.signal).catch(ignoreAbort),
    ]).then(([code, out]) => [code, out] as const);
    run.stdin.unpipe(child.stdin);
    return { exitCode, bytesIn, bytesOut };
  }
}
