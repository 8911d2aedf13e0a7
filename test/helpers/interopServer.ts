import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { killProcessGroups, makeWorkTree, temporaryDir, url, type RunResult } from './client.js';
import {
  asyncssh,
  assertInteropTools,
  dropbear,
  gitVia,
  goClient,
  hostKeyFingerprints,
  libssh,
  makeInteropKey,
  openssh,
  paramiko,
  plink,
  runGroup,
  type ClientOptions,
  type InteropClient,
  type InteropKey,
} from './interopClients.js';
import { TestServer, type LogLine } from './server.js';

export const WELCOME = 'Welcome to git-sshd, @alice!\n';
/** Slow tests (a 20-login loop, clones under rekey) get more than the suite's 2 minutes. */
export const LONG = { timeout: 600_000 };

/**
 * What every interop test file starts from: an Ed25519 and an RSA key for alice (admin),
 * a server, and `team/app` pushed with OpenSSH; `team/big` (4 MB that do not compress)
 * when asked for.
 */
export class InteropFixture {
  readonly scratch = temporaryDir('git-sshd-interop-');
  readonly putty: InteropClient;
  /** Every client but OpenSSH, which the other test files cover. */
  readonly clients: readonly InteropClient[];

  private constructor(
    readonly server: TestServer,
    readonly ed25519: InteropKey,
    readonly rsa: InteropKey,
  ) {
    this.putty = plink(hostKeyFingerprints(server.dataDir));
    this.clients = [this.putty, dropbear, paramiko, asyncssh, goClient, libssh];
  }

  static async start(options: { big?: boolean; config?: Record<string, unknown> } = {}): Promise<InteropFixture> {
    assertInteropTools();
    const ed25519 = makeInteropKey('ed25519');
    const rsa = makeInteropKey('rsa');
    const server = await TestServer.start({
      users: [{ name: 'alice', keys: [ed25519.publicLine, rsa.publicLine], access: { '*': 'admin' } }],
      ...(options.config ? { config: options.config } : {}),
    });
    const fixture = new InteropFixture(server, ed25519, rsa);
    const seeded = await gitVia(openssh, ed25519, ['push', url(server.port, 'team/app'), 'main'], { cwd: makeWorkTree() });
    assert.equal(seeded.code, 0, seeded.stderr);
    if (options.big) {
      const big = makeWorkTree({ 'blob.bin': randomBytes(4 * 1024 * 1024).toString('base64') });
      const pushed = await gitVia(openssh, ed25519, ['push', url(server.port, 'team/big'), 'main'], { cwd: big });
      assert.equal(pushed.code, 0, pushed.stderr);
    }
    return fixture;
  }

  client(name: string): InteropClient {
    const found = [...this.clients, openssh].find((client) => client.name === name);
    assert.ok(found, `no client named ${name}`);
    return found;
  }

  /** Runs the shell (the welcome line) through `client` as alice. */
  login(client: InteropClient, key: InteropKey, options: ClientOptions = {}, server = this.server): Promise<RunResult> {
    const [command, ...args] = client.argv(key, server.port, options);
    return runGroup(command!, args, { env: client.env });
  }

  async dispose(): Promise<void> {
    killProcessGroups();
    await this.server.dispose();
  }
}

/** Handshakes (the first and every re-exchange) logged for one connection, the most of any. */
export function mostHandshakesOnOneConnection(lines: readonly LogLine[]): number {
  const counts = new Map<unknown, number>();
  for (const line of lines) if (line.msg === 'handshake done') counts.set(line.correlation_id, (counts.get(line.correlation_id) ?? 0) + 1);
  return Math.max(0, ...counts.values());
}
