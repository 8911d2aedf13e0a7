import { Counter, Histogram, type Registry } from 'prom-client';

export type GrpcLabels = 'grpc_type' | 'grpc_service' | 'grpc_method';

/**
 * The Gitaly client's metrics, under the names gitlab-shell exports (its
 * `gitlab_shell_gitaly_connections_total`, and go-grpc-prometheus's client metrics), so
 * dashboards for gitlab-sshd's Gitaly calls keep working.
 */
export class GitalyMetrics {
  readonly connections: Counter<'status'>;
  readonly started: Counter<GrpcLabels>;
  readonly handled: Counter<GrpcLabels | 'grpc_code'>;
  readonly handling: Histogram<GrpcLabels | 'grpc_code'>;
  /** Errors by class: policy (Gitaly said no to the user) or system (ours to fix). */
  readonly errors: Counter<'grpc_method' | 'class'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.connections = new Counter({
      name: 'gitlab_shell_gitaly_connections_total',
      help: 'Number of Gitaly connections that have been established',
      labelNames: ['status'],
      registers,
    });
    this.started = new Counter({
      name: 'grpc_client_started_total',
      help: 'Total number of RPCs started on the client.',
      labelNames: ['grpc_type', 'grpc_service', 'grpc_method'],
      registers,
    });
    this.handled = new Counter({
      name: 'grpc_client_handled_total',
      help: 'Total number of RPCs completed by the client, regardless of success or failure.',
      labelNames: ['grpc_type', 'grpc_service', 'grpc_method', 'grpc_code'],
      registers,
    });
    this.handling = new Histogram({
      name: 'grpc_client_handling_seconds',
      help: 'Histogram of response latency (seconds) of the gRPC until it is finished by the application.',
      labelNames: ['grpc_type', 'grpc_service', 'grpc_method', 'grpc_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers,
    });
    this.errors = new Counter({
      name: 'git_sshd_gitaly_errors_total',
      help: 'Gitaly calls that failed, by class: policy (the user was refused) or system (ours to fix)',
      labelNames: ['grpc_method', 'class'],
      registers,
    });
  }
}
