import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gitLocal, makeKey, makeWorkTree, run, sshCommand, temporaryDir, type ClientKey } from './helpers/client.js';
import { startHaproxy, startNginxStream, type LoadBalancer } from './helpers/loadBalancers.js';
import { v1Header, v2Header, v2Local } from './helpers/proxyHeaders.js';
import { adminUsers, TestServer, type LogLine } from './helpers/server.js';

/** Loopback has all of 127/8: the load balancer and the client each get an address of their own. */
const LB_IP = '127.0.0.3';
const CLIENT_IP = '127.0.0.5';
const REPO = 'team/app.git';

type Policy = 'use' | 'require' | 'ignore' | 'reject';
type Seen = 'client' | 'load balancer' | 'refused';

/** A server whose data dir already holds team/app.git, so that no push is needed first. */
async function startWithRepo(key: ClientKey, sshd: Record<string, unknown>): Promise<TestServer> {
  const dir = temporaryDir('git-sshd-test-');
  mkdirSync(join(dir, 'data', 'repos', 'team'), { recursive: true });
  gitLocal(['clone', '-q', '--bare', makeWorkTree(), join(dir, 'data', 'repos', REPO)]);
  return TestServer.start({ dir, users: adminUsers(key), config: { sshd: { proxy_protocol: true, ...sshd } } });
}

/** `git clone` through a port, the ssh client bound to `sourceIp`. */
function cloneThrough(key: ClientKey, port: number, sourceIp = CLIENT_IP) {
  return run('git', ['clone', '-q', `ssh://git@127.0.0.1:${port}/${REPO}`, join(temporaryDir('git-sshd-clone-'), 'app')], {
    env: { GIT_SSH_COMMAND: `${sshCommand(key, port)} -b ${sourceIp}`, GIT_CONFIG_NOSYSTEM: '1', HOME: process.env.HOME ?? '/tmp' },
    timeoutMs: 600_000,
  });
}

function expectedSeen(policy: Policy, header: boolean): Seen {
  if (policy === 'reject') return header ? 'refused' : 'load balancer';
  if (policy === 'require') return header ? 'client' : 'refused';
  if (policy === 'ignore') return 'load balancer';
  return header ? 'client' : 'load balancer';
}

const refusalReason: Record<'require' | 'reject', string> = { require: 'proxy_header_missing', reject: 'proxy_header_not_allowed' };

describe('PROXY protocol behind HAProxy: every policy x header present/absent x allowed/not-allowed source', { concurrency: 3 }, () => {
  const key = makeKey();
  const allowedLists = [
    { name: 'no allowed list', allowed: [] as string[] },
    { name: 'the load balancer allowed', allowed: [`${LB_IP}/32`] },
    { name: 'the load balancer not allowed', allowed: ['10.0.0.0/8', '::1'] },
  ];
  for (const { name, allowed } of allowedLists) {
    for (const policy of ['use', 'require', 'ignore', 'reject'] as const) {
      // gitlab-sshd's rule: a non-empty list decides alone, listed sources `use`, others `reject`.
      const effective: Policy = allowed.length === 0 ? policy : allowed[0]!.startsWith(LB_IP) ? 'use' : 'reject';
      test(`policy ${policy}, ${name}: v1 and v2 headers -> ${expectedSeen(effective, true)}, no header -> ${expectedSeen(effective, false)}`, async () => {
        const server = await startWithRepo(key, { proxy_policy: policy.toUpperCase(), proxy_allowed: allowed });
        let lb: LoadBalancer | undefined;
        try {
          lb = await startHaproxy(server.port, LB_IP, [
            { name: 'v1', sendProxy: 'send-proxy' },
            { name: 'v2', sendProxy: 'send-proxy-v2' },
            { name: 'plain', sendProxy: '' },
          ]);
          for (const frontend of ['v1', 'v2', 'plain'] as const) {
            const expected = expectedSeen(effective, frontend !== 'plain');
            const mark = server.mark();
            const clone = await cloneThrough(key, lb.ports[frontend]!);
            if (expected === 'refused') {
              assert.notEqual(clone.code, 0, `${frontend}: the clone must fail`);
              const refusal = await server.waitForLogSince(mark, (line) => line.msg === 'connection refused: PROXY protocol');
              assert.equal(refusal.reason, refusalReason[effective as 'require' | 'reject'], frontend);
              assert.equal(refusal.remote_ip, LB_IP, `${frontend}: a refusal names the peer that sent (or did not send) the header`);
              continue;
            }
            assert.equal(clone.code, 0, `${frontend}: ${clone.stderr}`);
            const running = await server.waitForLogSince(mark, (line) => line.msg === 'running git');
            // This clone's end: the one before may still be logging its own after the mark.
            const summary = await server.waitForLogSince(mark, (line) => line.msg === 'connection closed' && line.correlation_id === running.correlation_id);
            for (const line of [summary, running] as LogLine[]) {
              if (expected === 'client') {
                assert.equal(line.remote_ip, CLIENT_IP, `${frontend}: ${line.msg} names the client`);
                assert.equal(line.proxy_ip, LB_IP, `${frontend}: ${line.msg} names the load balancer too`);
              } else {
                assert.equal(line.remote_ip, LB_IP, `${frontend}: ${line.msg} names the load balancer`);
                assert.equal(line.proxy_ip, undefined);
              }
            }
          }
          const count = (result: string) => server.metric('git_sshd_proxy_headers_total', `{result="${result}"}`);
          if (effective === 'use' || effective === 'require') {
            assert.equal(await count('v1'), 1);
            assert.equal(await count('v2'), 1);
          }
          if (effective === 'ignore') assert.equal(await count('ignored'), 2);
          if (effective !== 'require') assert.equal(await count('absent'), 1);
          if (effective === 'require' || effective === 'reject') {
            const refusals = await server.metric('git_sshd_connections_rejected_total', `{reason="${refusalReason[effective]}"}`);
            assert.equal(refusals, effective === 'require' ? 1 : 2);
          }
        } finally {
          await lb?.stop();
          await server.dispose();
        }
      });
    }
  }
});

describe('PROXY protocol with real peers', () => {
  const key = makeKey();
  let server: TestServer;

  before(async () => {
    server = await startWithRepo(key, { proxy_policy: 'use' });
  });
  after(() => server.dispose());

  test('nginx stream with proxy_protocol on (v1): the clone works and the client address is logged', async () => {
    const nginx = await startNginxStream(server.port, '127.0.0.4');
    try {
      const mark = server.mark();
      const clone = await cloneThrough(key, nginx.ports.stream!, '127.0.0.6');
      assert.equal(clone.code, 0, clone.stderr);
      const running = await server.waitForLogSince(mark, (line) => line.msg === 'running git');
      const summary = await server.waitForLogSince(mark, (line) => line.msg === 'connection closed' && line.correlation_id === running.correlation_id);
      assert.equal(summary.remote_ip, '127.0.0.6');
      assert.equal(summary.proxy_ip, '127.0.0.4');
    } finally {
      await nginx.stop();
    }
  });

  test('per-source limits count the address from the header, not the load balancer', async () => {
    const limited = await startWithRepo(key, { proxy_policy: 'use', per_source_max_startups: 1, login_grace_time: '20s' });
    const lb = await startHaproxy(limited.port, LB_IP, [{ name: 'v2', sendProxy: 'send-proxy-v2' }]);
    const held: Socket[] = [];
    /** A TCP connection through HAProxy that never authenticates: it holds one startup slot. */
    const hold = async (sourceIp: string): Promise<Socket> => {
      const socket = connect({ port: lb.ports.v2!, host: '127.0.0.1', localAddress: sourceIp });
      socket.on('error', () => undefined);
      held.push(socket);
      await once(socket, 'connect');
      return socket;
    };
    try {
      const mark = limited.mark();
      const first = await hold('127.0.0.7');
      // The server's banner coming back means the first connection holds its slot.
      await once(first, 'data');
      await hold('127.0.0.7');
      const refusal = await limited.waitForLogSince(mark, (line) => line.msg === 'connection refused: too many unauthenticated connections');
      assert.equal(refusal.remote_ip, '127.0.0.7');
      assert.equal(refusal.reason, 'per_source_max_startups');
      // Another client behind the same load balancer is not held back by it.
      const other = await hold('127.0.0.8');
      const [banner] = (await once(other, 'data')) as [Buffer];
      assert.match(banner.toString('latin1'), /^SSH-2\.0-git-sshd/);
    } finally {
      for (const socket of held) socket.destroy();
      await lb.stop();
      await limited.dispose();
    }
  });

  test('ssh-keyscan, which waits for the server to speak first, gets the keys from a `use` listener without a proxy', async () => {
    // keyscan says nothing until the server has: the keys mean the header wait ended and the
    // server spoke first. (-T 60: patience for a loaded machine, not a speed test.)
    const scan = await run('ssh-keyscan', ['-T', '60', '-p', String(server.port), '127.0.0.1']);
    assert.match(scan.stdout, /ssh-ed25519 AAAA/);
    assert.match(scan.stdout, /ecdsa-sha2-nistp256 AAAA/);
    const waited = await server.metric('git_sshd_proxy_header_wait_seconds_count', '{result="absent"}');
    assert.ok((waited ?? 0) >= 1);
  });

  test('a v2 LOCAL header (a load balancer health check) is served with the socket address', async () => {
    const socket = connect(server.port, '127.0.0.1');
    socket.on('error', () => undefined);
    try {
      await once(socket, 'connect');
      socket.write(v2Local());
      const [banner] = (await once(socket, 'data')) as [Buffer];
      assert.match(banner.toString('latin1'), /^SSH-2\.0-git-sshd/);
      assert.equal(await server.metric('git_sshd_proxy_headers_total', '{result="local"}'), 1);
    } finally {
      socket.destroy();
    }
  });

  test('bad headers are refused with their reason logged and counted, and the next client is served', async () => {
    const cases: Array<{ name: string; reason: string; send: (socket: Socket) => void }> = [
      { name: 'malformed v1', reason: 'proxy_header_malformed', send: (s) => s.write('PROXY TCP4 192.0.2.1 nonsense 1 2\r\n') },
      { name: 'malformed v2', reason: 'proxy_header_malformed', send: (s) => s.write(Buffer.concat([v2Header('192.0.2.1', 1).subarray(0, 13), Buffer.from([0x71, 0, 12])])) },
      { name: 'oversized v1', reason: 'proxy_header_oversized', send: (s) => s.write(`PROXY TCP4 ${'9'.repeat(200)}`) },
      { name: 'oversized v2', reason: 'proxy_header_oversized', send: (s) => s.write(Buffer.concat([v2Header('192.0.2.1', 1).subarray(0, 14), Buffer.from([0xff, 0xff])])) },
      { name: 'truncated', reason: 'proxy_header_truncated', send: (s) => s.end(v1Header('192.0.2.1', 1).subarray(0, 20)) },
      { name: 'slow', reason: 'proxy_header_timeout', send: (s) => s.write(v1Header('192.0.2.1', 1).subarray(0, 20)) },
    ];
    const tally = new Map<string, number>();
    for (const { name, reason, send } of cases) {
      const mark = server.mark();
      const socket = connect(server.port, '127.0.0.1');
      socket.on('error', () => undefined);
      // Listened for before anything is sent: the close may come before the log line is read.
      const closed = once(socket, 'close');
      await once(socket, 'connect');
      send(socket);
      const refusal = await server.waitForLogSince(mark, (line) => line.msg === 'connection refused: PROXY protocol');
      assert.equal(refusal.reason, reason, name);
      assert.equal(refusal.level, 'warn');
      await closed;
      tally.set(reason, (tally.get(reason) ?? 0) + 1);
    }
    for (const [reason, expected] of tally) {
      assert.equal(await server.metric('git_sshd_connections_rejected_total', `{reason="${reason}"}`), expected, reason);
    }
    const clone = await cloneThrough(key, server.port, '127.0.0.1');
    assert.equal(clone.code, 0, clone.stderr);
  });

  test('a connection still waiting for its header at SIGTERM is served within the grace period, not cut', async () => {
    const draining = await startWithRepo(key, { proxy_policy: 'use', proxy_header_timeout: '3s', grace_period: '10s' });
    const socket = connect(draining.port, '127.0.0.1');
    socket.on('error', () => undefined);
    try {
      await once(socket, 'connect');
      const header = v1Header('192.0.2.44', 4444);
      socket.write(header.subarray(0, 10));
      const mark = draining.mark();
      draining.child.kill('SIGTERM');
      await draining.waitForLogSince(mark, (line) => line.msg === 'draining');
      socket.write(Buffer.concat([header.subarray(10), Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')]));
      const [banner] = (await once(socket, 'data')) as [Buffer];
      assert.match(banner.toString('latin1'), /^SSH-2\.0-git-sshd/);
      socket.destroy();
      const stopped = await draining.waitForLogSince(mark, (line) => line.msg === 'stopped');
      assert.equal(stopped.connections_at_signal, 1, 'the waiting connection counts as open at the signal');
      assert.equal(await draining.exited, 0);
    } finally {
      socket.destroy();
      await draining.dispose();
    }
  });
});

