import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { killGroup, spawnGroup, temporaryDir } from './processes.js';
import { waitUntil } from './wait.js';

/** A port that was free a moment ago (haproxy and nginx cannot report a port-0 bind). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Resolves once a socket listens on 127.0.0.1:port (bounded). Read from /proc/net/tcp
 * rather than by connecting: a probe connection through a load balancer would reach the
 * server with a PROXY header of its own and skew what the tests count.
 */
async function waitForPort(port: number, child: ChildProcess, output: string[]): Promise<void> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  await waitUntil(`a listener on ${port}`, () => {
    if (child.exitCode !== null) throw new Error(`load balancer exited with ${child.exitCode}: ${output.join('')}`);
    return readFileSync('/proc/net/tcp', 'utf8')
      .split('\n')
      .some((line) => {
        const fields = line.trim().split(/\s+/);
        return fields[1] === local && fields[3] === '0A';
      });
  });
}

export interface LoadBalancer {
  /** Frontend ports by name. */
  readonly ports: Readonly<Record<string, number>>;
  stop(): Promise<void>;
}

async function startProcess(command: string, args: string[], ports: Record<string, number>): Promise<LoadBalancer> {
  const output: string[] = [];
  const child = spawnGroup(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (const port of Object.values(ports)) await waitForPort(port, child, output);
  } catch (err) {
    await killGroup(child);
    throw err;
  }
  return {
    ports,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => void killGroup(child), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface Frontend {
  readonly name: string;
  /** haproxy's server option: `send-proxy`, `send-proxy-v2`, or '' for none. */
  readonly sendProxy: 'send-proxy' | 'send-proxy-v2' | '';
}

/**
 * HAProxy in TCP mode on loopback, one frontend per entry, each connecting to `backendPort`
 * from `sourceIp` (so the server sees the load balancer at an address of its own).
 */
export async function startHaproxy(backendPort: number, sourceIp: string, frontends: Frontend[]): Promise<LoadBalancer> {
  const dir = temporaryDir('git-sshd-haproxy-');
  const ports: Record<string, number> = {};
  const sections: string[] = [];
  for (const frontend of frontends) {
    const port = await freePort();
    ports[frontend.name] = port;
    sections.push(
      `frontend fe_${frontend.name}`,
      `  bind 127.0.0.1:${port}`,
      `  default_backend be_${frontend.name}`,
      `backend be_${frontend.name}`,
      `  server git_sshd 127.0.0.1:${backendPort} source ${sourceIp} ${frontend.sendProxy}`,
    );
  }
  const config = join(dir, 'haproxy.cfg');
  writeFileSync(
    config,
    [
      'global',
      '  maxconn 2000',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 120s',
      '  timeout server 120s',
      ...sections,
      '',
    ].join('\n'),
  );
  return startProcess('haproxy', ['-db', '-f', config], ports);
}

/** nginx's stream module in front of `backendPort`, sending a PROXY v1 header, from `sourceIp`. */
export async function startNginxStream(backendPort: number, sourceIp: string): Promise<LoadBalancer> {
  const dir = temporaryDir('git-sshd-nginx-');
  const port = await freePort();
  const config = join(dir, 'nginx.conf');
  writeFileSync(
    config,
    [
      'load_module /usr/lib/nginx/modules/ngx_stream_module.so;',
      'daemon off;',
      'master_process off;',
      `pid ${join(dir, 'nginx.pid')};`,
      'error_log stderr warn;',
      'events { worker_connections 256; }',
      'stream {',
      '  server {',
      `    listen 127.0.0.1:${port};`,
      `    proxy_pass 127.0.0.1:${backendPort};`,
      '    proxy_protocol on;',
      `    proxy_bind ${sourceIp};`,
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  return startProcess('nginx', ['-p', dir, '-c', config, '-e', 'stderr'], { stream: port });
}
