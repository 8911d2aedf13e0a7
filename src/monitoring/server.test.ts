import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { memoryLogger } from '../../test/helpers/memoryLogger.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import { Metrics } from './metrics.js';
import { MonitoringServer } from './server.js';

describe('the monitoring server', () => {
  const lifecycle = new Lifecycle();
  const metrics = new Metrics(new Registry(), { lifecycleState: () => lifecycle.state, drainSeconds: () => undefined, bytes: () => ({ received: 0, sent: 0 }) }, '0.0.0-test');
  const server = new MonitoringServer({
    address: { host: '127.0.0.1', port: 0 },
    readinessPath: '/start',
    livenessPath: '/health',
    lifecycle,
    registry: metrics.registry,
    log: memoryLogger().log,
    onProbe: (probe, code, client) => metrics.probeRequests.inc({ probe, code, client }),
  });
  after(() => server.close());

  test("counts probe requests by answer, and the kubelet's (User-Agent kube-probe/...) apart", async () => {
    const { port } = await server.listen();
    const get = async (path: string, userAgent: string): Promise<number> => (await fetch(`http://127.0.0.1:${port}${path}`, { headers: { 'user-agent': userAgent } })).status;
    assert.equal(await get('/start', 'kube-probe/1.37'), 502, 'not ready while starting');
    lifecycle.moveTo('ready');
    assert.equal(await get('/start', 'kube-probe/1.37'), 200);
    assert.equal(await get('/start', 'curl/8.0'), 200);
    assert.equal(await get('/health', 'kube-probe/1.37'), 200);
    assert.equal(await get('/metrics', 'kube-probe/1.37'), 200);
    const body = await metrics.registry.getSingleMetricAsString('git_sshd_probe_requests_total');
    const count = (labels: string): number => Number(new RegExp(`^git_sshd_probe_requests_total\\{${labels}\\} (\\d+)$`, 'm').exec(body)?.[1] ?? 0);
    assert.equal(count('probe="readiness",code="502",client="kubelet"'), 1);
    assert.equal(count('probe="readiness",code="200",client="kubelet"'), 1);
    assert.equal(count('probe="readiness",code="200",client="other"'), 1);
    assert.equal(count('probe="liveness",code="200",client="kubelet"'), 1);
    assert.equal(body.split('\n').filter((line) => line.startsWith('git_sshd_probe_requests_total{')).length, 4, 'a scrape is no probe');
  });
});
