import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, sshArgs, temporaryDir, type ClientKey, type RunResult } from '../../helpers/client.js';
import { kubectlJson } from './cluster.js';

/**
 * OpenSSH and git aimed at an address in the cluster (a Service's ClusterIP, a pod IP),
 * from the host: the service range is routed onto the cluster's bridge. With `knownHosts`
 * the host key is checked strictly (StrictHostKeyChecking=yes); without, it is not.
 */
export interface Target {
  readonly host: string;
  readonly port: number;
  /** A known_hosts file (knownHostsFromSecret); omitted: the host key is not checked. */
  readonly knownHosts?: string;
}

export function clusterSshArgs(key: ClientKey, target: Target, extra: string[] = []): string[] {
  return sshArgs(key, target.port, extra, target.knownHosts);
}

/** `ssh git@HOST COMMAND...` */
export function clusterSsh(key: ClientKey, target: Target, command: string[] = [], extra: string[] = []): Promise<RunResult> {
  return run('ssh', [...clusterSshArgs(key, target, extra), `git@${target.host}`, ...command]);
}

export function clusterUrl(target: Target, repo: string): string {
  return `ssh://git@${target.host}:${target.port}/${repo}`;
}

/** git with GIT_SSH_COMMAND set for the target. */
export function clusterGit(key: ClientKey, target: Target, args: string[], cwd?: string, timeoutMs = 600_000): Promise<RunResult> {
  const sshCommand = ['ssh', ...clusterSshArgs(key, target)].join(' ');
  return run('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', '-c', 'init.defaultBranch=main', ...args], {
    ...(cwd ? { cwd } : {}),
    env: { GIT_SSH_COMMAND: sshCommand, GIT_CONFIG_NOSYSTEM: '1', HOME: process.env.HOME ?? '/tmp' },
    timeoutMs,
  });
}

/** The host keys a server presents (`ssh-keyscan`), as `type base64` strings, sorted. */
export async function keyscan(host: string, port: number, types = 'ed25519,ecdsa,rsa'): Promise<string[]> {
  const result = await run('ssh-keyscan', ['-T', '60', '-t', types, '-p', String(port), host]);
  return result.stdout
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => line.split(' ').slice(1, 3).join(' '))
    .sort();
}

/** The public halves (`type base64`, sorted) of the private keys in a host-key Secret. */
export async function publicKeysOfSecret(namespace: string, secret: string): Promise<string[]> {
  const object = await kubectlJson<{ data?: Record<string, string> }>(['-n', namespace, 'get', 'secret', secret]);
  const dir = temporaryDir('git-sshd-k8s-hostkeys-');
  const keys: string[] = [];
  for (const [file, encoded] of Object.entries(object.data ?? {})) {
    if (file.endsWith('.pub')) continue;
    const path = join(dir, file);
    writeFileSync(path, Buffer.from(encoded, 'base64'), { mode: 0o600 });
    const derived = await run('ssh-keygen', ['-y', '-f', path]);
    if (derived.code !== 0) throw new Error(`ssh-keygen -y of ${namespace}/${secret}/${file}: ${derived.stderr}`);
    keys.push(derived.stdout.trim().split(' ').slice(0, 2).join(' '));
  }
  return keys.sort();
}

/** A known_hosts file listing the Secret's host keys for each of `hosts` (`[ip]:port` when not 22). */
export async function knownHostsFromSecret(namespace: string, secret: string, hosts: Array<{ host: string; port: number }>): Promise<string> {
  const keys = await publicKeysOfSecret(namespace, secret);
  const lines = hosts.flatMap(({ host, port }) => keys.map((key) => `${port === 22 ? host : `[${host}]:${port}`} ${key}`));
  const file = join(temporaryDir('git-sshd-k8s-known-hosts-'), 'known_hosts');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}
