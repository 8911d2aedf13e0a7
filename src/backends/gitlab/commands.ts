import type { BackendCommand } from '../backend.js';
import type { GitlabApiClient } from './apiClient.js';
import { LfsAuthenticate, type Authorize } from './commands/lfsAuthenticate.js';
import { PersonalAccessToken } from './commands/personalAccessToken.js';
import { TwoFactorRecover } from './commands/twoFactorRecover.js';
import { TwoFactorVerify } from './commands/twoFactorVerify.js';

export interface GitlabCommandsOptions {
  readonly api: GitlabApiClient;
  readonly pat: { readonly enabled: boolean; readonly allowedScopes: readonly string[] };
  readonly authorize: Authorize;
}

/** gitlab-shell's commands beyond git and discover; `personal_access_token` only when `pat.enabled`. */
export function gitlabCommands(options: GitlabCommandsOptions): ReadonlyMap<string, BackendCommand> {
  const commands = new Map<string, BackendCommand>([
    ['git-lfs-authenticate', new LfsAuthenticate({ api: options.api, authorize: options.authorize })],
    ['2fa_recovery_codes', new TwoFactorRecover({ api: options.api })],
    ['2fa_verify', new TwoFactorVerify({ api: options.api })],
  ]);
  if (options.pat.enabled) commands.set('personal_access_token', new PersonalAccessToken({ api: options.api, allowedScopes: options.pat.allowedScopes }));
  return commands;
}
