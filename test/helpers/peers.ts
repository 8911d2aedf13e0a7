import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './server.js';

/**
 * The test peers built once and cached under ~/.cache/git-sshd (scripts/test.sh builds them
 * first, with progress messages; a test file run alone builds what is missing).
 */
function built(script: string): string {
  const out = execFileSync('bash', [join(ROOT, 'scripts', script)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').at(-1)!;
}

/** Go's golang.org/x/crypto/ssh client (test/peers/go-ssh): a second SSH implementation. */
export function goSshClient(): string {
  return built('go-peer.sh');
}

/** A Debian sid root with OpenSSH 10.x and git 2.5x, to run chrooted (scripts/sid-root.sh). */
export function sidRoot(): string {
  return built('sid-root.sh');
}

/** Paramiko's client (test/peers/paramiko/client.py) and the venv python that runs it. */
export function paramikoClient(): { python: string; script: string } {
  return { python: built('paramiko-peer.sh'), script: join(ROOT, 'test', 'peers', 'paramiko', 'client.py') };
}
