// OpenSSH's ProxyCommand for the load generator: `node proxyCommand.mjs HOST PORT RECORD [BYTES_PER_SECOND]`.
// It makes the TCP connection itself so that the test knows the connection's local port
// (the server logs it as remote_port, which names the pod that served the operation), and
// it can pace both directions, as a slow network would, so that a transfer is still in
// flight when a pod is told to stop. One JSON line is written to RECORD on connect and
// one when the connection ends.
import { appendFileSync } from 'node:fs';
import { connect } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';

const [host, port, record, rate] = process.argv.slice(2);
const bytesPerSecond = Number(rate ?? 0);
// Pacing granularity: small enough that a slow transfer is a steady trickle.
const SLICE_BYTES = 16 * 1024;

function note(fields) {
  appendFileSync(record, `${JSON.stringify({ at: Date.now(), ...fields })}\n`);
}

async function* paced(source) {
  let due = performance.now();
  for await (const chunk of source) {
    if (!(bytesPerSecond > 0)) {
      yield chunk;
      continue;
    }
    for (let offset = 0; offset < chunk.length; offset += SLICE_BYTES) {
      const part = chunk.subarray(offset, offset + SLICE_BYTES);
      due = Math.max(due, performance.now()) + (part.length / bytesPerSecond) * 1000;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      yield part;
    }
  }
}

const socket = connect({ host, port: Number(port), allowHalfOpen: true, noDelay: true });
socket.once('connect', () => note({ event: 'connected', local_address: socket.localAddress, local_port: socket.localPort, remote_address: socket.remoteAddress }));
let failure;
pipeline(process.stdin, paced, socket, { end: true }).catch((err) => (failure ??= err));
const downstream = pipeline(socket, paced, process.stdout).catch((err) => (failure ??= err));
// The server's side ending is the end: node never closes fd 1 (process.stdout.end() keeps
// it open), so only exiting tells ssh, which would otherwise wait for more forever.
await downstream;
note({ event: 'closed', bytes_sent: socket.bytesWritten, bytes_received: socket.bytesRead, error: failure?.code ?? failure?.message });
if (failure && failure.code !== 'EPIPE') {
  process.stderr.write(`proxyCommand: ${host}:${port}: ${failure.code ?? failure.message}\n`);
  process.exit(1);
}
process.exit(0);
