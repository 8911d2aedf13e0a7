import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import express from 'express';
import type { Registry } from 'prom-client';
import type { ListenAddress } from '../config/types.js';
import { METRICS_PATH } from '../config/schema.js';
import { ERR_MONITORING, GitSshdError } from '../errors.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { Logger } from '../logging/logger.js';

export interface MonitoringServerOptions {
  readonly address: ListenAddress;
  readonly readinessPath: string;
  readonly livenessPath: string;
  readonly lifecycle: Lifecycle;
  readonly registry: Registry;
  readonly log: Logger;
  /** Told of every request to the readiness or liveness path (the kubelet's are counted apart). */
  readonly onProbe?: (probe: Probe, code: number, client: ProbeClient) => void;
}

export type Probe = 'readiness' | 'liveness';
export type ProbeClient = 'kubelet' | 'other';

/** The kubelet's HTTP probes say `User-Agent: kube-probe/<major>.<minor>`. */
function probeClient(userAgent: string | undefined): ProbeClient {
  return userAgent?.startsWith('kube-probe/') ? 'kubelet' : 'other';
}

/**
 * The HTTP side for the orchestrator and Prometheus: liveness (200 while the process
 * runs, draining included), readiness (200 only when ready, 502 otherwise, so that a load
 * balancer stops sending the moment a drain begins) and /metrics.
 */
export class MonitoringServer {
  private readonly options: MonitoringServerOptions;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(options: MonitoringServerOptions) {
    this.options = options;
    const app = express();
    app.disable('x-powered-by');
    app.disable('etag');
    app.get(options.livenessPath, (req, res) => {
      options.onProbe?.('liveness', 200, probeClient(req.get('user-agent')));
      res.type('text/plain').send('ok\n');
    });
    app.get(options.readinessPath, (req, res) => {
      const state = options.lifecycle.state;
      const code = state === 'ready' ? 200 : 502;
      options.onProbe?.('readiness', code, probeClient(req.get('user-agent')));
      res.status(code).type('text/plain').send(`${state}\n`);
    });
    app.get(METRICS_PATH, (_req, res, next) => {
      options.registry.metrics().then((body) => {
        res.type(options.registry.contentType).send(body);
      }, next);
    });
    app.use((_req, res) => {
      res.status(404).type('text/plain').send('not found\n');
    });
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      options.log.error({ err }, 'monitoring request failed');
      res.status(500).type('text/plain').send('internal error\n');
    });
    this.server = createServer(app);
    // Probes must answer fast even when a scraper holds connections open.
    this.server.keepAliveTimeout = 5000;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 10_000;
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  listen(): Promise<AddressInfo> {
    const { host, port } = this.options.address;
    const shown = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new GitSshdError(ERR_MONITORING, `cannot listen on sshd.web_listen ${shown}: ${err.code ?? err.message}`, { cause: err }));
      };
      this.server.once('error', onError);
      this.server.listen({ host: host === '' ? undefined : host, port }, () => {
        this.server.removeListener('error', onError);
        this.server.on('error', (err) => this.options.log.error({ err }, 'monitoring server error'));
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops at once: by now the probes have said what they had to. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }
}
