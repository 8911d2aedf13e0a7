export type ProxyPolicy = 'use' | 'require' | 'ignore' | 'reject';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
export type BackendKind = 'local' | 'gitlab';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** OpenSSH's MaxStartups start:rate:full. */
export interface MaxStartups {
  readonly start: number;
  readonly rate: number;
  readonly full: number;
}

/** The validated, frozen configuration. Durations are milliseconds. */
export interface Config {
  readonly user: string;
  readonly backend: BackendKind;
  readonly gitlabUrl: string;
  readonly gitlabRelativeUrlRoot: string;
  readonly secret: string;
  readonly secretFile: string;
  readonly httpSettings: {
    readonly user: string;
    readonly password: string;
    readonly readTimeoutMs: number;
    readonly caFile: string;
    readonly caPath: string;
    readonly selfSignedCert: boolean;
  };
  readonly logLevel: LogLevel;
  readonly logFormat: 'json' | 'text';
  readonly logFile: string;
  readonly auditUsernames: boolean;
  readonly sslCertDir: string;
  readonly sshd: {
    readonly listen: ListenAddress;
    readonly proxyProtocol: boolean;
    readonly proxyPolicy: ProxyPolicy;
    readonly proxyAllowed: readonly string[];
    readonly proxyHeaderTimeoutMs: number;
    readonly webListen: ListenAddress | undefined;
    readonly concurrentSessionsLimit: number;
    readonly clientAliveIntervalMs: number;
    readonly clientAliveCountMax: number;
    readonly maxStartups: MaxStartups;
    /** 0 = no per-address limit. */
    readonly perSourceMaxStartups: number;
    readonly maxAuthTries: number;
    readonly gracePeriodMs: number;
    readonly loginGraceTimeMs: number;
    readonly readinessProbe: string;
    readonly livenessProbe: string;
    /** Empty means: the embedded default keys in `local.dataDir`, generated once. */
    readonly hostKeyFiles: readonly string[];
    readonly hostCertFiles: readonly string[];
    readonly trustedUserCaKeys: readonly string[];
    readonly macs: readonly string[];
    readonly kexAlgorithms: readonly string[];
    readonly ciphers: readonly string[];
    /** Never empty: an empty setting means the defaults (no ssh-rsa, no ssh-dss). */
    readonly publicKeyAlgorithms: readonly string[];
    /** RSA user keys below this many bits are refused (OpenSSH's RequiredRSASize). */
    readonly minRsaKeyBits: number;
  };
  readonly kube: {
    /** Empty when host keys do not come from a Secret. */
    readonly hostKeysSecret: string;
    readonly namespace: string;
  };
  readonly gitlab: {
    readonly storages: Readonly<Record<string, string>>;
    readonly keyCacheTtlMs: number;
    readonly keyCacheSize: number;
    readonly localPush: boolean;
  };
  readonly pat: {
    readonly enabled: boolean;
    readonly allowedScopes: readonly string[];
  };
  readonly local: {
    readonly dataDir: string;
    readonly usersFile: string;
    /** Whether users_file was named by the operator (a missing one is then an error). */
    readonly usersFileExplicit: boolean;
    readonly reposDir: string;
  };
  /** The environment git child processes start from (PATH, HOME), nothing else of ours. */
  readonly gitEnv: Readonly<Record<string, string>>;
  /** Where the config came from, for the start-up log line. */
  readonly source: string | undefined;
}
