import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** When an endpoint (pod IP) appeared in and left the Service's kube-proxy rules, as seen by polling them. */
export interface ProxiedEndpoint {
  readonly ip: string;
  readonly firstSeenAt: number;
  lastSeenAt: number;
  goneAt?: number;
}

/**
 * kube-proxy's own view of a Service, read from the node's nftables ruleset (kube-proxy's
 * nftables mode): the Service's chain dispatches new connections to one chain per endpoint,
 * named `endpoint-<hash>-<namespace>/<service>/tcp/<port name>__<pod IP>/<port>`. An
 * endpoint gone from that chain gets no new connection through the ClusterIP, whatever the
 * pod still does (established ones keep their conntrack entry).
 */
export class KubeProxyView {
  readonly endpoints = new Map<string, ProxiedEndpoint>();
  /** Set when the rules could not be read (no nft, another proxy mode): the view then stays empty. */
  unavailable: string | undefined;
  polls = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly namespace: string,
    private readonly service: string,
    private readonly portName: string,
    private readonly intervalMs = 250,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The pod IPs kube-proxy sends new connections of this Service to, from the last poll. */
  current(): string[] {
    return [...this.endpoints.values()].filter((endpoint) => endpoint.goneAt === undefined).map((endpoint) => endpoint.ip);
  }

  async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const ips = await this.read();
      const at = Date.now();
      this.polls++;
      for (const ip of ips) {
        const known = this.endpoints.get(ip);
        if (!known || known.goneAt !== undefined) this.endpoints.set(ip, { ip, firstSeenAt: at, lastSeenAt: at });
        else known.lastSeenAt = at;
      }
      for (const endpoint of this.endpoints.values()) if (endpoint.goneAt === undefined && !ips.includes(endpoint.ip)) endpoint.goneAt = at;
    } catch (err) {
      this.unavailable = (err as Error).message;
    } finally {
      this.busy = false;
    }
  }

  private async read(): Promise<string[]> {
    const { stdout } = await execFileAsync('nft', ['list', 'table', 'ip', 'kube-proxy'], { maxBuffer: 64 * 1024 * 1024 });
    return endpointsOf(stdout, `${this.namespace}/${this.service}/tcp/${this.portName}`);
  }
}

/**
 * The endpoint IPs a Service port's chain sends new connections to, from `nft list table ip
 * kube-proxy`. kube-proxy writes one of three forms there (pkg/proxy/nftables/proxier.go):
 * `dnat to IP:PORT` (one endpoint), `dnat ip addr . port to numgen random mod N map { 0 :
 * IP . PORT, ... }` (several), or, with session affinity, jumps to per-endpoint chains named
 * `endpoint-<hash>-<ns>/<svc>/tcp/<port>__IP/PORT`.
 */
export function endpointsOf(ruleset: string, servicePort: string): string[] {
  const lines = ruleset.split('\n');
  const start = lines.findIndex((line) => line.trim().startsWith('chain service-') && line.trim().endsWith(`-${servicePort} {`));
  if (start < 0) return [];
  const ips = new Set<string>();
  for (const line of lines.slice(start + 1)) {
    if (/^\s*}/.test(line)) break;
    for (const match of line.matchAll(/(\d+\.\d+\.\d+\.\d+)(?: \. |:)\d+\b/g)) ips.add(match[1]!);
    for (const match of line.matchAll(/__(\d+\.\d+\.\d+\.\d+)\/\d+/g)) ips.add(match[1]!);
  }
  return [...ips];
}
