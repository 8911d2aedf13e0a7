/**
 * Every key git-sshd reads, with its default. The gitlab-shell keys keep gitlab-shell's
 * names, meaning and defaults (so its config.yml loads unchanged); ours sit beside them.
 * Keys that gitlab-shell still accepts but that mean nothing to an SSH daemon are
 * declared as `legacy` so old files load; the loader says when one is set.
 */
const str = (doc: string, def = '', env?: string, sensitive = false) => ({
  doc,
  format: String,
  default: def,
  ...(env ? { env } : {}),
  ...(sensitive ? { sensitive: true } : {}),
});
const bool = (doc: string, def: boolean, env?: string) => ({ doc, format: 'boolean', default: def, ...(env ? { env } : {}) });
const duration = (doc: string, def: string | number, env?: string) => ({
  doc,
  format: 'duration',
  default: def,
  ...(env ? { env } : {}),
});
const list = (doc: string, def: string[] = [], env?: string) => ({
  doc,
  format: 'string-list',
  default: def,
  ...(env ? { env } : {}),
});
const legacy = (doc: string, format: unknown = '*', def: unknown = null) => ({ doc: `legacy, ignored: ${doc}`, format, default: def });

/** Where the monitoring server serves Prometheus metrics (fixed, as in gitlab-sshd). */
export const METRICS_PATH = '/metrics';

export const SCHEMA = {
  user: { doc: 'The only SSH user name accepted', format: 'user-name', default: 'git', env: 'GIT_SSHD_USER' },
  backend: { doc: 'Access backend: local or gitlab', format: 'backend', default: 'local', env: 'GIT_SSHD_BACKEND' },
  gitlab_url: str('URL of GitLab (http, https or http+unix://)', 'http://localhost:8080', 'GITLAB_URL'),
  gitlab_relative_url_root: str('Relative URL root of GitLab'),
  secret: str('Shared secret with GitLab', '', 'GITLAB_SHELL_SECRET', true),
  secret_file: str('File holding the shared secret with GitLab', '.gitlab_shell_secret'),
  http_settings: {
    user: str('Basic auth user for the GitLab API'),
    password: str('Basic auth password for the GitLab API', '', undefined, true),
    read_timeout: { doc: 'GitLab API read timeout, seconds', format: 'non-negative-int', default: 300 },
    ca_file: str('CA file for the GitLab API'),
    ca_path: str('CA directory for the GitLab API'),
    self_signed_cert: legacy('self-signed certificates (use ca_file)', 'boolean', false),
  },
  log_file: str('Log file; empty or /dev/stdout logs to standard output', '', 'GIT_SSHD_LOG_FILE'),
  log_level: { doc: 'Log level', format: 'log-level', default: 'info', env: 'GIT_SSHD_LOG_LEVEL' },
  log_format: {
    doc: 'Log format: text (readable lines), json, or auto: text on a terminal, JSON otherwise',
    format: 'log-format',
    default: 'auto',
    env: 'GIT_SSHD_LOG_FORMAT',
  },
  audit_usernames: bool('Log user names instead of key ids', false),
  ssl_cert_dir: str('Directory of CA certificates for the GitLab API'),
  auth_file: legacy('authorized_keys file of OpenSSH mode', String, ''),
  gitlab_tracing: legacy('distributed tracing', String, ''),
  git_trace_log_file: legacy('GIT_TRACE log file', String, ''),
  metrics_log_file: legacy('metrics log of gitlab-shell < 8', String, ''),
  repos_path: legacy('repository root of gitlab-shell < 9', String, ''),
  custom_hooks_dir: legacy('global custom hooks of gitlab-shell < 13', String, ''),
  custom_hook_dir: legacy('old spelling of custom_hooks_dir', String, ''),
  gitlab_hooks: legacy('hooks of gitlab-shell < 8', Object, {}),
  redis: legacy('Redis settings of gitlab-shell < 9', Object, {}),
  git_annex_enabled: legacy('git-annex support of old GitLab EE', 'boolean', false),
  migration: legacy('feature migration of gitlab-shell 8', Object, {}),
  experimental: legacy('experimental flags of gitlab-shell 8', '*', null),
  topology_service: legacy('GitLab Cells topology service', Object, {}),
  lfs: {
    pure_ssh_protocol: bool('Serve git-lfs-transfer (the pure SSH LFS protocol)', false),
  },
  pat: {
    enabled: bool('Allow the personal_access_token command', true),
    allowed_scopes: list('Scopes a personal access token may be given; empty = all'),
  },
  sshd: {
    listen: { doc: 'SSH listen address', format: 'listen-address', default: '[::]:2222', env: 'GIT_SSHD_LISTEN' },
    proxy_protocol: bool('Expect PROXY protocol headers', false, 'GIT_SSHD_PROXY_PROTOCOL'),
    proxy_policy: { doc: 'PROXY header policy', format: 'proxy-policy', default: 'use', env: 'GIT_SSHD_PROXY_POLICY' },
    proxy_allowed: {
      ...list('Sources allowed to send PROXY headers (IPs, CIDRs); when set, others are rejected', [], 'GIT_SSHD_PROXY_ALLOWED'),
      format: 'address-range-list',
    },
    proxy_header_timeout: duration('Wait this long for a PROXY header', '500ms', 'GIT_SSHD_PROXY_HEADER_TIMEOUT'),
    web_listen: {
      doc: 'Monitoring listen address; empty turns it off',
      format: 'optional-listen-address',
      default: 'localhost:9122',
      env: 'GIT_SSHD_WEB_LISTEN',
    },
    concurrent_sessions_limit: { doc: 'Sessions per connection', format: 'positive-int', default: 10 },
    client_alive_interval: duration('Keepalive interval; 0 turns keepalives off', '15s'),
    client_alive_count_max: {
      doc: 'Unanswered keepalives before a client is dropped',
      format: 'positive-int',
      default: 3,
    },
    max_startups: {
      doc: 'Unauthenticated connections: from "start" refuse "rate"% of new ones, rising to all at "full" (OpenSSH MaxStartups)',
      format: 'max-startups',
      default: '10:30:100',
      env: 'GIT_SSHD_MAX_STARTUPS',
    },
    per_source_max_startups: {
      doc: 'Unauthenticated connections from one address; 0 = no per-address limit',
      format: 'non-negative-int',
      default: 0,
    },
    max_auth_tries: { doc: 'Failed authentication attempts before the connection is closed', format: 'positive-int', default: 6 },
    banner_timeout: duration('Time from connect (after any PROXY header) for the client to send its SSH banner; 0 = no limit', '10s'),
    per_source_net_block_size: {
      doc: 'Prefix lengths "v4:v6" that group addresses into one source for per-source limits and penalties',
      format: 'net-block-size',
      default: '32:64',
    },
    per_source_penalties: {
      enabled: bool('Refuse, for a while, sources whose connections end without authenticating (OpenSSH PerSourcePenalties)', true, 'GIT_SSHD_PER_SOURCE_PENALTIES'),
      noauth: duration('Penalty per connection closed without an authentication attempt', '1s'),
      authfail: duration('Penalty per connection closed after failed authentication only', '5s'),
      banner_timeout: duration('Penalty per connection dropped at banner_timeout', '10s'),
      grace_exceeded: duration('Penalty per connection dropped at login_grace_time', '20s'),
      min: duration('Accrued penalty at which a source is refused', '15s'),
      max: duration('Longest refusal at a time (repeat offenders double up to it)', '10m'),
      exempt: {
        ...list('Addresses and CIDR ranges never penalised (load balancers without PROXY protocol, NAT gateways); sshd.proxy_allowed is always exempt', ['127.0.0.0/8', '::1'], 'GIT_SSHD_PENALTY_EXEMPT'),
        format: 'address-range-list',
      },
    },
    max_connections_per_user: { doc: 'Authenticated connections one user may hold at once; 0 = no limit', format: 'non-negative-int', default: 50 },
    max_sessions_per_user: { doc: 'Sessions (git processes) one user may run at once, over all connections; 0 = no limit', format: 'non-negative-int', default: 50 },
    session_idle_timeout: duration('Close a session whose channel has been silent both ways this long; 0 = never', '10m'),
    grace_period: duration('Drain time after SIGTERM', '10s', 'GIT_SSHD_GRACE_PERIOD'),
    login_grace_time: duration('Time to authenticate; 0 = no limit', '60s'),
    readiness_probe: { doc: 'Readiness path', format: 'http-path', default: '/start' },
    liveness_probe: { doc: 'Liveness path', format: 'http-path', default: '/health' },
    host_key_files: list('Host private key files; empty = generated keys in local.data_dir', [], 'GIT_SSHD_HOST_KEY_FILES'),
    host_keys_secret: str('Kubernetes Secret holding the host keys, shared by all replicas (created when missing)', '', 'GIT_SSHD_HOST_KEYS_SECRET'),
    host_cert_files: list('Host certificates'),
    host_key_certs: list('Host certificates (the name omnibus and config.yml.example write)'),
    host_key_algorithms: legacy('pre-release name of public_key_algorithms', Array, []),
    env: legacy('environment of the omnibus service', '*', null),
    trusted_user_ca_keys: list('CA keys for user certificates'),
    macs: { doc: 'MAC algorithms; empty = defaults', format: 'mac-list', default: [] },
    kex_algorithms: { doc: 'Key exchange algorithms; empty = defaults', format: 'kex-list', default: [] },
    ciphers: { doc: 'Ciphers; empty = defaults', format: 'cipher-list', default: [] },
    public_key_algorithms: {
      doc: 'User key signature algorithms accepted; empty = the defaults: all supported but ssh-rsa (SHA-1) and ssh-dss (DSA)',
      format: 'public-key-list',
      default: [],
    },
    min_rsa_key_bits: {
      doc: 'Smallest RSA user key accepted, in bits (OpenSSH RequiredRSASize); 1024 at least',
      format: 'rsa-key-bits',
      default: 2048,
      env: 'GIT_SSHD_MIN_RSA_KEY_BITS',
    },
    gssapi: {
      enabled: legacy('GSSAPI authentication (not supported)', 'boolean', false),
      libpath: legacy('GSSAPI library', String, ''),
      keytab: legacy('GSSAPI keytab', String, ''),
      service_principal_name: legacy('GSSAPI principal', String, ''),
    },
  },
  kube: {
    namespace: str('Namespace of the host key Secret; default: this pod\'s namespace', '', 'POD_NAMESPACE'),
  },
  gitlab: {
    storages: {
      doc: 'Gitaly storage name -> directory of its repositories on this machine (backend gitlab)',
      format: 'storage-map',
      default: { default: '/var/opt/gitlab/git-data/repositories' },
    },
    key_cache_ttl: duration('How long a key GitLab confirmed is trusted without asking again; 0 = no cache', '30s', 'GIT_SSHD_KEY_CACHE_TTL'),
    key_cache_size: { doc: 'Keys kept in that cache', format: 'positive-int', default: 10000 },
    local_push: bool('With git_transport local: serve pushes with a local git-receive-pack, without GitLab\'s Gitaly push hooks', false, 'GIT_SSHD_GITLAB_LOCAL_PUSH'),
    git_transport: { doc: 'Where git runs: gitaly (the Gitaly /allowed names, as gitlab-sshd) or local (the repository on a volume, found through storages)', format: 'git-transport', default: 'gitaly', env: 'GIT_SSHD_GITLAB_GIT_TRANSPORT' },
    gitaly_connect_timeout: duration('How long connecting to a Gitaly may take', '10s'),
    gitaly_start_timeout: duration('How long a Gitaly may take to start answering a git command', '60s'),
    gitaly_keepalive: duration('How often a Gitaly connection is pinged to find it dead; 0 = never', '30s'),
  },
  local: {
    data_dir: str('Directory of the embedded backend', './data', 'GIT_SSHD_DATA_DIR'),
    users_file: str('Users, keys and access; default <data_dir>/users.yml', '', 'GIT_SSHD_USERS_FILE'),
    repos_dir: str('Bare repositories; default <data_dir>/repos', '', 'GIT_SSHD_REPOS_DIR'),
    stale_incoming_after: duration('Remove objects/tmp_objdir-incoming-* (partial pushes a crash left) untouched this long; 0 = never', '6h'),
  },
  // What git-upload-pack serves beyond a plain clone; partial clone and object-info are on by
  // default, as GitLab, GitHub and Gitea serve them. Shallow clones and deepen need no key:
  // upload-pack always serves them.
  upload_pack: {
    allow_filter: bool('Partial clone (--filter=blob:none, tree:0...): git\'s uploadpack.allowFilter', true, 'GIT_SSHD_UPLOAD_PACK_ALLOW_FILTER'),
    allow_any_sha1_in_want: bool(
      'Fetch any object by id, which a partial clone does for the blobs it lacks (also objects no ref reaches any more): uploadpack.allowAnySHA1InWant',
      true,
      'GIT_SSHD_UPLOAD_PACK_ALLOW_ANY_SHA1_IN_WANT',
    ),
    // Off: with it advertised, a git 2.5x client's shallow clone fails against git 2.39's
    // upload-pack ("expected 'packfile', received 'shallow-info'", test/modern.test.ts).
    allow_ref_in_want: bool('Protocol v2 want-ref: uploadpack.allowRefInWant (breaks shallow clones of git 2.5x clients on git 2.39)', false),
    advertise_object_info: bool(
      'Protocol v2 object-info (object sizes without a fetch): transfer.advertiseObjectInfo (git 2.39 offers it whatever this says)',
      true,
    ),
  },
};
