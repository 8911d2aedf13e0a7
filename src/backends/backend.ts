/**
 * What the SSH layer asks of an access backend. The embedded local backend answers from
 * files on disk; the GitLab backend will answer from GitLab's internal API.
 */
export type GitService = 'git-upload-pack' | 'git-receive-pack' | 'git-upload-archive';

export interface Identity {
  /** Shown to the user and logged. */
  readonly username: string;
  /** What the backend uses to find the identity again (a key id, a key blob, ...). */
  readonly keyId: string;
  readonly keyFingerprint: string;
}

/** Who is asking, for the backend's calls: cancellation, the request id, the client's address. */
export interface RequestContext {
  readonly signal: AbortSignal;
  /** The connection's correlation id (GitLab's X-Request-Id). */
  readonly correlationId: string;
  /** The client's address (from the PROXY header when there is one). */
  readonly clientIp: string;
}

/** Streams of one session, for commands that talk with the user. */
export interface CommandIO {
  readonly stdin: NodeJS.ReadableStream;
  write(stream: 'stdout' | 'stderr', text: string): Promise<void>;
}

/** A git command to run in Gitaly, as GitLab's /allowed described it. */
export interface GitalyCall {
  /** `tcp://`, `tls://` or `unix:` address of the Gitaly (or Praefect) serving the repository. */
  readonly address: string;
  readonly token: string;
  readonly repository: {
    readonly storageName: string;
    readonly relativePath: string;
    readonly gitObjectDirectory: string;
    readonly gitAlternateObjectDirectories: readonly string[];
    readonly glRepository: string;
    readonly glProjectPath: string;
  };
  readonly glId: string;
  readonly glRepository: string;
  readonly glUsername: string;
  readonly gitConfigOptions: readonly string[];
  /** gRPC metadata as gitlab-shell sends it: gitaly-feature-*, key_id, user_id, remote_ip, ... */
  readonly metadata: Readonly<Record<string, string>>;
  /** The connection's correlation id, for logs. */
  readonly correlationId: string;
}

export interface GitTarget {
  /** Canonical repository name, for logs and metrics. */
  readonly repo: string;
  /** The bare repository git runs in (empty when git runs in Gitaly). */
  readonly repoDir: string;
  /** Set when git runs in Gitaly rather than on a local volume. */
  readonly gitaly?: GitalyCall;
  /** Extra environment for git and its hooks. */
  readonly env: Readonly<Record<string, string>>;
  /** Run once git has exited 0; for receive-pack, repository upkeep after a push. */
  readonly afterSuccess?: () => Promise<void>;
  /** Lines to show the user (on stderr, as `remote:` lines) before git runs. */
  readonly consoleMessages?: readonly string[];
}

export interface AccessBackend {
  /** The identity owning this public key (SSH wire blob), or undefined if none does. */
  identify(publicKey: Buffer, context: RequestContext): Promise<Identity | undefined>;
  /** The line `shell` and an empty command print. */
  welcome(identity: Identity, context: RequestContext): Promise<string>;
  /** Checks access and names the repository; throws a policy GitSshdError when denied. */
  authorizeGit(identity: Identity, service: GitService, repoArg: string, context: RequestContext): Promise<GitTarget>;
  /** Commands of this backend beyond git and the welcome (GitLab's lfs, 2FA and token commands). */
  readonly commands?: ReadonlyMap<string, BackendCommand>;
  /** How an error message is framed on stderr (gitlab-sshd boxes it in `remote:` lines). */
  formatError?(message: string): string;
  close(): Promise<void>;
}

export interface BackendCommand {
  /** Runs the command; resolves with its exit status. Throws GitSshdError to report a failure. */
  run(identity: Identity, args: readonly string[], io: CommandIO, context: RequestContext): Promise<number>;
}
