// Copies stdin to stdout at no more than the given bytes per second: a slow network
// between git and ssh, so that a transfer is still running when a test wants it to be.
const bytesPerSecond = Number(process.argv[2] ?? 1_000_000);
const sliceMs = 50;
const perSlice = Math.max(1, Math.floor((bytesPerSecond * sliceMs) / 1000));
let budget = perSlice;
let pending = [];
let ended = false;

setInterval(() => {
  budget = perSlice;
  flush();
}, sliceMs);

function flush() {
  while (pending.length > 0 && budget > 0) {
    const chunk = pending[0];
    const part = chunk.subarray(0, budget);
    budget -= part.length;
    if (part.length === chunk.length) pending.shift();
    else pending[0] = chunk.subarray(part.length);
    process.stdout.write(part);
  }
  if (pending.length === 0) {
    if (ended) process.stdout.end(() => process.exit(0));
    else process.stdin.resume();
  }
}

process.stdin.on('data', (chunk) => {
  pending.push(chunk);
  process.stdin.pause();
  flush();
});
process.stdin.on('end', () => {
  ended = true;
  flush();
});
process.stdout.on('error', () => process.exit(1));
