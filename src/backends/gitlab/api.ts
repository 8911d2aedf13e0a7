/** The internal API's JSON, as far as git-sshd reads it (field names are GitLab's). */

export interface AuthorizedKeyResponse {
  readonly id: number | string;
  readonly key?: string;
}

export interface DiscoverResponse {
  readonly id: number | null;
  readonly name?: string;
  readonly username?: string;
}

export interface AllowedResponse {
  readonly status: boolean;
  readonly message?: string;
  readonly gl_repository?: string;
  readonly gl_project_path?: string;
  readonly gl_id?: string;
  readonly gl_username?: string;
  readonly gl_key_type?: string;
  readonly gl_key_id?: number | null;
  readonly git_config_options?: readonly string[];
  readonly gl_console_messages?: readonly string[];
  /** Present with HTTP 300: a custom action (Geo). */
  readonly payload?: unknown;
  readonly gitaly?: {
    readonly repository?: {
      readonly storage_name: string;
      readonly relative_path: string;
      readonly git_object_directory?: string;
      readonly git_alternate_object_directories?: readonly string[];
      readonly gl_repository?: string;
      readonly gl_project_path?: string;
    };
    /** tcp://, tls:// or unix: address of the Gitaly serving the repository. */
    readonly address?: string;
    readonly token?: string;
    /** `gitaly-feature-*` flags, sent to Gitaly as metadata. */
    readonly features?: Readonly<Record<string, string>>;
  };
}

export interface LfsAuthenticateResponse {
  readonly username: string;
  readonly lfs_token: string;
  readonly repository_http_path: string;
  readonly expires_in?: number;
}

export interface SuccessResponse {
  readonly success: boolean;
  readonly message?: string;
}

export interface RecoveryCodesResponse extends SuccessResponse {
  readonly recovery_codes?: readonly string[];
}

export interface PersonalAccessTokenResponse extends SuccessResponse {
  readonly token?: string;
  readonly scopes?: readonly string[];
  readonly expires_at?: string | null;
}
