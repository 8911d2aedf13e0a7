import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { signalProcess } from './signal.js';

/** Running: a zombie (dead, not yet reaped by whoever is PID 1 here) does not count. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('a group signal reaches the leader and what it started; a process already gone is no error', async () => {
  // The leader prints its child's pid, then waits for it: both must go.
  const leader = spawn('sh', ['-c', 'sleep 300 & echo $!; wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const [line] = (await once(leader.stdout!, 'data')) as [Buffer];
    const grandchild = Number(line.toString().trim());
    assert.ok(alive(grandchild));
    const exited = once(leader, 'exit');
    signalProcess(leader.pid!, true, 'SIGKILL');
    assert.deepEqual(await exited, [null, 'SIGKILL']);
    // The grandchild dies asynchronously once signalled: wait for that, bounded.
    for (let i = 0; i < 200 && alive(grandchild); i += 1) await new Promise((done) => setTimeout(done, 50));
    assert.equal(alive(grandchild), false);
    assert.doesNotThrow(() => signalProcess(leader.pid!, true, 'SIGKILL'));
    assert.doesNotThrow(() => signalProcess(leader.pid!, false, 'SIGTERM'));
  } finally {
    // Not through the function under test: a broken one must not leave the sleep behind.
    try {
      process.kill(-leader.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
    leader.stdout!.destroy();
  }
});
