import { ERR_ACCESS_DENIED, ERR_NOT_FOUND, policyError } from '../../errors.js';
import type { Logger } from '../../logging/logger.js';
import type { AccessBackend, GitService, GitTarget, Identity, RequestContext } from '../backend.js';
import { accessLevel, allows, type AccessLevel } from './access.js';
import { assertStaysInRoot, locateRepo } from './repoPath.js';
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
    const location = locateRepo(repoArg, this.options.reposDir);
    const level = accessLevel(owner.user.grants, location.name);
    const notFound = policyError(
      ERR_NOT_FOUND,
      `repository '${location.name}' was not found, or you do not have access to it`,
    );
    if (!allows(level, 'read')) throw notFound;
    assertStaysInRoot(location, this.options.reposDir);

    let exists = this.repositories.exists(location.dir);
    if (!allows(level, NEEDED[service])) {
      if (!exists) throw notFound;
      throw policyError(ERR_ACCESS_DENIED, `you are not allowed to push to '${location.name}' (your access is ${level})`);
    }
    if (!exists && service === 'git-receive-pack' && level === 'admin') {
      await this.repositories.create(location.dir, signal);
      assertStaysInRoot(location, this.options.reposDir);
      this.options.log.info({ repo: location.name, user: identity.username }, 'created repository');
      exists = true;
    }
    if (!exists) {
      if (service === 'git-receive-pack') {
        throw policyError(ERR_NOT_FOUND, `repository '${location.name}' does not exist; only admins can create repositories by pushing`);
      }
      throw notFound;
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
