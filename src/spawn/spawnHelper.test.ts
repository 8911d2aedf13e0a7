import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { waitUntil } from '../../test/helpers/wait.js';
import { SocketPairs } from '../io/socketPair.js';
import { loaderOptions, SpawnHelper } from './spawnHelper.js';

const work = mkdtempSync(join(tmpdir(), 'spawn-helper-test-'));
const pairs = new SocketPairs(work);
after(() => {
  pairs.removeDirectory();
  rmSync(work, { recursive: true, force: true });
});
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const silent = pino({ level: 'silent' });

/** Three socket pairs: our ends to talk to the child, theirs for its stdin, stdout and stderr. */
async function stdio(): Promise<{ stdin: Socket; stdout: Socket; stderr: Socket; theirs: [Socket, Socket, Socket] }> {
  const [stdin, stdout, stderr] = [await pairs.make(), await pairs.make(), await pairs.make()];
  return { stdin: stdin.ours, stdout: stdout.ours, stderr: stderr.ours, theirs: [stdin.theirs, stdout.theirs, stderr.theirs] };
}

async function readAll(socket: Socket): Promise<string> {
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  await once(socket, 'end');
  return text;
}

function parentOf(pid: number): number {
  // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after its ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** /proc/PID/stat's process group. */
function groupOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs `body` with a helper of its own, stopped afterwards whatever happens. */
async function withHelper(body: (helper: SpawnHelper) => Promise<void>): Promise<void> {
  const helper = new SpawnHelper({ log: silent });
  try {
    await body(helper);
  } finally {
    helper.close();
  }
}

/** `true` through the helper, to its exit: its code and signal. */
async function runTrue(helper: SpawnHelper): Promise<unknown[]> {
  const child = await helper.spawn('true', [], { env, detached: false, stdio: (await stdio()).theirs });
  return once(child, 'exit');
}

describe('SpawnHelper', () => {
  test('starts a process from the helper with our sockets as its stdio, and reports its exit code', () =>
    withHelper(async (helper) => {
    const ends = await stdio();
    const child = await helper.spawn('sh', ['-c', 'read line; echo "out:$line"; echo "err:$line" >&2; exit 3'], { env, detached: true, stdio: ends.theirs });
    assert.ok(helper.pid !== undefined && helper.pid !== process.pid);
    assert.equal(parentOf(child.pid), helper.pid, 'the helper forked it, not this process');
    const exited = once(child, 'exit');
    const [out, err] = [readAll(ends.stdout), readAll(ends.stderr)];
    ends.stdin.end('hello\n');
    assert.deepEqual(await exited, [3, null]);
    assert.equal(await out, 'out:hello\n');
    assert.equal(await err, 'err:hello\n');
    assert.equal(child.exitCode, 3);
    }));

  test('the helper leads a process group of its own: a signal to the server\'s group (a Ctrl-C) does not reach it', () =>
    withHelper(async (helper) => {
    const ends = await stdio();
    const child = await helper.spawn('true', [], { env, detached: false, stdio: ends.theirs });
    await once(child, 'exit');
    assert.equal(groupOf(helper.pid!), helper.pid);
    assert.notEqual(groupOf(helper.pid!), groupOf(process.pid));
    }));

  test('a helper that cannot start: the spawn is refused with EHELPER, and for a while later ones are at once, without a new fork', async () => {
    const errors: string[] = [];
    const helper = new SpawnHelper({ log: pino({ level: 'error' }, { write: (line: string) => void errors.push(line) }), entry: join(work, 'no-such-helper.js') });
    const first = await stdio();
    const ends = await stdio();
    try {
      await assert.rejects(helper.spawn('true', [], { env, detached: false, stdio: first.theirs }), { code: 'EHELPER' });
      assert.match(errors.join(''), /the spawn helper could not start/);
      await assert.rejects(helper.spawn('true', [], { env, detached: false, stdio: ends.theirs }), { code: 'EHELPER', message: /not retried yet/ });
      assert.equal(helper.pid, undefined, 'no helper was forked for it');
    } finally {
      // What a caller does with a refused start (LocalGitTransport's close()).
      for (const end of [first, ends].flatMap((set) => [...set.theirs, set.stdin, set.stdout, set.stderr])) end.destroy();
    }
  });

  test('the helper gets the server\'s loader options with their values, and none of its other options', () => {
    assert.deepEqual(loaderOptions(['--cpu-prof', '--cpu-prof-dir', '/tmp/x', '--import', 'tsx', '--require=./a.js', '--inspect-port=9229', '--test-timeout=5', '-r', 'b']), ['--import', 'tsx', '--require=./a.js', '-r', 'b']);
    assert.deepEqual(loaderOptions([]), []);
  });

  test('a command that does not exist is refused with its errno, and the helper serves on', () =>
    withHelper(async (helper) => {
    await assert.rejects(helper.spawn('git-sshd-no-such-command', [], { env, detached: false, stdio: (await stdio()).theirs }), { code: 'ENOENT' });
    const ends = await stdio();
    const child = await helper.spawn('true', [], { env, detached: false, stdio: ends.theirs });
    assert.deepEqual(await once(child, 'exit'), [0, null]);
    }));

  test('a process killed by a signal is reported with it', () =>
    withHelper(async (helper) => {
    const ends = await stdio();
    const child = await helper.spawn('sleep', ['600'], { env, detached: true, stdio: ends.theirs });
    const exited = once(child, 'exit');
    process.kill(-child.pid, 'SIGTERM');
    assert.deepEqual(await exited, [null, 'SIGTERM']);
    }));

  test('if the helper dies, what it started is killed and reported so, and the next spawn starts a new helper', async () => {
    const errors: string[] = [];
    const helper = new SpawnHelper({ log: pino({ level: 'error' }, { write: (line: string) => void errors.push(line) }) });
    try {
      const ends = await stdio();
      // A grandchild in the same group: the whole group goes, not only its leader.
      const child = await helper.spawn('sh', ['-c', 'sleep 600 & echo $!; wait'], { env, detached: true, stdio: ends.theirs });
      const grandchild = Number((await once(ends.stdout, 'data'))[0].toString().trim());
      const first = helper.pid!;
      const exited = once(child, 'exit');
      process.kill(first, 'SIGKILL');
      assert.deepEqual(await exited, [null, 'SIGKILL']);
      await waitUntil('the orphaned group to be gone', () => !alive(child.pid) && !alive(grandchild), 30_000, 50);
      assert.match(errors.join(''), /the spawn helper exited/);

      const next = await stdio();
      const again = await helper.spawn('true', [], { env, detached: false, stdio: next.theirs });
      assert.notEqual(helper.pid, first);
      assert.deepEqual(await once(again, 'exit'), [0, null]);
    } finally {
      helper.close();
    }
  });

  test('many processes through one helper leave nothing behind per process (no listener, no socket list)', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    const helper = new SpawnHelper({ log: silent });
    try {
      for (let i = 0; i < 15; i += 1) {
        const ends = await stdio();
        const child = await helper.spawn('true', [], { env, detached: false, stdio: ends.theirs });
        assert.deepEqual(await once(child, 'exit'), [0, null]);
        for (const end of [ends.stdin, ends.stdout, ends.stderr]) end.destroy();
      }
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings, []);
    } finally {
      process.off('warning', onWarning);
      helper.close();
    }
  });

  test('an idle helper does not keep the server alive: a process that used it ends by itself', async () => {
    const script = join(work, 'uses-helper.mts');
    const source = new URL('./spawnHelper.ts', import.meta.url).pathname;
    const socketPair = new URL('../io/socketPair.ts', import.meta.url).pathname;
    writeFileSync(
      script,
      [
        `import { SpawnHelper } from '${source}';`,
        `import { SocketPairs } from '${socketPair}';`,
        `const log = { error() {}, warn() {}, info() {}, debug() {} };`,
        `const pairs = new SocketPairs(${JSON.stringify(work)});`,
        `const ends = [await pairs.make(), await pairs.make(), await pairs.make()];`,
        `const child = await new SpawnHelper({ log } as never).spawn('true', [], { env: { PATH: process.env.PATH! }, detached: false, stdio: [ends[0].theirs, ends[1].theirs, ends[2].theirs] });`,
        `child.on('exit', (code) => { console.log('child exited', code); for (const end of ends) end.ours.destroy(); });`,
      ].join('\n'),
    );
    const user = spawn(process.execPath, [...process.execArgv.filter((arg) => !arg.startsWith('--test')), script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    user.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => user.kill('SIGKILL'), 60_000);
    try {
      const [code, signal] = (await once(user, 'exit')) as [number | null, string | null];
      assert.equal(signal, null, 'it had to be killed: the helper kept it alive');
      assert.equal(code, 0);
      assert.match(output, /child exited 0/);
    } finally {
      clearTimeout(timer);
    }
  });
});
