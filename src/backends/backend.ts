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

export interface GitTarget {
  /** Canonical repository name, for logs and metrics. */
  readonly repo: string;
  /** The bare repository git runs in. */
  readonly repoDir: string;
  /** Extra environment for git and its hooks. */
  readonly env: Readonly<Record<string, string>>;
  /** Run once git has exited 0; for receive-pack, repository upkeep after a push. */
  readonly afterSuccess?: () => Promise<void>;
}

export interface AccessBackend {
  /** The identity owning this public key (SSH wire blob), or undefined if none does. */
  identify(publicKey: Buffer, signal: AbortSignal): Promise<Identity | undefined>;
  /** The line `shell` and an empty command print. */
  welcome(identity: Identity, signal: AbortSignal): Promise<string>;
  /** Checks access and names the repository; throws a policy GitSshdError when denied. */
  authorizeGit(identity: Identity, service: GitService, repoArg: string, signal: AbortSignal): Promise<GitTarget>;
  close(): Promise<void>;
}
