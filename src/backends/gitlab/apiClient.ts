import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { SignJWT } from 'jose';
import { GitSshdError } from '../../errors.js';
import type { Logger } from '../../logging/logger.js';
import type { Metrics } from '../../monitoring/metrics.js';

export const ERR_API_POLICY = 'ERR_API_POLICY';
export const ERR_API_SYSTEM = 'ERR_API_SYSTEM';

/** What users read when GitLab cannot be reached or keeps failing (gitlab-shell's words). */
export const API_UNREACHABLE = 'Internal API unreachable';

/** An internal API failure. `policy`: GitLab said no (its message is the user's); `system`: ours. */
export class ApiError extends GitSshdError {
  readonly status: number;

  constructor(status: number, message: string, errorClass: 'policy' | 'system', cause?: unknown) {
    // GitLab down (no answer, or 5xx after the retries) is worth telling the user as such:
    // it is not their fault and retrying later helps. Other system errors stay generic.
    const unreachable = errorClass === 'system' && (status === 0 || status >= 500);
    super(errorClass === 'policy' ? ERR_API_POLICY : ERR_API_SYSTEM, message, { errorClass, cause, ...(unreachable ? { userMessage: API_UNREACHABLE } : {}) });
    this.name = 'ApiError';
    this.status = status;
  }
}

export interface ApiClientOptions {
  /** `http://`, `https://` or `http+unix://<url-encoded socket path>`. */
  readonly gitlabUrl: string;
  readonly relativeUrlRoot: string;
  readonly secret: string;
  readonly basicAuth?: { readonly user: string; readonly password: string };
  /** Per attempt. */
  readonly readTimeoutMs: number;
  readonly caFile?: string;
  /** Directories of PEM certificates (http_settings.ca_path, ssl_cert_dir). */
  readonly caDirs?: readonly string[];
  readonly userAgent: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Attempts per request (connection errors, 429 and 5xx other than 501 are retried). */
  readonly attempts?: number;
  /** First backoff; it doubles per attempt. */
  readonly backoffMs?: number;
}

export interface RequestOptions {
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  readonly signal: AbortSignal;
  readonly correlationId: string;
}

interface RawResponse {
  readonly status: number;
  readonly body: string;
  readonly retryAfter: string | undefined;
  readonly location: string | undefined;
}

const API_PREFIX = '/api/v4/internal';
/** Retry-After beyond this is not waited for: the user would rather see the error. */
const MAX_RETRY_AFTER_MS = 5_000;
const MAX_BODY_BYTES = 8 * 1024 * 1024;

/**
 * GitLab's internal API as gitlab-shell calls it: a fresh `Gitlab-Shell-Api-Request` JWT
 * (HS256, issuer gitlab-shell, 60 s) per request, the connection's correlation id as
 * X-Request-Id, bounded retries. Unlike gitlab-shell it keeps connections alive.
 */
export class GitlabApiClient {
  private readonly options: ApiClientOptions;
  private readonly secret: Uint8Array;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly base: { readonly origin: string; readonly socketPath?: string; readonly root: string };

  constructor(options: ApiClientOptions) {
    this.options = options;
    this.secret = new TextEncoder().encode(options.secret.trim());
    const root = options.relativeUrlRoot.replace(/^\/+|\/+$/g, '');
    if (options.gitlabUrl.startsWith('http+unix://')) {
      const socketPath = decodeURIComponent(options.gitlabUrl.slice('http+unix://'.length));
      this.base = { origin: 'http://unix', socketPath, root: root ? `/${root}` : '' };
      this.transport = http;
      this.agent = new http.Agent({ keepAlive: true });
    } else {
      const url = new URL(options.gitlabUrl);
      this.base = { origin: url.origin, root: url.pathname.replace(/\/+$/, '') };
      if (url.protocol === 'https:') {
        const extra = [...(options.caFile ? [readFileSync(options.caFile, 'utf8')] : []), ...certificatesIn(options.caDirs ?? [])];
        const ca = extra.length > 0 ? [...rootCertificates, ...extra] : undefined;
        this.transport = https;
        this.agent = new https.Agent({ keepAlive: true, ...(ca ? { ca } : {}) });
      } else {
        this.transport = http;
        this.agent = new http.Agent({ keepAlive: true });
      }
    }
  }

  get<T>(path: string, options: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, options);
  }

  post<T>(path: string, options: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, options);
  }

  close(): void {
    this.agent.destroy();
  }

  private async request<T>(method: 'GET' | 'POST', path: string, options: RequestOptions): Promise<T> {
    const attempts = this.options.attempts ?? 3;
    let backoff = this.options.backoffMs ?? 200;
    for (let attempt = 1; ; attempt += 1) {
      let response: RawResponse;
      try {
        response = await this.once(method, path, options);
      } catch (err) {
        if (options.signal.aborted || attempt >= attempts) throw new ApiError(0, API_UNREACHABLE, 'system', err);
        this.options.log.warn({ err, path, attempt }, 'internal API request failed; retrying');
        await sleep(backoff, options.signal);
        backoff *= 2;
        continue;
      }
      const retryable = response.status === 429 || (response.status >= 500 && response.status !== 501);
      if (retryable && attempt < attempts && !options.signal.aborted) {
        const wait = retryAfterMs(response.retryAfter) ?? backoff;
        this.options.log.warn({ path, status: response.status, attempt }, 'internal API answered with an error; retrying');
        await sleep(Math.min(wait, MAX_RETRY_AFTER_MS), options.signal);
        backoff *= 2;
        continue;
      }
      return this.interpret<T>(response, path);
    }
  }

  private interpret<T>(response: RawResponse, path: string): T {
    const { status } = response;
    if (status >= 300 && status < 400 && response.location !== undefined) {
      throw new ApiError(status, `Internal API returned redirect (${status}) to ${JSON.stringify(response.location)}`, 'system');
    }
    if (status >= 400) {
      const message = messageOf(response.body) ?? `Internal API error (${status})`;
      // 400 means we sent something GitLab cannot read: that is our failure, not the user's.
      const errorClass = status === 400 || status >= 500 ? 'system' : 'policy';
      if (errorClass === 'system') this.options.log.error({ path, status, message }, 'internal API error');
      throw new ApiError(status, status >= 500 ? API_UNREACHABLE : message, errorClass);
    }
    try {
      return JSON.parse(response.body) as T;
    } catch (err) {
      this.options.log.error({ path, status }, 'internal API answered with a body that is not JSON');
      throw new ApiError(status, 'parsing failed', 'system', err);
    }
  }

  private async once(method: string, path: string, options: RequestOptions): Promise<RawResponse> {
    const { metrics } = this.options;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer('gitlab-shell')
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(this.secret);
    const query = options.query ? `?${new URLSearchParams(options.query).toString()}` : '';
    const url = new URL(`${this.base.origin}${this.base.root}${API_PREFIX}${path}${query}`);
    const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'Gitlab-Shell-Api-Request': token,
      'User-Agent': this.options.userAgent,
      'X-Request-Id': options.correlationId,
      ...(body ? { 'Content-Length': String(body.length) } : {}),
    };
    const { basicAuth } = this.options;
    if (basicAuth && basicAuth.user !== '' && basicAuth.password !== '') {
      headers.Authorization = `Basic ${Buffer.from(`${basicAuth.user}:${basicAuth.password}`).toString('base64')}`;
    }
    metrics.httpInFlight.inc();
    const started = performance.now();
    let code = 'error';
    const cancelled = (): boolean => options.signal.aborted;
    try {
      const response = await new Promise<RawResponse>((resolve, reject) => {
        const req = this.transport.request(
          url,
          {
            method,
            headers,
            agent: this.agent,
            signal: AbortSignal.any([options.signal, AbortSignal.timeout(this.options.readTimeoutMs)]),
            ...(this.base.socketPath ? { socketPath: this.base.socketPath } : {}),
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size > MAX_BODY_BYTES) req.destroy(new Error('internal API response too large'));
              else chunks.push(chunk);
            });
            res.on('error', reject);
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                body: Buffer.concat(chunks).toString('utf8'),
                retryAfter: header(res.headers['retry-after']),
                location: header(res.headers.location),
              }),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      code = String(response.status);
      return response;
    } finally {
      metrics.httpInFlight.dec();
      // A request the caller gave up on (the client left, or the other 2FA check won) is not an error.
      if (code === 'error' && cancelled()) code = 'cancelled';
      metrics.httpRequests.inc({ code, method });
      metrics.httpRequestDuration.observe({ code, method }, (performance.now() - started) / 1000);
    }
  }
}

/** PEM files (*.pem, *.crt) in the directories; unreadable ones are skipped, as gitlab-shell does. */
export function certificatesIn(dirs: readonly string[]): string[] {
  const found: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.filter((entry) => /\.(pem|crt)$/i.test(entry))) {
      try {
        found.push(readFileSync(join(dir, name), 'utf8'));
      } catch {
        // Skipped.
      }
    }
  }
  return found;
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function messageOf(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const message = (parsed as { message?: unknown }).message;
      return typeof message === 'string' ? message : '';
    }
  } catch {
    // Not JSON: the caller words the error.
  }
  return undefined;
}

function retryAfterMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
