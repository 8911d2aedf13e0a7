import type { Readable } from 'node:stream';
import type { GitService, GitTarget } from '../backends/backend.js';
import type { CommandOutput } from '../io/output.js';

export interface GitRun {
  readonly service: GitService;
  readonly target: GitTarget;
  /** The client's GIT_PROTOCOL (e.g. `version=2`), already checked. */
  readonly gitProtocol: string | undefined;
  readonly stdin: Readable;
  readonly output: CommandOutput;
  readonly signal: AbortSignal;
}

export interface GitOutcome {
  readonly exitCode: number;
  readonly bytesIn: number;
}

/**
 * Where git runs: a local process today; Gitaly's SSHService RPCs for the GitLab backend
 * slot in beside it. Resolves once git has exited AND all of its output has been taken
 * by `output`.
 */
export interface GitTransport {
  run(run: GitRun): Promise<GitOutcome>;
}
