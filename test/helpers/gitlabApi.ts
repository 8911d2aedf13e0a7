import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Request, type Response } from 'express';
import { jwtVerify } from 'jose';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, unknown>;
  readonly body: Record<string, unknown>;
  readonly requestId: string | undefined;
  readonly userAgent: string | undefined;
  readonly claims: Record<string, unknown> | undefined;
  /** Why the JWT was refused, when it was. */
  readonly jwtError: string | undefined;
}

export interface FixtureUser {
  readonly keyId: number;
  readonly userId: number;
  readonly username: string;
}

export type Reply = { readonly status: number; readonly body: unknown; readonly headers?: Record<string, string> };

/**
 * GitLab's internal API as gitlab-shell's own tests model it (fixture responses after its
 * testdata/testroot/responses): verifies the Gitlab-Shell-Api-Request JWT of every request
 * and records every request. Each endpoint answers from `handlers`, which a test may swap.
 */
export class GitlabApiFixture {
  readonly requests: RecordedRequest[] = [];
  readonly users = new Map<string, FixtureUser>();
  /** Replies served before the handler, per path, in order (to inject 503s). */
  readonly queued = new Map<string, Reply[]>();
  handlers: Record<string, (req: RecordedRequest) => Reply> = {};
  port = 0;
  /** The address it listens on: loopback, or (Kubernetes suite) the pod bridge's gateway. */
  host = '127.0.0.1';
  private server: Server | undefined;

  constructor(readonly secret: string) {
    this.handlers = {
      '/api/v4/internal/authorized_keys': (req) => {
        const user = this.users.get(String(req.query.key));
        return user ? { status: 200, body: { id: user.keyId, key: req.query.key } } : { status: 404, body: { message: 'Not found' } };
      },
      '/api/v4/internal/discover': (req) => {
        const user = [...this.users.values()].find((u) => String(u.keyId) === String(req.query.key_id));
        return { status: 200, body: user ? { id: user.userId, name: user.username, username: user.username } : { id: null } };
      },
      '/api/v4/internal/allowed': () => ({ status: 403, body: { status: false, message: 'Disallowed by API call' } }),
      '/api/v4/internal/lfs_authenticate': (req) => ({
        status: 200,
        body: { username: 'alice', lfs_token: 'lfs-token-1', repository_http_path: `http://gitlab.example/${String(req.body.project).replace(/\.git$/, '')}.git`, expires_in: 7200 },
      }),
      '/api/v4/internal/two_factor_recovery_codes': () => ({ status: 200, body: { success: true, recovery_codes: ['1', '2', '3'] } }),
      '/api/v4/internal/two_factor_manual_otp_check': (req) =>
        req.body.otp_attempt === '123456' ? { status: 200, body: { success: true } } : { status: 200, body: { success: false, message: 'Invalid OTP' } },
      '/api/v4/internal/two_factor_push_otp_check': () => ({ status: 200, body: { success: false, message: 'no push' } }),
      '/api/v4/internal/personal_access_token': (req) => ({
        status: 200,
        body: { success: true, token: 'glpat-fixture', scopes: req.body.scopes ?? [], expires_at: req.body.expires_at ?? null },
      }),
    };
  }

  async start(options: { host?: string } = {}): Promise<void> {
    const app = express();
    app.use(express.json());
    app.use((req, res) => void this.handle(req, res));
    this.host = options.host ?? '127.0.0.1';
    this.server = app.listen(0, this.host);
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** Requests to one endpoint (path without the /api/v4/internal prefix). */
  to(path: string): RecordedRequest[] {
    return this.requests.filter((req) => req.path === `/api/v4/internal${path}`);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(req: Request, res: Response): Promise<void> {
    let claims: Record<string, unknown> | undefined;
    let jwtError: string | undefined;
    try {
      const token = req.header('Gitlab-Shell-Api-Request') ?? '';
      const verified = await jwtVerify(token, new TextEncoder().encode(this.secret.trim()), { issuer: 'gitlab-shell', algorithms: ['HS256'] });
      claims = verified.payload as Record<string, unknown>;
      if (Number(claims.exp) - Number(claims.iat) !== 60) jwtError = 'exp is not iat + 60';
    } catch (err) {
      jwtError = (err as Error).message;
    }
    const recorded: RecordedRequest = {
      method: req.method,
      path: req.path,
      query: { ...req.query },
      body: (req.body as Record<string, unknown>) ?? {},
      requestId: req.header('X-Request-Id'),
      userAgent: req.header('User-Agent'),
      claims,
      jwtError,
    };
    this.requests.push(recorded);
    if (jwtError) {
      res.status(401).json({ message: '401 Unauthorized' });
      return;
    }
    const queue = this.queued.get(req.path);
    const reply = queue?.shift() ?? this.handlers[req.path]?.(recorded) ?? { status: 404, body: { message: '404 Not Found' } };
    res.status(reply.status).set(reply.headers ?? {});
    if (typeof reply.body === 'string') res.type('text/plain').send(reply.body);
    else res.json(reply.body);
  }
}

/** A successful /allowed answer in the shape of gitlab-shell's allowed.json fixture. */
export function allowedReply(options: { relativePath: string; projectPath: string; userId: number; username: string; consoleMessages?: string[] }): Reply {
  return {
    status: 200,
    body: {
      status: true,
      gl_repository: 'project-26',
      gl_project_path: options.projectPath,
      gl_id: `user-${options.userId}`,
      gl_key_type: 'key',
      gl_key_id: 1,
      gl_username: options.username,
      git_config_options: ['receive.MaxInputSize=1000000'],
      git_protocol: 'protocol',
      gl_console_messages: options.consoleMessages ?? [],
      gitaly: {
        repository: {
          storage_name: 'default',
          relative_path: options.relativePath,
          git_object_directory: '',
          git_alternate_object_directories: [],
          gl_repository: 'project-26',
          gl_project_path: options.projectPath,
        },
        address: 'unix:gitaly.socket',
        token: 'token',
        features: {},
      },
    },
  };
}
