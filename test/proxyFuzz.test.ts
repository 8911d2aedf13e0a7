import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { git, makeKey, makeWorkTree, url } from './helpers/client.js';
import { mutate, seededRandom, SEEDS } from './helpers/mutate.js';
import { adminUsers, TestServer } from './helpers/server.js';
import { waitUntil } from './helpers/wait.js';

const SEED = Number(process.env.FUZZ_SEED ?? 4242);
const CONNECTIONS = Number(process.env.FUZZ_CONNECTIONS ?? 600);
const PARALLEL = 40;

/** Sends one input and waits (bounded) for the server to close or answer. */
function probe(port: number, input: Buffer, endAfterWrite: boolean): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    socket.on('error', done);
    socket.on('close', done);
    socket.on('connect', () => {
      if (endAfterWrite) socket.end(input);
      else socket.write(input);
      // Inputs that leave the server waiting (an incomplete header, then the SSH login) are
      // cut here; the server has the bytes already, however slowly it gets to them.
      timer = setTimeout(done, 300);
    });
  });
}

async function round(port: number, random: () => number, count: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const input = i % 10 === 0 ? Buffer.from(Array.from({ length: Math.floor(random() * 80) }, () => Math.floor(random() * 256))) : mutate(random, SEEDS[i % SEEDS.length]!);
      await probe(port, input, random() < 0.3);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}

function rssKiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((text) => text.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN);
}

describe(`PROXY header path under ${CONNECTIONS} mutated and random headers per round (seed ${SEED})`, { timeout: 15 * 60_000 }, () => {
  const key = makeKey();
  let server: TestServer;

  before(async () => {
    server = await TestServer.start({
      users: adminUsers(key),
      // The login grace time bounds how long a fuzz connection may linger, yet leaves an
      // OpenSSH client on a busy machine time to log in for the git checks.
      config: { log_level: 'info', sshd: { proxy_protocol: true, proxy_header_timeout: '200ms', login_grace_time: '15s', max_startups: '200:30:400' } },
    });
    const push = await git(key, server.port, ['push', '-q', url(server.port, 'fuzz/app.git'), 'HEAD:main'], makeWorkTree());
    assert.equal(push.code, 0, push.stderr);
  });
  after(() => server?.dispose());

  test('no crash, no hang, every socket released, memory flat between rounds, and git still works', async () => {
    const random = seededRandom(SEED);
    const pid = server.child.pid!;
    const socketsBefore = await server.metric('nodejs_active_handles', '{type="Socket"}');
    await round(server.port, random, CONNECTIONS);
    const afterFirst = rssKiB(pid);
    await round(server.port, random, CONNECTIONS);
    const afterSecond = rssKiB(pid);

    // Everything the fuzzer opened is gone on the server's side too (bounded by the login grace time).
    await waitUntil('no connection left open on the server', async () => (await server.metric('gitlab_shell_sshd_in_flight_connections')) === 0, 60_000, 100);
    const socketsAfter = await server.metric('nodejs_active_handles', '{type="Socket"}');
    assert.ok(socketsAfter !== undefined && socketsBefore !== undefined && socketsAfter <= socketsBefore + 2, `socket handles: ${socketsBefore} before, ${socketsAfter} after`);
    assert.equal(server.child.exitCode, null, 'the server is still running');

    // A connection's socket and buffers kept alive (tens of KiB each) would exceed this slack;
    // smaller leaks are for the socket-handle count above to catch.
    const growth = afterSecond - afterFirst;
    if (process.env.FUZZ_VERBOSE) console.log({ afterFirst, afterSecond, growth });
    assert.ok(growth < 24 * 1024, `RSS grew by ${growth} KiB over the second round of ${CONNECTIONS} connections`);

    const refused = ['malformed', 'oversized', 'timeout', 'truncated'].map((reason) => server.metric('git_sshd_connections_rejected_total', `{reason="proxy_header_${reason}"}`));
    const refusedTotal = (await Promise.all(refused)).reduce<number>((sum, value) => sum + (value ?? 0), 0);
    assert.ok(refusedTotal > CONNECTIONS / 10, `only ${refusedTotal} refusals counted`);

    const clone = await git(key, server.port, ['clone', '-q', url(server.port, 'fuzz/app.git'), `${server.dir}/clone`]);
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(server.logs.filter((line) => line.level === 'fatal' || line.level === 'error').length, 0, 'no errors logged');
  });
});
