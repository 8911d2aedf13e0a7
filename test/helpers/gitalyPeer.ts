import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './server.js';

let built: string | undefined;

/**
 * The Gitaly test peer's binary (test/gitaly-peer), built once by scripts/gitaly-peer.sh
 * into ~/.cache/git-sshd; a build in progress prints its progress line on our stderr.
 */
export function gitalyPeerBinary(): string {
  if (built) return built;
  // scripts/test.sh builds it before the tests start (a first build takes minutes).
  if (process.env.GIT_SSHD_GITALY_PEER) return (built = process.env.GIT_SSHD_GITALY_PEER);
  const out = execFileSync('bash', [join(ROOT, 'scripts', 'gitaly-peer.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 60 * 60_000 });
  built = out.trim().split('\n').pop()!;
  return built;
}

export interface PeerEvent {
  readonly event: string;
  readonly [field: string]: unknown;
}

/** A running peer: its address, and the events it reported (one JSON line each). */
export class GitalyPeer {
  readonly events: PeerEvent[] = [];
  readonly stderr: string[] = [];
  address = '';
  private readonly waiters: Array<{ match: (event: PeerEvent) => boolean; resolve: (event: PeerEvent) => void }> = [];
  readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let event: PeerEvent;
      try {
        event = JSON.parse(text) as PeerEvent;
      } catch {
        return;
      }
      this.events.push(event);
      for (const waiter of [...this.waiters]) {
        if (waiter.match(event)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(event);
        }
      }
    });
    createInterface({ input: child.stderr! }).on('line', (text) => this.stderr.push(text));
  }

  static async start(args: string[]): Promise<GitalyPeer> {
    const child = spawn(gitalyPeerBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const peer = new GitalyPeer(child);
    const listening = await Promise.race([
      peer.waitFor((event) => event.event === 'listening', 30_000),
      peer.exited.then((code) => {
        throw new Error(`the Gitaly peer exited with ${code}: ${peer.stderr.join('\n')}`);
      }),
    ]);
    peer.address = String(listening.address);
    return peer;
  }

  /** The TCP port of a tcp:// address. */
  get port(): number {
    return Number(new URL(this.address).port);
  }

  /** Resolves with the first event, already seen or still to come, that matches. */
  waitFor(match: (event: PeerEvent) => boolean, timeoutMs = 20_000): Promise<PeerEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching peer event within ${timeoutMs} ms; stderr: ${this.stderr.slice(-5).join('\n')}`)), timeoutMs);
      this.waiters.push({
        match,
        resolve: (event) => {
          clearTimeout(timer);
          resolve(event);
        },
      });
    });
  }

  /** RPCs the peer has finished, by method name (e.g. `SSHReceivePack`). */
  rpcs(method?: string): PeerEvent[] {
    return this.events.filter((event) => event.event === 'rpc' && (!method || String(event.method).endsWith(`/${method}`)));
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}
