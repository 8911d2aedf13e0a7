import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { test } from 'node:test';
import { mutate, seededRandom, SEEDS } from '../../test/helpers/mutate.js';
import { frameProxyHeader, V2_MAX_LENGTH } from './header.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 60_000);

test(`frameProxyHeader holds its invariants on ${ITERATIONS} mutated and random inputs (seed ${SEED})`, () => {
  const random = seededRandom(SEED);
  const tally: Record<string, number> = {};
  for (let i = 0; i < ITERATIONS; i += 1) {
    let input: Buffer;
    if (i % 10 === 0) {
      input = Buffer.alloc(Math.floor(random() * 64));
      for (let j = 0; j < input.length; j += 1) input[j] = Math.floor(random() * 256);
    } else {
      input = mutate(random, SEEDS[i % SEEDS.length]!);
    }
    const where = `seed ${SEED}, iteration ${i}, input ${input.toString('hex')}`;
    let result;
    try {
      result = frameProxyHeader(input);
    } catch (err) {
      assert.fail(`threw ${(err as Error).message} at ${where}`);
    }
    tally[result.state] = (tally[result.state] ?? 0) + 1;
    const extended = frameProxyHeader(Buffer.concat([input, Buffer.from('SSH-2.0-x\r\n')]));
    if (result.state === 'header') {
      assert.ok(result.length <= input.length && result.length <= V2_MAX_LENGTH, where);
      if (result.header.kind === 'proxied') {
        for (const endpoint of [result.header.source, result.header.destination]) {
          assert.ok(isIP(endpoint.ip) !== 0, `address ${endpoint.ip} at ${where}`);
          assert.ok(Number.isInteger(endpoint.port) && endpoint.port >= 0 && endpoint.port <= 65535, where);
        }
      }
      // The same header read from exactly its own bytes, or with more after it.
      assert.deepEqual(frameProxyHeader(input.subarray(0, result.length)), result, where);
      assert.deepEqual(extended, result, where);
      // A header arriving in pieces is waited for, never refused half-way.
      const cut = Math.floor(random() * result.length);
      assert.deepEqual(frameProxyHeader(input.subarray(0, cut)), cut === 0 ? { state: 'absent' } : { state: 'incomplete' }, `prefix ${cut} at ${where}`);
    } else if (result.state === 'absent' || result.state === 'invalid') {
      // Neither decision may change with what comes later.
      assert.deepEqual(extended, result, where);
    }
  }
  if (process.env.FUZZ_VERBOSE) console.log(tally);
  // The mutations must reach every outcome, or the fuzzer is not testing much.
  for (const state of ['header', 'incomplete', 'absent', 'invalid']) assert.ok((tally[state] ?? 0) > 100, `${state}: ${JSON.stringify(tally)}`);
});
