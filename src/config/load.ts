import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import convict from 'convict';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ERR_CONFIG, GitSshdError } from '../errors.js';
import { DEFAULT_PUBLIC_KEY_ALGORITHMS } from './algorithms.js';
import { parseDurationMs } from './duration.js';
import { booleanOrAsIs, FORMATS, parseListenAddress, parseMaxStartups } from './formats.js';
import { METRICS_PATH, SCHEMA } from './schema.js';
import { parseNetBlockSize, type NetBlockSize } from '../server/netblock.js';
import type { PenaltySettings } from '../server/sourcePenalties.js';
import type { BackendKind, Config, ListenAddress, LogLevel, MaxStartups, ProxyPolicy } from './types.js';

export interface LoadOptions {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

export interface LoadedConfig {
  readonly config: Config;
  /** Things worth a warning once a logger exists (legacy keys that are set, ...). */
  readonly warnings: readonly string[];
}

type SchemaNode = Record<string, unknown>;

const isLeaf = (node: unknown): boolean =>
  typeof node === 'object' && node !== null && 'default' in node && 'doc' in node;

function configError(message: string, cause?: unknown): GitSshdError {
  return new GitSshdError(ERR_CONFIG, message, { cause });
}

/** `--config FILE`, `--config=FILE`, `-c FILE`, else GIT_SSHD_CONFIG, else none. */
export function configPathFrom(argv: readonly string[], env: LoadOptions['env']): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--config' || arg === '-c') {
      const next = argv[i + 1];
      if (next === undefined || next === '') throw configError(`${arg} needs a file name`);
      return next;
    }
    if (arg.startsWith('--config=')) return arg.slice('--config='.length);
  }
  return env.GIT_SSHD_CONFIG || undefined;
}

function readYaml(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw configError(`cannot read config file ${path}: ${code}`, err);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const where = err.linePos?.[0] ? `${path}:${err.linePos[0].line}:${err.linePos[0].col}` : path;
      throw configError(`${where}: not valid YAML: ${(err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`, err);
    }
    throw configError(`${path}: not valid YAML`, err);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw configError(`${path}: the top level must be a mapping of keys, not ${Array.isArray(doc) ? 'a list' : typeof doc}`);
  }
  return doc as Record<string, unknown>;
}

const show = (value: unknown): string => {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

/** Unknown keys and sections of the wrong shape, with the keys that are allowed there. */
function checkKeys(doc: Record<string, unknown>, schema: SchemaNode, prefix: string, problems: string[]): void {
  for (const [key, value] of Object.entries(doc)) {
    const printableKey = /^[\w.-]+$/.test(key) ? key : JSON.stringify(key);
    const path = prefix ? `${prefix}.${printableKey}` : printableKey;
    const node = schema[key];
    if (node === undefined) {
      const allowed = Object.keys(schema).join(', ');
      // A misspelt secret is still a secret: never echo the value of such a key.
      const shown = /secret|passw|token/i.test(key) ? '[redacted]' : show(value);
      problems.push(`${path}: unknown key (value was ${shown}); allowed${prefix ? ` in ${prefix}` : ''}: ${allowed}`);
      continue;
    }
    if (isLeaf(node)) continue;
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push(`${path}: must be a mapping with keys ${Object.keys(node as SchemaNode).join(', ')} (value was ${show(value)})`);
      continue;
    }
    checkKeys(value as Record<string, unknown>, node as SchemaNode, path, problems);
  }
}

/** Legacy keys that the file sets to something other than their default. */
function legacyKeysSet(doc: Record<string, unknown>, schema: SchemaNode, prefix: string, out: string[]): void {
  for (const [key, value] of Object.entries(doc)) {
    const node = schema[key] as SchemaNode | undefined;
    const path = prefix ? `${prefix}.${key}` : key;
    if (!node) continue;
    if (isLeaf(node)) {
      if (String(node.doc).startsWith('legacy') && value !== null && show(value) !== show(node.default)) out.push(path);
    } else if (value && typeof value === 'object') {
      legacyKeysSet(value as Record<string, unknown>, node, path, out);
    }
  }
}

/**
 * Reads the file the way gitlab-shell's Go YAML decoder does: a null value (`sshd:` with
 * nothing under it, or `client_alive_interval:` left empty by omnibus) keeps the
 * default, and `yes`/`no`/`on`/`off` are booleans where a boolean is expected.
 */
function normalizeDoc(doc: Record<string, unknown>, schema: SchemaNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    const node = schema[key] as SchemaNode | undefined;
    if (value === null && node !== undefined) continue;
    if (node !== undefined && !isLeaf(node) && typeof value === 'object' && !Array.isArray(value)) {
      out[key] = normalizeDoc(value as Record<string, unknown>, node);
    } else if (node !== undefined && node.format === 'boolean') {
      out[key] = booleanOrAsIs(value);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function oneLine(convictMessage: string): string {
  return convictMessage
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.replace(/^Error: /, ''))
    .join('; ');
}

function durationMs(value: unknown): number {
  return parseDurationMs(value) as number;
}

function listen(value: string): ListenAddress {
  return parseListenAddress(value) as ListenAddress;
}

function normalizeLevel(value: string): LogLevel {
  const level = value.toLowerCase();
  if (level === 'warning') return 'warn';
  if (level === 'panic') return 'fatal';
  return level as LogLevel;
}

export function loadConfig(options: LoadOptions): LoadedConfig {
  const source = configPathFrom(options.argv, options.env);
  const file = source === undefined ? {} : normalizeDoc(readYaml(resolve(options.cwd, source)), SCHEMA);
  const where = source === undefined ? 'configuration' : `configuration in ${source}`;

  const problems: string[] = [];
  checkKeys(file, SCHEMA, '', problems);
  if (problems.length > 0) throw configError(`invalid ${where}: ${problems.join('; ')}`);

  convict.addFormats(FORMATS);
  const store = convict(SCHEMA as never, { env: { ...options.env } as NodeJS.ProcessEnv, args: [] });
  try {
    store.load(file);
    store.validate({ allowed: 'strict' });
  } catch (err) {
    throw configError(`invalid ${where}: ${oneLine((err as Error).message)}`, err);
  }
  const raw = store.getProperties() as Record<string, any>;

  const warnings: string[] = [];
  const legacy: string[] = [];
  legacyKeysSet(file, SCHEMA, '', legacy);
  // The Helm chart always writes the gssapi keys; they only matter when GSSAPI is enabled.
  const gssapiOn = raw.sshd.gssapi.enabled === true;
  for (const key of legacy) {
    if (key.startsWith('sshd.gssapi.') && !gssapiOn) continue;
    warnings.push(`config key ${key} is accepted for compatibility and has no effect`);
  }

  if (durationMs(raw.sshd.proxy_header_timeout) === 0) {
    throw configError(`invalid ${where}: sshd.proxy_header_timeout: must be more than 0 (a header cannot arrive in no time): value was ${JSON.stringify(raw.sshd.proxy_header_timeout)}`);
  }
  if (raw.sshd.proxy_protocol === true && raw.sshd.proxy_allowed.length === 0 && ['use', 'require'].includes(String(raw.sshd.proxy_policy).toLowerCase())) {
    warnings.push(
      'sshd.proxy_protocol is on and sshd.proxy_allowed is empty: any client that reaches the port directly can name its own address; list your load balancers in sshd.proxy_allowed',
    );
  }
  const paths = [
    ['sshd.readiness_probe', raw.sshd.readiness_probe],
    ['sshd.liveness_probe', raw.sshd.liveness_probe],
    ['/metrics', METRICS_PATH],
  ] as const;
  for (const [index, [key, path]] of paths.entries()) {
    const clash = paths.slice(index + 1).find(([, other]) => other === path);
    if (clash) throw configError(`invalid ${where}: ${key}: ${JSON.stringify(path)} is also ${clash[0] === '/metrics' ? 'the metrics path' : clash[0]}; each monitoring path must be different`);
  }
  const notYet: Array<[string, boolean]> = [
    ['sshd.host_cert_files / host_key_certs (host certificates)', raw.sshd.host_cert_files.length + raw.sshd.host_key_certs.length > 0],
    ['sshd.trusted_user_ca_keys (user certificates)', raw.sshd.trusted_user_ca_keys.length > 0],
  ];
  for (const [key, set] of notYet) if (set) warnings.push(`config key ${key} is not acted on in this version`);

  const dataDir = resolve(options.cwd, raw.local.data_dir);
  // gitlab-shell resolves a relative log_file against the config file's directory.
  const configDir = source === undefined ? options.cwd : dirname(resolve(options.cwd, source));
  const logFile = raw.log_file === '' || isAbsolute(raw.log_file) ? raw.log_file : resolve(configDir, raw.log_file);
  const config: Config = {
    user: raw.user,
    backend: String(raw.backend).toLowerCase() as BackendKind,
    gitlabUrl: raw.gitlab_url,
    gitlabRelativeUrlRoot: raw.gitlab_relative_url_root,
    secret: raw.backend.toLowerCase() === 'gitlab' ? readSecret(raw.secret, raw.secret_file, configDir, where) : raw.secret,
    secretFile: raw.secret_file === '' || isAbsolute(raw.secret_file) ? raw.secret_file : resolve(configDir, raw.secret_file),
    httpSettings: {
      user: raw.http_settings.user,
      password: raw.http_settings.password,
      readTimeoutMs: (raw.http_settings.read_timeout || 300) * 1000,
      caFile: raw.http_settings.ca_file,
      caPath: raw.http_settings.ca_path,
      selfSignedCert: raw.http_settings.self_signed_cert,
    },
    logLevel: normalizeLevel(raw.log_level),
    logFormat: String(raw.log_format).toLowerCase() as Config['logFormat'],
    logFile,
    auditUsernames: raw.audit_usernames,
    sslCertDir: raw.ssl_cert_dir,
    sshd: {
      listen: listen(raw.sshd.listen),
      proxyProtocol: raw.sshd.proxy_protocol,
      proxyPolicy: String(raw.sshd.proxy_policy).toLowerCase() as ProxyPolicy,
      proxyAllowed: raw.sshd.proxy_allowed,
      proxyHeaderTimeoutMs: durationMs(raw.sshd.proxy_header_timeout),
      webListen: raw.sshd.web_listen === '' ? undefined : listen(raw.sshd.web_listen),
      concurrentSessionsLimit: raw.sshd.concurrent_sessions_limit,
      clientAliveIntervalMs: durationMs(raw.sshd.client_alive_interval),
      clientAliveCountMax: raw.sshd.client_alive_count_max,
      maxStartups: parseMaxStartups(raw.sshd.max_startups) as MaxStartups,
      perSourceMaxStartups: raw.sshd.per_source_max_startups,
      maxAuthTries: raw.sshd.max_auth_tries,
      bannerTimeoutMs: durationMs(raw.sshd.banner_timeout),
      perSourceNetBlockSize: parseNetBlockSize(raw.sshd.per_source_net_block_size) as NetBlockSize,
      perSourcePenalties: penaltySettings(raw.sshd.per_source_penalties),
      maxConnectionsPerUser: raw.sshd.max_connections_per_user,
      maxSessionsPerUser: raw.sshd.max_sessions_per_user,
      sessionIdleTimeoutMs: durationMs(raw.sshd.session_idle_timeout),
      gracePeriodMs: durationMs(raw.sshd.grace_period),
      loginGraceTimeMs: durationMs(raw.sshd.login_grace_time),
      readinessProbe: raw.sshd.readiness_probe,
      livenessProbe: raw.sshd.liveness_probe,
      hostKeyFiles: raw.sshd.host_key_files.map((file: string) => resolve(options.cwd, file)),
      hostCertFiles: [...raw.sshd.host_cert_files, ...raw.sshd.host_key_certs],
      trustedUserCaKeys: raw.sshd.trusted_user_ca_keys,
      macs: raw.sshd.macs,
      kexAlgorithms: raw.sshd.kex_algorithms,
      ciphers: raw.sshd.ciphers,
      publicKeyAlgorithms: raw.sshd.public_key_algorithms.length > 0 ? raw.sshd.public_key_algorithms : DEFAULT_PUBLIC_KEY_ALGORITHMS,
      minRsaKeyBits: raw.sshd.min_rsa_key_bits,
    },
    kube: {
      hostKeysSecret: raw.sshd.host_keys_secret,
      namespace: raw.sshd.host_keys_secret === '' ? '' : podNamespace(raw.kube.namespace),
    },
    gitlab: {
      storages: raw.gitlab.storages,
      keyCacheTtlMs: durationMs(raw.gitlab.key_cache_ttl),
      keyCacheSize: raw.gitlab.key_cache_size,
      localPush: raw.gitlab.local_push,
      gitTransport: raw.gitlab.git_transport.toLowerCase() as 'gitaly' | 'local',
      gitalyConnectTimeoutMs: durationMs(raw.gitlab.gitaly_connect_timeout),
      gitalyStartTimeoutMs: durationMs(raw.gitlab.gitaly_start_timeout),
      gitalyKeepAliveMs: durationMs(raw.gitlab.gitaly_keepalive),
    },
    pat: { enabled: raw.pat.enabled, allowedScopes: raw.pat.allowed_scopes },
    local: {
      dataDir,
      usersFile: raw.local.users_file ? resolve(options.cwd, raw.local.users_file) : resolve(dataDir, 'users.yml'),
      usersFileExplicit: raw.local.users_file !== '',
      reposDir: raw.local.repos_dir ? resolve(options.cwd, raw.local.repos_dir) : resolve(dataDir, 'repos'),
      staleIncomingAfterMs: durationMs(raw.local.stale_incoming_after),
    },
    uploadPack: {
      allowFilter: raw.upload_pack.allow_filter,
      allowAnySha1InWant: raw.upload_pack.allow_any_sha1_in_want,
      allowRefInWant: raw.upload_pack.allow_ref_in_want,
      advertiseObjectInfo: raw.upload_pack.advertise_object_info,
    },
    gitEnv: gitEnvFrom(options.env),
    source,
  };
  return { config: deepFreeze(config), warnings };
}

function penaltySettings(raw: Record<string, any>): PenaltySettings {
  return {
    enabled: raw.enabled,
    durationsMs: {
      noauth: durationMs(raw.noauth),
      authfail: durationMs(raw.authfail),
      banner_timeout: durationMs(raw.banner_timeout),
      grace_exceeded: durationMs(raw.grace_exceeded),
    },
    minMs: durationMs(raw.min),
    maxMs: Math.max(durationMs(raw.max), durationMs(raw.min)),
    exempt: raw.exempt,
  };
}

/** The namespace named in the config, else the one the service account token is for. */
function podNamespace(configured: string): string {
  if (configured !== '') return configured;
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}

/**
 * The shared secret for backend gitlab: `secret` when set, else the contents of
 * `secret_file` (relative to the config file's directory, as gitlab-shell resolves it).
 */
function readSecret(secret: string, secretFile: string, configDir: string, where: string): string {
  if (secret.trim() !== '') return secret;
  const path = isAbsolute(secretFile) ? secretFile : resolve(configDir, secretFile);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw configError(`invalid ${where}: secret_file: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'}); set secret, secret_file or GITLAB_SHELL_SECRET`);
  }
  if (text.trim() === '') throw configError(`invalid ${where}: secret_file: ${path} is empty`);
  return text;
}

function gitEnvFrom(env: LoadOptions['env']): Record<string, string> {
  const out: Record<string, string> = { PATH: env.PATH || '/usr/local/bin:/usr/bin:/bin', GIT_TERMINAL_PROMPT: '0' };
  if (env.HOME) out.HOME = env.HOME;
  if (env.TZ) out.TZ = env.TZ;
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
