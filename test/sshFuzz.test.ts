import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, makeKey, makeWorkTree, temporaryDir, url } from './helpers/client.js';
import { seededRandom } from './helpers/mutate.js';
import { adminUsers, TestServer } from './helpers/server.js';
import { preAuthInput } from './helpers/sshMutate.js';

/** A bounded number of inputs, not a wall-clock budget: the same work on a fast or a busy machine. */
const SEED = Number(process.env.FUZZ_SEED ?? 15);
const INPUTS = Number(process.env.FUZZ_SSH_INPUTS ?? 600);
const PARALLEL = 16;
/** Inputs that once broke something, replayed on every run; a new crash lands here too. */
const CORPUS = join(import.meta.dirname, 'fuzz-corpus', 'ssh');

/** Sends one input, in up to three writes, and waits (bounded) for the server to close or go quiet. */
function probe(port: number, input: Buffer, random: () => number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, 300);
    socket.on('error', done);
    socket.on('close', done);
    socket.on('data', () => undefined);
    socket.on('connect', () => {
      const cuts = [Math.floor(random() * input.length), Math.floor(random() * input.length)].sort((a, b) => a - b);
      socket.write(input.subarray(0, cuts[0]));
      setImmediate(() => {
        if (socket.destroyed) return;
        socket.write(input.subarray(cuts[0], cuts[1]));
        if (random() < 0.3) socket.end(input.subarray(cuts[1]));
        else socket.write(input.subarray(cuts[1]));
      });
    });
  });
}

describe(`SSH pre-authentication surface under ${INPUTS} structure-aware inputs (seed ${SEED}) and the regression corpus`, () => {
  const key = makeKey();
  let server: TestServer;

  before(async () => {
    server = await TestServer.start({
      users: adminUsers(key),
      config: { log_level: 'info', sshd: { login_grace_time: '1s', banner_timeout: '1s', max_startups: '200:30:400' } },
    });
    const push = await git(key, server.port, ['push', '-q', url(server.port, 'fuzz/app.git'), 'HEAD:main'], makeWorkTree());
    assert.equal(push.code, 0, push.stderr);
  });
  after(() => server.dispose());

  test('no crash, every socket released, and the server still serves a clone', async () => {
    const random = seededRandom(SEED);
    const socketsBefore = await server.metric('nodejs_active_handles', '{type="Socket"}');
    const corpus = readdirSync(CORPUS).filter((name) => name.endsWith('.bin')).map((name) => ({ name: `corpus ${name}`, bytes: readFileSync(join(CORPUS, name)) }));
    const inputs = [...corpus, ...Array.from({ length: INPUTS }, () => preAuthInput(random))];
    const inFlight = new Map<number, { name: string; bytes: Buffer }>();
    let next = 0;
    let crashed = false;
    const worker = async (): Promise<void> => {
      while (next < inputs.length && !crashed) {
        const index = next++;
        inFlight.set(index, inputs[index]!);
        await probe(server.port, inputs[index]!.bytes, random);
        inFlight.delete(index);
        if (server.child.exitCode !== null) crashed = true;
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    if (crashed || server.child.exitCode !== null) {
      // Keep what was in flight as regression inputs: the next run replays them first.
      mkdirSync(CORPUS, { recursive: true });
      for (const [index, input] of inFlight) writeFileSync(join(CORPUS, `crash-seed${SEED}-${index}.bin`), input.bytes);
      assert.fail(`the server exited (${server.child.exitCode}) with these inputs in flight, saved to ${CORPUS}: ${[...inFlight.values()].map((input) => input.name).join(', ')}`);
    }

    let open: number | undefined;
    for (let attempt = 0; attempt < 100; attempt += 1) {
      open = await server.metric('gitlab_shell_sshd_in_flight_connections');
      if (open === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(open, 0, 'connections still open on the server');
    const socketsAfter = await server.metric('nodejs_active_handles', '{type="Socket"}');
    assert.ok(socketsAfter !== undefined && socketsBefore !== undefined && socketsAfter <= socketsBefore + 2, `socket handles: ${socketsBefore} before, ${socketsAfter} after`);

    const clone = await git(key, server.port, ['clone', '-q', url(server.port, 'fuzz/app.git'), join(temporaryDir('git-sshd-fuzz-'), 'clone')]);
    assert.equal(clone.code, 0, clone.stderr);
    const failures = server.logs.filter((line) => line.level === 'fatal' || line.level === 'error');
    assert.deepEqual(failures.map((line) => line.msg), [], 'no errors logged');
  });
});
