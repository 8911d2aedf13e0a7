import type { GitOutcome, GitRun, GitTransport } from './transport.js';

/** Runs each command where its target says: in Gitaly when it names one, else locally. */
export class RoutingTransport implements GitTransport {
  constructor(private readonly transports: { readonly local: GitTransport; readonly gitaly: GitTransport | undefined }) {}

  run(run: GitRun): Promise<GitOutcome> {
    if (run.target.gitaly) {
      if (!this.transports.gitaly) return Promise.reject(new Error('a Gitaly target without a Gitaly transport'));
      return this.transports.gitaly.run(run);
    }
    return this.transports.local.run(run);
  }
}
