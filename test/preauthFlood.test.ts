import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, makeKey, makeWorkTree, run, sshCommand, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { adminUsers, type LogLine, TestServer } from './helpers/server.js';
import { waitUntil } from './helpers/wait.js';

/** Linux routes all of 127/8 on lo: one address for the attacker, another for the users. */
const ATTACKER = '127.0.0.2';
const USER = '127.0.0.3';
const FLOOD = 100;
const CLONES = 5;

type Kind = 'silent' | 'slow-banner' | 'garbage' | 'banner-then-silent';
const KINDS: readonly Kind[] = ['silent', 'silent', 'silent', 'silent', 'silent', 'silent', 'slow-banner', 'garbage', 'garbage', 'banner-then-silent'];

/**
 * Keeps FLOOD connections from ATTACKER open, replacing each one the server closes, until
 * stopped: silent ones, a banner dribbled a byte at a time, garbage and HTTP, a banner then
 * nothing. Every loop is bounded by the stop flag and by a cap on connections.
 */
function flood(port: number): { stop: () => Promise<number> } {
  let stopped = false;
  let opened = 0;
  const open = new Set<Socket>();
  const later = (ms: number, fn: () => void): void => void setTimeout(fn, ms);
  const one = (slot: number, round: number): Promise<void> =>
    new Promise((resolve) => {
      // The first hundred are all silent, so that they hold every slot at once; then the mix.
      const kind = round === 0 ? 'silent' : KINDS[(slot + round) % KINDS.length]!;
      opened += 1;
      const socket = connect({ host: '127.0.0.1', port, localAddress: ATTACKER });
      open.add(socket);
      socket.on('error', () => undefined);
      socket.on('data', () => undefined);
      socket.on('connect', () => {
        if (kind === 'garbage') socket.write(slot % 2 === 0 ? 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' : Buffer.alloc(64, 0xff));
        if (kind === 'banner-then-silent') socket.write('SSH-2.0-Flood_1.0\r\n');
        if (kind === 'slow-banner') {
          const banner = 'SSH-2.0-Slowloris_1.0\r\n';
          const drip = (i: number): void => {
            if (stopped || socket.destroyed || i >= banner.length) return;
            socket.write(banner[i]!);
            later(300, () => drip(i + 1));
          };
          drip(0);
        }
      });
      socket.on('close', () => {
        open.delete(socket);
        resolve();
      });
    });
  const worker = async (slot: number): Promise<void> => {
    for (let round = 0; !stopped && opened < 50_000; round += 1) {
      await one(slot, round);
      // Reconnect at once, as an attacker would, but never in a hot loop.
      await new Promise((resolve) => later(20, () => resolve(undefined)));
    }
  };
  const workers = Array.from({ length: FLOOD }, (_, slot) => worker(slot));
  return {
    stop: async () => {
      stopped = true;
      for (const socket of open) socket.destroy();
      await Promise.all(workers);
      return opened;
    },
  };
}

/**
 * Resolves once the flood holds most unauthenticated slots (`count`), or has already
 * earned its address a penalty; with the early random refusal of MaxStartups it cannot
 * always take the very last ones.
 */
async function waitForFlood(server: TestServer, count: number): Promise<string> {
  let most = 0;
  for (let attempt = 0; attempt < 400; attempt += 1) {
    const open = (await server.metric('git_sshd_connections', '{phase="unauthenticated"}')) ?? 0;
    most = Math.max(most, open);
    if (open >= count) return `${open} unauthenticated connections open`;
    if (server.logs.some((line) => line.msg === 'source penalised: refusing its new connections')) return `penalised after ${most} open at most`;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`the flood never held ${count} slots (at most ${most})`);
}

describe('a pre-authentication flood from one address, with the default limits', () => {
  let key: ClientKey;
  let server: TestServer;

  before(async () => {
    key = makeKey();
    server = await TestServer.start({
      users: adminUsers(key),
      config: {
        log_level: 'info',
        sshd: {
          // Loopback is exempt by default (a mesh sidecar's address); here it plays the Internet.
          per_source_penalties: { exempt: [] },
          // Shorter than the default 10 s only to keep the test short.
          banner_timeout: '1s',
        },
      },
    });
    const push = await git(key, server.port, ['push', '-q', url(server.port, 'team/app.git'), 'HEAD:main'], makeWorkTree());
    assert.equal(push.code, 0, push.stderr);
  });
  after(() => server.dispose());

  test('clones from another address all succeed while 100 silent, slow and garbage connections keep coming', async () => {
    const attack = flood(server.port);
    let opened = 0;
    const results: Array<{ code: number | null; stderr: string }> = [];
    try {
      // The flood holds every unauthenticated slot before the first clone starts.
      const state = await waitForFlood(server, (FLOOD * 8) / 10);
      if (process.env.FLOOD_VERBOSE) console.log(state);
      for (let i = 0; i < CLONES; i += 1) {
        const target = join(temporaryDir('git-sshd-flood-'), 'clone');
        const clone = await run('git', ['clone', '-q', url(server.port, 'team/app.git'), target], {
          env: { GIT_SSH_COMMAND: `${sshCommand(key, server.port)} -b ${USER}`, GIT_CONFIG_NOSYSTEM: '1' },
          timeoutMs: 120_000,
        });
        results.push(clone);
      }
      // On a quiet machine the clones can finish before any flood connection has reached
      // the banner timeout: the flood goes on until the attacker has earned a penalty.
      await waitUntil(
        'the attacker penalised and refused',
        async () => ((await server.metric('git_sshd_connections_rejected_total', '{reason="penalty"}')) ?? 0) > 0,
        120_000,
        250,
      );
    } finally {
      opened = await attack.stop();
    }
    assert.deepEqual(results.map((result) => result.code), Array(CLONES).fill(0), results.map((result) => result.stderr).join('\n'));
    assert.ok(opened > FLOOD, `the attacker opened ${opened} connections`);

    // The attacker's address was penalised and its later connections refused before the banner;
    // the penalty was logged once per penalty, not once per refused connection.
    const refused = (await server.metric('git_sshd_connections_rejected_total', '{reason="penalty"}')) ?? 0;
    const penalties = server.logs.filter((line) => line.msg === 'source penalised: refusing its new connections');
    assert.ok(refused > 0, 'connections refused for the penalty');
    assert.ok(penalties.length >= 1 && penalties.length < refused, `${penalties.length} penalty lines for ${refused} refusals`);
    assert.ok(penalties.every((line) => line.source_block === `${ATTACKER}/32`), 'only the attacker was penalised');
    assert.ok(((await server.metric('git_sshd_connections_dropped_total', '{reason="banner_timeout"}')) ?? 0) > 0);
    assert.ok(((await server.metric('git_sshd_source_penalties_total', '{reason="banner_timeout"}')) ?? 0) >= 1);
    const isClone = (line: LogLine): boolean => line.remote_ip === USER && line.auth === 'success';
    // A client exits when its channel closes, which can be before the server logs the connection's end.
    await server.waitForLog(() => server.summaries().filter(isClone).length >= CLONES);
    const clones = server.summaries().filter(isClone);
    assert.equal(clones.length, CLONES);
  });
});

/** ssh-audit 3.x (its DHEat rate check); scripts/test.sh installs it into a venv under ~/.cache. */
const SSH_AUDIT = process.env.SSH_AUDIT ?? join(homedir(), '.cache', 'git-sshd-ssh-audit', 'bin', 'ssh-audit');

describe('ssh-audit', () => {
  test('its DHEat connection-rate check passes against the default penalties', async () => {
    assert.ok(existsSync(SSH_AUDIT), `ssh-audit not found at ${SSH_AUDIT} (scripts/test.sh installs it)`);
    const server = await TestServer.start({ config: { log_level: 'info', sshd: { per_source_penalties: { exempt: [] } } } });
    try {
      // Its rate test is bounded (1.5 s, 38 connections); the whole audit gets a generous bound.
      const audit = await run(SSH_AUDIT, ['-j', '-p', String(server.port), '127.0.0.1'], { timeoutMs: 120_000 });
      const report = JSON.parse(audit.stdout) as { kex?: Array<{ notes?: { info?: string[] } }> };
      assert.ok(report.kex && report.kex.length > 0, `no key exchange in the report: ${audit.stdout.slice(0, 500)} ${audit.stderr}`);
      const dheat = JSON.stringify(report).match(/[^"]*DHEat[^"]*/g) ?? [];
      assert.deepEqual(dheat, [], 'ssh-audit reports a DHEat exposure');
      assert.ok(((await server.metric('git_sshd_connections_rejected_total', '{reason="penalty"}')) ?? 0) > 0, 'the rate check met the penalty');
    } finally {
      await server.dispose();
    }
  });
});
