import { existsSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { LRUCache } from 'lru-cache';
import { GitSshdError, policyError } from '../../errors.js';
import type { Logger } from '../../logging/logger.js';
import type { AccessBackend, BackendCommand, GitService, GitTarget, Identity, RequestContext } from '../backend.js';
import { ApiError, type GitlabApiClient } from './apiClient.js';
import type { AllowedResponse, AuthorizedKeyResponse, DiscoverResponse } from './api.js';
import { gitlabCommands } from './commands.js';
import { formatGitlabError } from './console.js';

export const ERR_STORAGE = 'ERR_STORAGE';

export interface GitlabBackendOptions {
  readonly api: GitlabApiClient;
  /** Gitaly storage name -> the directory its repositories are in, on this machine. */
  readonly storages: Readonly<Record<string, string>>;
  readonly keyCache: { readonly ttlMs: number; readonly max: number };
  readonly pat: { readonly enabled: boolean; readonly allowedScopes: readonly string[] };
  /** gitaly: git runs in the Gitaly /allowed names (as gitlab-sshd); local: on a volume. */
  readonly gitTransport: 'gitaly' | 'local';
  /**
   * With the local transport, serve pushes with a local git-receive-pack. Off by default:
   * GitLab's per-branch push checks and post-push processing run in Gitaly's hooks, which a
   * local git does not run.
   */
  readonly localPush: boolean;
  readonly log: Logger;
}

/**
 * GitLab as the access backend: keys, users and permissions from its internal API, the
 * same calls gitlab-sshd makes; git runs on the repository `/allowed` names, found through
 * the `gitlab.storages` table.
 */
export class GitlabBackend implements AccessBackend {
  private readonly options: GitlabBackendOptions;
  /** Key blob -> key id. Only found keys are kept, so a key added in GitLab works at once. */
  private readonly keys: LRUCache<string, string> | undefined;
  readonly commands: ReadonlyMap<string, BackendCommand>;

  constructor(options: GitlabBackendOptions) {
    this.options = options;
    this.keys = options.keyCache.ttlMs > 0 ? new LRUCache({ max: options.keyCache.max, ttl: options.keyCache.ttlMs }) : undefined;
    this.commands = gitlabCommands({ api: options.api, pat: options.pat, authorize: (identity, service, repo, context) => this.allowed(identity, service, repo, context) });
  }

  async identify(publicKey: Buffer, context: RequestContext): Promise<Identity | undefined> {
    // As gitlab-sshd: DSA keys are refused before GitLab is asked.
    if (keyAlgorithm(publicKey) === 'ssh-dss') {
      this.options.log.info('DSA key refused (DSA is prohibited)');
      return undefined;
    }
    // gitlab-shell sends the blob in unpadded base64.
    const blob = publicKey.toString('base64').replace(/=+$/, '');
    let keyId = this.keys?.get(blob);
    if (keyId === undefined) {
      try {
        const found = await this.options.api.get<AuthorizedKeyResponse>('/authorized_keys', { query: { key: blob }, ...requestOf(context) });
        if (typeof found.id !== 'number' && typeof found.id !== 'string') return undefined;
        keyId = String(found.id);
      } catch (err) {
        // Only 404 means "no such key". A 401 or 403 is a wrong secret or a blocked client:
        // ours to fix, so it must not read as every user's key being unknown.
        if (err instanceof ApiError && err.status === 404) return undefined;
        throw err;
      }
      this.keys?.set(blob, keyId);
    }
    return { username: `key-${keyId}`, keyId, keyFingerprint: '' };
  }

  async welcome(identity: Identity, context: RequestContext): Promise<string> {
    let user: DiscoverResponse;
    try {
      user = await this.options.api.get<DiscoverResponse>('/discover', { query: { key_id: identity.keyId }, ...requestOf(context) });
    } catch (err) {
      if (err instanceof ApiError && err.errorClass === 'policy') throw policyError(err.code, `Failed to get username: ${err.message}`);
      throw err;
    }
    return user && typeof user.id === 'number' && user.id >= 1 ? `Welcome to GitLab, @${user.username}!` : 'Welcome to GitLab, Anonymous!';
  }

  async authorizeGit(identity: Identity, service: GitService, repoArg: string, context: RequestContext): Promise<GitTarget> {
    if (this.options.gitTransport === 'gitaly') return this.gitalyTarget(identity, service, repoArg, context);
    if (service === 'git-receive-pack' && !this.options.localPush) {
      throw policyError(
        'ERR_PUSH_UNSUPPORTED',
        'pushes are not served by this server yet: GitLab\'s push checks (protected branches, push rules) run in Gitaly; ask your administrator',
      );
    }
    const allowed = await this.allowed(identity, service, repoArg, context);
    const repository = allowed.gitaly?.repository;
    const root = repository ? this.options.storages[repository.storage_name] : undefined;
    if (!repository || root === undefined) {
      this.options.log.error({ storage: repository?.storage_name }, 'no gitlab.storages entry for the storage /allowed named');
      throw new GitSshdError(ERR_STORAGE, `storage ${JSON.stringify(repository?.storage_name ?? '')} is not mapped in gitlab.storages`);
    }
    const relative = normalize(repository.relative_path);
    if (isAbsolute(relative) || relative === '..' || relative.startsWith(`..${sep}`)) {
      throw new GitSshdError(ERR_STORAGE, `relative_path ${JSON.stringify(repository.relative_path)} leaves its storage`);
    }
    const repoDir = join(root, relative);
    if (!existsSync(repoDir)) {
      this.options.log.error({ repo_dir: repoDir }, 'repository named by /allowed is not on this machine');
      throw new GitSshdError(ERR_STORAGE, 'repository not found on this server');
    }
    return {
      repo: allowed.gl_project_path ?? repository.gl_project_path ?? repoArg,
      repoDir,
      env: {
        GL_ID: allowed.gl_id ?? '',
        GL_REPOSITORY: allowed.gl_repository ?? '',
        GL_USERNAME: allowed.gl_username ?? '',
        GL_PROJECT_PATH: allowed.gl_project_path ?? repository.gl_project_path ?? '',
        GL_PROTOCOL: 'ssh',
        // The repositories belong to GitLab's git user, not to this process: git refuses
        // "dubious ownership" unless told the directories are safe.
        ...configEnv(['safe.directory=*', ...(allowed.git_config_options ?? [])]),
      },
      consoleMessages: allowed.gl_console_messages ?? [],
    };
  }

  /** The command as gitlab-sshd runs it: in the Gitaly /allowed names, with its metadata. */
  private async gitalyTarget(identity: Identity, service: GitService, repoArg: string, context: RequestContext): Promise<GitTarget> {
    const allowed = await this.allowed(identity, service, repoArg, context);
    const gitaly = allowed.gitaly;
    const repository = gitaly?.repository;
    if (!gitaly?.address || !repository) {
      this.options.log.error({ has_address: Boolean(gitaly?.address), has_repository: Boolean(repository) }, '/allowed named no Gitaly address or repository');
      throw new GitSshdError(ERR_STORAGE, 'GitLab named no Gitaly for this repository');
    }
    const features = Object.fromEntries(Object.entries(gitaly.features ?? {}).filter(([name]) => name.startsWith('gitaly-feature-')).map(([name, value]) => [name, String(value)]));
    return {
      repo: allowed.gl_project_path ?? repository.gl_project_path ?? repoArg,
      repoDir: '',
      env: {},
      consoleMessages: allowed.gl_console_messages ?? [],
      gitaly: {
        address: gitaly.address,
        token: gitaly.token ?? '',
        repository: {
          storageName: repository.storage_name,
          relativePath: repository.relative_path,
          gitObjectDirectory: repository.git_object_directory ?? '',
          gitAlternateObjectDirectories: repository.git_alternate_object_directories ?? [],
          glRepository: repository.gl_repository ?? allowed.gl_repository ?? '',
          glProjectPath: repository.gl_project_path ?? allowed.gl_project_path ?? '',
        },
        glId: allowed.gl_id ?? '',
        glRepository: allowed.gl_repository ?? '',
        glUsername: allowed.gl_username ?? '',
        gitConfigOptions: allowed.git_config_options ?? [],
        // As gitlab-shell: feature flags, then who is asking and from where.
        metadata: {
          ...features,
          key_id: String(allowed.gl_key_id ?? identity.keyId),
          key_type: allowed.gl_key_type ?? 'key',
          user_id: allowed.gl_id ?? '',
          username: allowed.gl_username ?? '',
          remote_ip: context.clientIp,
        },
        correlationId: context.correlationId,
      },
    };
  }

  formatError(message: string): string {
    return formatGitlabError(message);
  }

  async close(): Promise<void> {
    this.options.api.close();
  }

  /** `POST /allowed`; a refusal (status false or a 4xx) is the user's to read. */
  private async allowed(identity: Identity, service: GitService, repoArg: string, context: RequestContext): Promise<AllowedResponse> {
    const response = await this.options.api.post<AllowedResponse>('/allowed', {
      body: { action: service, project: repoArg, changes: '_any', protocol: 'ssh', key_id: identity.keyId, check_ip: context.clientIp },
      ...requestOf(context),
    });
    const consoleMessages = response.gl_console_messages ?? [];
    if (response.status !== true) {
      throw new GitSshdError('ERR_ACCESS_DENIED', response.message ?? 'Access denied', { errorClass: 'policy', consoleMessages });
    }
    if (response.payload !== undefined) {
      // HTTP 300 with a payload: a Geo secondary asking us to proxy to the primary.
      throw new GitSshdError('ERR_CUSTOM_ACTION', 'GitLab asked for a custom action (Geo proxying), which this server does not support', { consoleMessages });
    }
    return response;
  }
}

/** The algorithm name at the start of an SSH public key blob. */
function keyAlgorithm(blob: Buffer): string {
  if (blob.length < 4) return '';
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + Math.min(length, 64)).toString('latin1');
}

function requestOf(context: RequestContext): { signal: AbortSignal; correlationId: string } {
  return { signal: context.signal, correlationId: context.correlationId };
}

/** GitLab's `git_config_options` (`key=value`) as git's GIT_CONFIG_* environment. */
function configEnv(options: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  let count = 0;
  for (const option of options) {
    const at = option.indexOf('=');
    if (at <= 0) continue;
    env[`GIT_CONFIG_KEY_${count}`] = option.slice(0, at);
    env[`GIT_CONFIG_VALUE_${count}`] = option.slice(at + 1);
    count += 1;
  }
  if (count > 0) env.GIT_CONFIG_COUNT = String(count);
  return env;
}
