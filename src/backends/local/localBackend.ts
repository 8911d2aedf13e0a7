import { ERR_ACCESS_DENIED, ERR_NOT_FOUND, ERR_REPO_PATH, policyError } from '../../errors.js';
import type { Logger } from '../../logging/logger.js';
import type { AccessBackend, GitService, GitTarget, Identity, RequestContext } from '../backend.js';
import { accessLevel, allows, type AccessLevel } from './access.js';
import { notFoundError } from './fsErrors.js';
import { locateRepo, resolveRepo, type RepoLocation } from './repoPath.js';
import { Repositories } from './repositories.js';
import type { UsersStore } from './usersStore.js';

export interface LocalBackendOptions {
  readonly users: UsersStore;
  readonly reposDir: string;
  readonly gitEnv: Readonly<Record<string, string>>;
  readonly log: Logger;
}

const NEEDED: Record<GitService, AccessLevel> = {
  'git-upload-pack': 'read',
  'git-upload-archive': 'read',
  'git-receive-pack': 'write',
};

/**
 * The embedded backend: identities from the users file, repositories under one root.
 * Every command looks the key up again in the current users file, so a key or grant
 * removed from the file stops working for new commands on connections already open.
 */
/** Bounds the HEAD repair after a push (a few quick git commands). */
const REPAIR_TIMEOUT_MS = 30_000;

export class LocalBackend implements AccessBackend {
  private readonly options: LocalBackendOptions;
  private readonly repositories: Repositories;

  constructor(options: LocalBackendOptions) {
    this.options = options;
    this.repositories = new Repositories({ gitEnv: options.gitEnv });
  }

  async identify(publicKey: Buffer): Promise<Identity | undefined> {
    const keyId = publicKey.toString('base64');
    const owner = this.options.users.current.keys.get(keyId);
    if (!owner) return undefined;
    return { username: owner.user.name, keyId, keyFingerprint: owner.fingerprint };
  }

  async welcome(identity: Identity): Promise<string> {
    return `Welcome to git-sshd, @${identity.username}!`;
  }

  async authorizeGit(identity: Identity, service: GitService, repoArg: string, { signal }: RequestContext): Promise<GitTarget> {
    const owner = this.options.users.current.keys.get(identity.keyId);
    if (!owner) throw policyError(ERR_ACCESS_DENIED, 'your key is no longer accepted');
    if (owner.user.name !== identity.username) {
      throw policyError(ERR_ACCESS_DENIED, 'your key now belongs to another user; connect again');
    }
    const requested = locateRepo(repoArg, this.options.reposDir);
    const grants = owner.user.grants;
    const notFound = notFoundError(requested.name);
    // Access is decided for the repository the path really leads to (an alias is a symlink).
    // Someone with no access to the name asked for learns nothing of what the tree holds there.
    let location: RepoLocation;
    try {
      location = resolveRepo(requested, this.options.reposDir);
    } catch (err) {
      if (!allows(accessLevel(grants, requested.name), 'read')) throw notFound;
      throw err;
    }
    const level = accessLevel(grants, location.name);
    if (!allows(level, 'read')) throw notFound;

    let exists = this.repositories.exists(location.dir, requested.name);
    if (!allows(level, NEEDED[service])) {
      if (!exists) throw notFound;
      throw policyError(ERR_ACCESS_DENIED, `you are not allowed to push to '${requested.name}' (your access is ${level})`);
    }
    if (!exists && service === 'git-receive-pack' && level === 'admin') {
      await this.repositories.create(location.dir, requested.name, signal);
      // A symlink swapped in meanwhile must not redirect the push that follows.
      if (resolveRepo(requested, this.options.reposDir).dir !== location.dir) {
        throw policyError(ERR_REPO_PATH, `invalid repository path "${requested.name}": it changed while being created`);
      }
      this.options.log.info({ repo: location.name, user: identity.username }, 'created repository');
      exists = true;
    }
    if (!exists) {
      if (service === 'git-receive-pack') {
        throw policyError(ERR_NOT_FOUND, `repository '${requested.name}' does not exist; only admins can create repositories by pushing`);
      }
      throw notFound;
    }
    if (location.name !== requested.name) {
      this.options.log.debug({ repo: location.name, requested_repo: requested.name }, 'repository reached through a symlink');
    }
    return {
      repo: location.name,
      repoDir: location.dir,
      env: { GL_USERNAME: identity.username, GL_PROTOCOL: 'ssh', GL_PROJECT_PATH: location.name },
      // Not the session's signal: a push git finished after its client left still needs its HEAD.
      ...(service === 'git-receive-pack' ? { afterSuccess: () => this.repositories.repairHead(location.dir, AbortSignal.timeout(REPAIR_TIMEOUT_MS)) } : {}),
    };
  }

  async close(): Promise<void> {
    this.options.users.close();
  }
}
