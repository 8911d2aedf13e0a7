import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run, type ClientKey, type RunResult } from './client.js';

/**
 * A user of another distribution's OpenSSH and git: runs them chrooted into `root` (a
 * chroot shares the network, so they reach the server on 127.0.0.1), with a home of its
 * own inside the root and its own key.
 */
export class ChrootUser {
  /** The home directory as seen inside the root. */
  readonly home: string;
  readonly key: ClientKey;

  constructor(readonly root: string) {
    const hostHome = mkdtempSync(join(root, 'tmp', 'git-sshd-user-'));
    this.home = hostHome.slice(root.length);
    const keyPath = join(this.home, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'chroot@test', '-f', this.hostPath(keyPath)]);
    this.key = { path: keyPath, publicLine: readFileSync(this.hostPath(`${keyPath}.pub`), 'utf8').trim() };
  }

  /** Where a path inside the root is on this machine. */
  hostPath(inside: string): string {
    return join(this.root, inside);
  }

  /**
   * OpenSSH options for the tests, at OpenSSH's default log level (INFO): that is where
   * its post-quantum warning shows, so it must not be silenced here.
   */
  sshOptions(port: number, extra: string[] = []): string[] {
    return [
      '-F', '/dev/null',
      '-i', this.key.path,
      '-o', 'IdentitiesOnly=yes',
      '-o', 'IdentityAgent=none',
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=no',
      `-oUserKnownHostsFile=${this.home}/known_hosts`,
      '-o', 'ConnectTimeout=10',
      '-p', String(port),
      ...extra,
    ];
  }

  /** A command inside the root, with a clean environment. */
  exec(command: string, args: string[], options: { cwd?: string; env?: Record<string, string>; input?: string } = {}): Promise<RunResult> {
    const env = [
      'PATH=/usr/bin:/bin',
      `HOME=${this.home}`,
      'LANG=C',
      'GIT_TERMINAL_PROMPT=0',
      'GIT_CONFIG_NOSYSTEM=1',
      ...Object.entries(options.env ?? {}).map(([name, value]) => `${name}=${value}`),
    ];
    const inner = options.cwd ? ['sh', '-c', 'cd "$1" && shift && exec "$@"', 'sh', options.cwd, command, ...args] : [command, ...args];
    return run('chroot', [this.root, 'env', '-i', ...env, ...inner], {
      ...(options.input !== undefined ? { input: options.input } : {}),
      timeoutMs: 300_000,
    });
  }

  ssh(port: number, command: string[] = [], extra: string[] = []): Promise<RunResult> {
    return this.exec('ssh', [...this.sshOptions(port, extra), 'git@127.0.0.1', ...command]);
  }

  /** git with GIT_SSH_COMMAND set to this user's ssh and key. */
  git(port: number, args: string[], options: { cwd?: string; env?: Record<string, string>; sshExtra?: string[] } = {}): Promise<RunResult> {
    return this.exec('git', ['-c', 'user.name=Sid', '-c', 'user.email=sid@example.com', '-c', 'init.defaultBranch=main', ...args], {
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: { GIT_SSH_COMMAND: ['ssh', ...this.sshOptions(port, options.sshExtra)].join(' '), ...options.env },
    });
  }

  dispose(): void {
    rmSync(this.hostPath(this.home), { recursive: true, force: true });
  }
}
