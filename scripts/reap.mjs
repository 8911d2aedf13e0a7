// The end of a test run (scripts/test.sh): kills whatever the run left running and removes
// its temp dir, whether the tests passed, failed, timed out or were interrupted. A process
// belongs to the run if it carries the run's marker in its environment, or its command line
// or working directory is inside the run's temp dir (a server started with a clean
// environment still has its config file there).
//
//   node scripts/reap.mjs RUN_ID RUN_TMPDIR
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';

const [runId, runDir] = process.argv.slice(2);
if (!runId || !runDir || !runDir.startsWith('/tmp/')) {
  console.error('usage: node scripts/reap.mjs RUN_ID /tmp/RUN_TMPDIR');
  process.exit(2);
}
const marker = `GIT_SSHD_TEST_RUN=${runId}`;
const spared = new Set([process.pid, process.ppid]);

function describe(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 160);
  } catch {
    return '?';
  }
}

function belongs(pid) {
  try {
    if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker)) return true;
    if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(runDir)) return true;
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    return cwd === runDir || cwd.startsWith(`${runDir}/`);
  } catch {
    return false; // gone already, or not ours to read
  }
}

const reaped = [];
// A few passes: a process killed while forking may leave a child the first pass missed.
for (let pass = 0; pass < 5; pass++) {
  const found = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => !spared.has(pid) && belongs(pid));
  if (found.length === 0) break;
  for (const pid of found) {
    reaped.push(`${pid} ${describe(pid)}`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
if (reaped.length > 0) {
  console.error(`test run ${runId}: killed ${reaped.length} leftover process(es):`);
  for (const line of reaped) console.error(`  ${line}`);
}
rmSync(runDir, { recursive: true, force: true });
