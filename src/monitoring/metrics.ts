import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type ConnectionPhase = 'unauthenticated' | 'idle' | 'active';
export type RejectReason =
  | 'max_startups'
  | 'per_source_max_startups'
  | 'penalty'
  | 'proxy_header_malformed'
  | 'proxy_header_oversized'
  | 'proxy_header_timeout'
  | 'proxy_header_truncated'
  | 'proxy_header_missing'
  | 'proxy_header_not_allowed';
/** What the PROXY header step decided for an admitted connection (or `closed`: the peer left first). */
export type ProxyHeaderResult = 'v1' | 'v2' | 'local' | 'ignored' | 'absent' | 'closed';
export type DropReason = 'login_grace_time' | 'banner_timeout' | 'evicted' | 'keepalive_timeout' | 'max_auth_tries' | 'protocol_violation' | 'shutdown' | 'backend_error';
export type AlgorithmKind = 'kex' | 'host_key' | 'cipher' | 'mac';

/** Live figures that are cheaper to read when scraped than to keep up to date. */
export interface MetricsSources {
  readonly lifecycleState: () => string;
  /** Seconds the drain has run (so far, or in total once stopped); undefined before it. */
  readonly drainSeconds: () => number | undefined;
  /** Bytes read and written on SSH sockets since start, open ones included. */
  readonly bytes: () => { readonly received: number; readonly sent: number };
  /** Sources (network blocks) being refused for a penalty now. */
  readonly penalisedSources?: () => number;
}

const LIFECYCLE_STATES = ['starting', 'ready', 'draining', 'stopped'] as const;
const PHASES: readonly ConnectionPhase[] = ['unauthenticated', 'idle', 'active'];

/**
 * Every metric git-sshd exports, in one place, on a registry main creates. The
 * `gitlab_shell_*` and `gitlab_sli:*` names, types and buckets are gitlab-sshd's, so
 * dashboards and alerts written for it keep working; `git_sshd_*` are ours.
 */
export class Metrics {
  readonly registry: Registry;

  // gitlab-sshd's
  readonly inFlightConnections: Gauge;
  readonly concurrentLimitedSessions: Counter;
  readonly sessionDuration: Histogram;
  readonly sessionEstablishedDuration: Histogram;
  readonly sliSessions: Counter;
  readonly sliSessionErrors: Counter;
  readonly sliConnections: Counter;
  readonly sliConnectionErrors: Counter;
  readonly httpRequests: Counter<'code' | 'method'>;
  readonly httpRequestDuration: Histogram<'code' | 'method'>;
  readonly httpInFlight: Gauge;

  // ours
  readonly connections: Gauge<'phase'>;
  readonly connectionsRejected: Counter<'reason'>;
  readonly proxyHeaders: Counter<'result'>;
  readonly proxyHeaderWait: Histogram<'result'>;
  readonly connectionsDropped: Counter<'reason'>;
  readonly preBannerCloses: Counter<'reason'>;
  readonly authAttempts: Counter<'method' | 'outcome'>;
  readonly authSignatureAlgorithms: Counter<'algorithm' | 'outcome'>;
  readonly negotiatedAlgorithms: Counter<'kind' | 'algorithm'>;
  readonly clientSoftware: Counter<'software'>;
  readonly commands: Counter<'command' | 'result'>;
  readonly sessionsCutAtShutdown: Counter;
  readonly sourcePenalties: Counter<'reason'>;
  readonly userLimitRefusals: Counter<'limit'>;
  readonly sessionsIdleClosed: Counter;
  readonly staleIncomingRemoved: Counter;
  readonly probeRequests: Counter<'probe' | 'code' | 'client'>;

  constructor(registry: Registry, sources: MetricsSources, version: string) {
    this.registry = registry;
    const registers = [registry];

    this.inFlightConnections = new Gauge({
      name: 'gitlab_shell_sshd_in_flight_connections',
      help: 'A gauge of connections currently being served by gitlab-shell sshd.',
      registers,
    });
    this.concurrentLimitedSessions = new Counter({
      name: 'gitlab_shell_sshd_concurrent_limited_sessions_total',
      help: 'The number of times the concurrent sessions limit was hit in gitlab-shell sshd.',
      registers,
    });
    this.sessionDuration = new Histogram({
      name: 'gitlab_shell_sshd_session_duration_seconds',
      help: 'A histogram of latencies for connections to gitlab-shell sshd.',
      buckets: [5, 30, 60],
      registers,
    });
    this.sessionEstablishedDuration = new Histogram({
      name: 'gitlab_shell_sshd_session_established_duration_seconds',
      help: 'A histogram of latencies until session established to gitlab-shell sshd.',
      buckets: [0.5, 1, 5],
      registers,
    });
    this.sliSessions = new Counter({
      name: 'gitlab_sli:shell_sshd_sessions:total',
      help: 'Number of SSH sessions that have been established',
      registers,
    });
    this.sliSessionErrors = new Counter({
      name: 'gitlab_sli:shell_sshd_sessions:errors_total',
      help: 'Number of SSH sessions that have failed',
      registers,
    });
    this.sliConnections = new Counter({
      name: 'gitlab_sli:shell_sshd_connections:total',
      help: 'Number of SSH connections that reached authentication',
      registers,
    });
    this.sliConnectionErrors = new Counter({
      name: 'gitlab_sli:shell_sshd_connections:errors_total',
      help: 'Number of SSH connections that failed on the server side',
      registers,
    });

    this.httpRequests = new Counter({
      name: 'gitlab_shell_http_requests_total',
      help: 'Requests to the GitLab internal API, by status code and method',
      labelNames: ['code', 'method'],
      registers,
    });
    this.httpRequestDuration = new Histogram({
      name: 'gitlab_shell_http_request_duration_seconds',
      help: 'Duration of requests to the GitLab internal API',
      labelNames: ['code', 'method'],
      buckets: [0.005, 0.025, 0.1, 0.5, 1, 10, 30, 60, 300],
      registers,
    });
    this.httpInFlight = new Gauge({
      name: 'gitlab_shell_http_in_flight_requests',
      help: 'Requests to the GitLab internal API in flight',
      registers,
    });
    this.connections = new Gauge({
      name: 'git_sshd_connections',
      help: 'Open SSH connections by phase: unauthenticated, idle (authenticated, no session) or active',
      labelNames: ['phase'],
      registers,
    });
    for (const phase of PHASES) this.connections.set({ phase }, 0);
    this.connectionsRejected = new Counter({
      name: 'git_sshd_connections_rejected_total',
      help: 'Connections refused on arrival, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.proxyHeaders = new Counter({
      name: 'git_sshd_proxy_headers_total',
      help: 'PROXY protocol step outcomes: v1, v2 (client address used), local (LOCAL/UNKNOWN: socket address), ignored (policy ignore), absent, closed (peer left first)',
      labelNames: ['result'],
      registers,
    });
    this.proxyHeaderWait = new Histogram({
      name: 'git_sshd_proxy_header_wait_seconds',
      help: 'Time from accept until the PROXY header step decided, by result (the latency it adds)',
      labelNames: ['result'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.connectionsDropped = new Counter({
      name: 'git_sshd_connections_dropped_total',
      help: 'Connections the server closed, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.preBannerCloses = new Counter({
      name: 'git_sshd_pre_banner_closes_total',
      help: 'Connections closed before a valid SSH banner, by what the client sent: no_data, http, tls, invalid_banner, incomplete_banner, oversized_banner, garbage',
      labelNames: ['reason'],
      registers,
    });
    this.authAttempts = new Counter({
      name: 'git_sshd_auth_attempts_total',
      help: 'Authentication attempts by method and outcome',
      labelNames: ['method', 'outcome'],
      registers,
    });
    this.authSignatureAlgorithms = new Counter({
      name: 'git_sshd_auth_signature_algorithms_total',
      help: 'Public key signatures by algorithm (ssh-rsa is SHA-1) and outcome: accepted, or refused by policy (algorithm_not_allowed, key_too_weak)',
      labelNames: ['algorithm', 'outcome'],
      registers,
    });
    this.negotiatedAlgorithms = new Counter({
      name: 'git_sshd_negotiated_algorithms_total',
      help: 'Handshakes by negotiated algorithm (kind: kex, host_key, cipher, mac)',
      labelNames: ['kind', 'algorithm'],
      registers,
    });
    this.clientSoftware = new Counter({
      name: 'git_sshd_client_software_total',
      help: 'Connections by client software and major.minor version (a bounded set; the rest is "other")',
      labelNames: ['software'],
      registers,
    });
    this.commands = new Counter({
      name: 'git_sshd_commands_total',
      help: 'Commands run, by command and result (ok, failed, denied, unknown_command, bad_command, error, cut)',
      labelNames: ['command', 'result'],
      registers,
    });
    this.sessionsCutAtShutdown = new Counter({
      name: 'git_sshd_sessions_cut_at_shutdown_total',
      help: 'Sessions still running when the grace period ended, closed by the server',
      registers,
    });

    this.sourcePenalties = new Counter({
      name: 'git_sshd_source_penalties_total',
      help: 'Penalties that began refusing a source (network block), by the reason that tipped it: noauth, authfail, banner_timeout, grace_exceeded',
      labelNames: ['reason'],
      registers,
    });
    new Gauge({
      name: 'git_sshd_penalised_sources',
      help: 'Sources (network blocks) whose new connections are refused for a penalty now',
      registers,
      collect() {
        this.set(sources.penalisedSources?.() ?? 0);
      },
    });
    this.userLimitRefusals = new Counter({
      name: 'git_sshd_user_limit_refusals_total',
      help: 'Sessions refused because their user held too many connections or sessions (limit: connections, sessions)',
      labelNames: ['limit'],
      registers,
    });
    this.sessionsIdleClosed = new Counter({
      name: 'git_sshd_sessions_idle_timeout_total',
      help: 'Sessions closed because their channel was silent both ways for session_idle_timeout',
      registers,
    });
    this.staleIncomingRemoved = new Counter({
      name: 'git_sshd_stale_incoming_removed_total',
      help: 'Partial-push directories (objects/tmp_objdir-incoming-*) left by a crash and removed',
      registers,
    });
    this.probeRequests = new Counter({
      name: 'git_sshd_probe_requests_total',
      help: 'Requests to the readiness and liveness paths (probe), by answer (code) and asker (client: kubelet for kube-probe, other)',
      labelNames: ['probe', 'code', 'client'],
      registers,
    });
    new Gauge({
      name: 'git_sshd_lifecycle_state',
      help: 'The process state: 1 for the current one (starting, ready, draining, stopped)',
      labelNames: ['state'],
      registers,
      collect() {
        const current = sources.lifecycleState();
        for (const state of LIFECYCLE_STATES) this.set({ state }, state === current ? 1 : 0);
      },
    });
    new Gauge({
      name: 'git_sshd_drain_duration_seconds',
      help: 'How long the drain after SIGTERM has run, or took; 0 before it starts',
      registers,
      collect() {
        this.set(sources.drainSeconds() ?? 0);
      },
    });
    new Counter({
      name: 'git_sshd_bytes_total',
      help: 'Bytes on SSH connections (direction: received, sent), open connections included',
      labelNames: ['direction'],
      registers,
      collect() {
        const bytes = sources.bytes();
        this.reset();
        this.inc({ direction: 'received' }, bytes.received);
        this.inc({ direction: 'sent' }, bytes.sent);
      },
    });
    new Gauge({ name: 'git_sshd_build_info', help: 'Always 1; the version is a label', labelNames: ['version'], registers }).set({ version }, 1);

    collectDefaultMetrics({ register: registry });
    // prom-client also exports these sums as gauges named *_total, which promtool (rightly)
    // flags; the per-type gauges they sum (nodejs_active_handles etc.) stay.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      registry.removeSingleMetric(name);
    }
  }
}
