import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import pino from 'pino';
import { Registry } from 'prom-client';
import { temporaryDir } from '../../../test/helpers/client.js';
import { GitlabApiFixture } from '../../../test/helpers/gitlabApi.js';
import { Metrics } from '../../monitoring/metrics.js';
import { ApiError, GitlabApiClient, type ApiClientOptions } from './apiClient.js';

const SECRET = '  s3cret-with-spaces\n';
const log = pino({ level: 'silent' });

function metrics(): Metrics {
  return new Metrics(new Registry(), { lifecycleState: () => 'ready', drainSeconds: () => undefined, bytes: () => ({ received: 0, sent: 0 }) }, 'test');
}

function client(overrides: Partial<ApiClientOptions> & Pick<ApiClientOptions, 'gitlabUrl'>): GitlabApiClient {
  return new GitlabApiClient({ relativeUrlRoot: '', secret: SECRET, readTimeoutMs: 5_000, userAgent: 'git-sshd/test', log, metrics: metrics(), backoffMs: 10, ...overrides });
}

const call = { signal: new AbortController().signal, correlationId: 'corr-1' };

describe('GitlabApiClient', () => {
  const fixture = new GitlabApiFixture(SECRET);
  before(() => fixture.start());
  after(() => fixture.stop());

  test('signs each request with a fresh JWT from the trimmed secret and sends the correlation id', async () => {
    const api = client({ gitlabUrl: fixture.url });
    fixture.handlers['/api/v4/internal/check'] = () => ({ status: 200, body: { ok: true } });
    assert.deepEqual(await api.get('/check', call), { ok: true });
    const [req] = fixture.to('/check');
    assert.equal(req!.jwtError, undefined);
    assert.equal(req!.requestId, 'corr-1');
    assert.equal(req!.userAgent, 'git-sshd/test');
    api.close();
  });

  test('a 4xx other than 400 is a policy error carrying GitLab\'s message; 400 and redirects are system errors', async () => {
    const api = client({ gitlabUrl: fixture.url });
    const replies: Record<string, { status: number; body: unknown; headers?: Record<string, string> }> = {
      '/p403': { status: 403, body: { message: 'Access denied' } },
      '/p404empty': { status: 404, body: {} },
      '/p400': { status: 400, body: { message: 'bad' } },
      '/p302': { status: 302, body: '', headers: { Location: 'http://elsewhere/' } },
      '/p401text': { status: 401, body: 'nope' },
      '/notjson': { status: 200, body: 'not json' },
    };
    for (const [path, reply] of Object.entries(replies)) fixture.handlers[`/api/v4/internal${path}`] = () => reply;
    const failure = async (path: string): Promise<ApiError> => {
      try {
        await api.get(path, call);
      } catch (err) {
        assert.ok(err instanceof ApiError, String(err));
        return err;
      }
      throw new Error(`${path} did not fail`);
    };
    assert.deepEqual([(await failure('/p403')).errorClass, (await failure('/p403')).message], ['policy', 'Access denied']);
    assert.equal((await failure('/p404empty')).message, '');
    assert.equal((await failure('/p400')).errorClass, 'system');
    const redirect = await failure('/p302');
    assert.equal(redirect.errorClass, 'system');
    assert.match(redirect.message, /Internal API returned redirect \(302\) to "http:\/\/elsewhere\/"/);
    assert.equal((await failure('/p401text')).message, 'Internal API error (401)');
    assert.equal((await failure('/notjson')).message, 'parsing failed');
    api.close();
  });

  test('429 and 5xx are retried with backoff (Retry-After honoured); 501 is not; three attempts at most', async () => {
    const api = client({ gitlabUrl: fixture.url });
    fixture.handlers['/api/v4/internal/flaky'] = () => ({ status: 200, body: { ok: 1 } });
    fixture.queued.set('/api/v4/internal/flaky', [
      { status: 429, body: {}, headers: { 'Retry-After': '1' } },
      { status: 502, body: {} },
    ]);
    const started = Date.now();
    assert.deepEqual(await api.get('/flaky', call), { ok: 1 });
    assert.equal(fixture.to('/flaky').length, 3);
    // The backoff is 10 ms here: only Retry-After makes the client wait a second. A lower
    // bound, which a slow machine cannot break.
    assert.ok(Date.now() - started >= 900, `waited ${Date.now() - started} ms`);
    fixture.handlers['/api/v4/internal/n501'] = () => ({ status: 501, body: { message: 'no such endpoint' } });
    await assert.rejects(api.get('/n501', call), ApiError);
    assert.equal(fixture.to('/n501').length, 1);
    fixture.handlers['/api/v4/internal/down'] = () => ({ status: 503, body: {} });
    await assert.rejects(api.get('/down', call), (err: ApiError) => err.message === 'Internal API unreachable' && err.errorClass === 'system');
    assert.equal(fixture.to('/down').length, 3);
    api.close();
  });

  test('an unreachable API fails as a system error; an aborted caller stops the retries at once', { timeout: 60_000 }, async () => {
    // An hour of backoff: only the abort can end the retries within the test's timeout.
    const api = client({ gitlabUrl: 'http://127.0.0.1:9', backoffMs: 3_600_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(api.get('/x', { signal: controller.signal, correlationId: 'c' }), (err: ApiError) => err.errorClass === 'system' && err.message === 'Internal API unreachable');
    api.close();
  });

  test('basic auth from http_settings is sent only when user and password are both set', async () => {
    let seen: string | undefined = 'unset';
    const app = express();
    app.use((req, res) => {
      seen = req.header('Authorization');
      res.json({});
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await client({ gitlabUrl: url, basicAuth: { user: 'u', password: 'p' } }).get('/a', call);
    assert.equal(seen, `Basic ${Buffer.from('u:p').toString('base64')}`);
    await client({ gitlabUrl: url, basicAuth: { user: 'u', password: '' } }).get('/a', call);
    assert.equal(seen, undefined);
    server.closeAllConnections();
    server.close();
  });

  test('http+unix:// reaches GitLab over its Workhorse socket, with the relative URL root', async () => {
    const socket = join(temporaryDir('git-sshd-sock-'), 'gitlab-workhorse.socket');
    let path = '';
    const app = express();
    app.use((req, res) => {
      path = req.originalUrl;
      res.json({ via: 'socket' });
    });
    const server = app.listen(socket);
    await once(server, 'listening');
    const api = client({ gitlabUrl: `http+unix://${encodeURIComponent(socket)}`, relativeUrlRoot: '/gitlab/' });
    assert.deepEqual(await api.get('/discover', { ...call }), { via: 'socket' });
    assert.equal(path, '/gitlab/api/v4/internal/discover');
    api.close();
    server.closeAllConnections();
    server.close();
  });

  test('https with http_settings.ca_file trusts a private CA', async () => {
    const dir = temporaryDir('git-sshd-tls-');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end('{"tls":true}');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const trusting = client({ gitlabUrl: url, caFile: join(dir, 'cert.pem') });
    assert.deepEqual(await trusting.get('/x', call), { tls: true });
    const untrusting = client({ gitlabUrl: url, attempts: 1 });
    await assert.rejects(untrusting.get('/x', call), (err: ApiError) => err.errorClass === 'system');
    trusting.close();
    untrusting.close();
    server.closeAllConnections();
    server.close();
  });
});
