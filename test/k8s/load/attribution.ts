import type { Operation, TcpRecord } from './loadGenerator.js';

/** One of git-sshd's JSON log lines (pino: `time` is an ISO string with milliseconds). */
export interface ServerLogLine {
  readonly time?: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export function logTime(line: ServerLogLine): number {
  return line.time === undefined ? Number.NaN : Date.parse(line.time);
}

/**
 * Log lines and the clock run on the same machine (the pods share the node's clock), so a
 * line belongs to a connection when its port matches and it falls inside the connection's
 * life. The slack only absorbs the millisecond rounding of the two stamps and the time a
 * log line takes to be written after the event.
 */
const SLACK_MS = 2000;

export interface Served {
  readonly server: string;
  readonly correlationId: string;
  /** The server's `connection closed` summary, once logged. */
  readonly summary?: ServerLogLine;
}

/**
 * Which server (pod) served this TCP connection: the `authenticated` line whose remote_port
 * is the connection's local port (kube-proxy rewrites the destination, not the source port).
 */
export function servedBy(connection: TcpRecord, logs: ReadonlyMap<string, readonly ServerLogLine[]>): Served | undefined {
  for (const [server, lines] of logs) {
    const authenticated = lines.find(
      (line) =>
        line.msg === 'authenticated' &&
        line.remote_port === connection.localPort &&
        logTime(line) >= connection.connectedAt - SLACK_MS &&
        (connection.closedAt === undefined || logTime(line) <= connection.closedAt + SLACK_MS),
    );
    if (!authenticated) continue;
    const correlationId = String(authenticated.correlation_id);
    const summary = lines.find((line) => line.msg === 'connection closed' && line.correlation_id === correlationId);
    return { server, correlationId, ...(summary ? { summary } : {}) };
  }
  return undefined;
}

/** Sets `servedBy` on every operation whose connection is found in the logs; returns those not found. */
export function attribute(operations: readonly Operation[], logs: ReadonlyMap<string, readonly ServerLogLine[]>): Operation[] {
  const unmatched: Operation[] = [];
  for (const op of operations) {
    const connection = op.connections.at(-1);
    const served = connection ? servedBy(connection, logs) : undefined;
    if (served) op.servedBy = served.server;
    else unmatched.push(op);
  }
  return unmatched;
}
