import type { NetBlockSize } from '../server/netblock.js';
import type { PenaltySettings } from '../server/sourcePenalties.js';
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
  /** `auto`: text when the log goes to a terminal, JSON otherwise (decided by the logger). */
  readonly logFormat: 'auto' | 'json' | 'text';
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
    /** 0 = no limit. */
    readonly bannerTimeoutMs: number;
    readonly perSourceNetBlockSize: NetBlockSize;
    readonly perSourcePenalties: PenaltySettings;
    /** 0 = no limit. */
    readonly maxConnectionsPerUser: number;
    /** 0 = no limit. */
    readonly maxSessionsPerUser: number;
    /** 0 = never. */
    readonly sessionIdleTimeoutMs: number;
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
    /** gitaly: git runs in the Gitaly /allowed names; local: on a volume, through storages. */
    readonly gitTransport: 'gitaly' | 'local';
    readonly gitalyConnectTimeoutMs: number;
    readonly gitalyStartTimeoutMs: number;
    readonly gitalyKeepAliveMs: number;
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
    /** 0 = never. */
    readonly staleIncomingAfterMs: number;
  };
  readonly uploadPack: UploadPackOptions;
  /** The environment git child processes start from (PATH, HOME), nothing else of ours. */
  readonly gitEnv: Readonly<Record<string, string>>;
  /** Where the config came from, for the start-up log line. */
  readonly source: string | undefined;
}

/** What git-upload-pack serves beyond a plain clone (section upload_pack). */
export interface UploadPackOptions {
  readonly allowFilter: boolean;
  readonly allowAnySha1InWant: boolean;
  readonly allowRefInWant: boolean;
  readonly advertiseObjectInfo: boolean;
}
