import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { run } from '../../helpers/client.js';

/**
 * A pod's network namespace, entered from the host (the test runs as root on the node):
 * the runtime's named netns (`/var/run/netns/cni-...`) whose interface carries the pod's IP,
 * else the netns of a process that has that address.
 */
export async function podNetns(ip: string): Promise<string> {
  const candidates: string[] = [];
  for (const dir of ['/var/run/netns', '/run/netns']) {
    if (existsSync(dir)) for (const name of readdirSync(dir)) candidates.push(join(dir, name));
  }
  // Processes as a fallback: one per distinct namespace (the pod's pause process holds it).
  const seen = new Set<string>();
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    try {
      const id = readlinkSync(`/proc/${pid}/ns/net`);
      if (!seen.has(id)) {
        seen.add(id);
        candidates.push(`/proc/${pid}/ns/net`);
      }
    } catch {
      // Gone, or a kernel thread.
    }
  }
  for (const netns of candidates) {
    const addresses = await run('nsenter', [`--net=${netns}`, 'ip', '-4', '-o', 'addr', 'show'], { timeoutMs: 30_000 });
    if (addresses.code === 0 && addresses.stdout.includes(` ${ip}/`)) return netns;
  }
  throw new Error(`no network namespace on this host has the address ${ip}`);
}

/** The nftables table this test adds inside a pod's netns, and removes. */
const TABLE = 'git_sshd_test_block';

/**
 * Drops every packet to `port` inside the pod's network namespace, as a wedged or firewalled
 * listener would look to the kubelet (its probes time out); the pod's other ports are untouched.
 */
export async function blockPort(netns: string, port: number): Promise<void> {
  const rules = `table inet ${TABLE} {\n  chain input {\n    type filter hook input priority -10; policy accept;\n    tcp dport ${port} drop\n  }\n}\n`;
  const result = await run('nsenter', [`--net=${netns}`, 'nft', '-f', '-'], { input: rules, timeoutMs: 30_000 });
  if (result.code !== 0) throw new Error(`nft in ${netns}: ${result.stderr}`);
}

/** Removes what blockPort added; a namespace already gone (pod deleted) is fine. */
export async function unblockPort(netns: string): Promise<void> {
  if (!existsSync(netns)) return;
  await run('nsenter', [`--net=${netns}`, 'nft', 'delete', 'table', 'inet', TABLE], { timeoutMs: 30_000 });
}

/** 'open' when a TCP connection to host:port is accepted, else the error code (ECONNREFUSED, timeout...). */
export function tcpAnswer(host: string, port: number, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('open');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? err.message);
    });
  });
}
