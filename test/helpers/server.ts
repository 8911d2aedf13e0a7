import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { killGroup, removeTemporaryDir, spawnGroup, temporaryDir } from './processes.js';
import { EVENT_TIMEOUT_MS } from './wait.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const MAIN = join(ROOT, 'dist', 'main.js');

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface UserSpec {
  name: string;
  keys: string[];
  access?: Record<string, string>;
}

export interface StartOptions {
  users?: UserSpec[];
  /** Extra config merged into the generated config.yml (nested objects merge one level). */
  config?: Record<string, unknown>;
  /** Reuse a data directory (to test restarts). */
  dir?: string;
  env?: Record<string, string>;
}

/** A git-sshd process started from dist/ on 127.0.0.1 and a free port, with a temp data dir. */
export class TestServer {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  port = 0;
  /** The monitoring server's port; 0 when it is off. */
  monitoringPort = 0;
  private exitCode: number | null | undefined;
  private readonly waiters: Array<{ match: (line: LogLine) => boolean; resolve: (line: LogLine) => void; reject: (err: Error) => void }> = [];
  private logEnded = false;
  readonly exited: Promise<number | null>;

  private constructor(
    readonly dir: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((done) => child.on('exit', (code) => {
      this.exitCode = code;
      done(code);
    }));
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { level: 'raw', msg: text };
      }
      this.logs.push(line);
      for (const waiter of [...this.waiters]) {
        if (waiter.match(line)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }).on('close', () => {
      // No line can come any more: waiting out the timeout would only hide why.
      this.logEnded = true;
      for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`the server's log ended (exit ${this.exitCode ?? 'pending'}) without a matching line; stderr: ${this.stderr.join('\n')}`));
    });
    createInterface({ input: child.stderr! }).on('line', (text) => this.stderr.push(text));
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  get reposDir(): string {
    return join(this.dir, 'data', 'repos');
  }

  get usersFile(): string {
    return join(this.dir, 'data', 'users.yml');
  }

  /** The config.yml this server was started with. */
  get configFile(): string {
    return join(this.dir, 'config.yml');
  }

  /** A position in the log, for `waitForLogSince`. */
  mark(): number {
    return this.logs.length;
  }

  /** Like `waitForLog`, but only lines logged at or after `mark` count. */
  waitForLogSince(mark: number, match: (line: LogLine) => boolean, timeoutMs = EVENT_TIMEOUT_MS): Promise<LogLine> {
    return this.waitForLog((line) => this.logs.indexOf(line) >= mark && match(line), timeoutMs);
  }

  static async start(options: StartOptions = {}): Promise<TestServer> {
    const dir = options.dir ?? temporaryDir('git-sshd-test-');
    const configFile = join(dir, 'config.yml');
    const base: Record<string, any> = {
      user: 'git',
      log_level: 'debug',
      sshd: { listen: '127.0.0.1:0', web_listen: '127.0.0.1:0', grace_period: '2s' },
      local: { data_dir: join(dir, 'data') },
    };
    for (const [key, value] of Object.entries(options.config ?? {})) {
      base[key] = value && typeof value === 'object' && !Array.isArray(value) ? { ...base[key], ...value } : value;
    }
    writeFileSync(configFile, stringify(base));
    if (options.users) writeUsers(join(dir, 'data', 'users.yml'), options.users);
    const child = spawnGroup(process.execPath, [MAIN, '--config', configFile], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new TestServer(dir, child);
    let listening: LogLine;
    try {
      listening = await Promise.race([
        server.waitForLog((line) => line.msg === 'listening'),
        server.exited.then((code) => {
          throw new Error(`server exited with ${code} before listening: ${server.stderr.join('\n')}`);
        }),
      ]);
    } catch (err) {
      // Not started is not left running: the caller has no server to dispose of.
      await killGroup(child);
      if (!options.dir) removeTemporaryDir(dir);
      throw err;
    }
    server.port = listening.port as number;
    const monitoring = server.logs.find((line) => line.msg === 'monitoring server listening');
    server.monitoringPort = monitoring ? (monitoring.port as number) : 0;
    return server;
  }

  /** Resolves with the first log line (already seen or still to come) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs = EVENT_TIMEOUT_MS): Promise<LogLine> {
    const seen = this.logs.find(match);
    if (seen) return Promise.resolve(seen);
    if (this.logEnded) return Promise.reject(new Error(`the server's log ended (exit ${this.exitCode}) without a matching line`));
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (line: LogLine) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no matching log line within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Like waitForLog, but only for lines logged from now on. */
  nextLog(match: (line: LogLine) => boolean, timeoutMs = EVENT_TIMEOUT_MS): Promise<LogLine> {
    const seen = this.logs.length;
    return this.waitForLog((line) => this.logs.indexOf(line) >= seen && match(line), timeoutMs);
  }

  /** GET on the monitoring server: status and body. */
  async http(path: string): Promise<{ status: number; body: string }> {
    if (this.monitoringPort === 0) throw new Error('the monitoring server is off');
    const response = await fetch(`http://127.0.0.1:${this.monitoringPort}${path}`, { signal: AbortSignal.timeout(EVENT_TIMEOUT_MS) });
    return { status: response.status, body: await response.text() };
  }

  /** The value of one sample in /metrics (labels as written, e.g. `{phase="idle"}`), or undefined. */
  async metric(name: string, labels = ''): Promise<number | undefined> {
    const { body } = await this.http('/metrics');
    const prefix = `${name}${labels} `;
    const line = body.split('\n').find((text) => text.startsWith(prefix));
    return line === undefined ? undefined : Number(line.slice(prefix.length));
  }

  /**
   * Waits for a `connection closed` summary logged at or after `mark`: a client can exit as soon as
   * its channel closes, before the server has logged the connection's end.
   */
  waitForSummarySince(mark: number, match: (line: LogLine) => boolean = () => true, timeoutMs = EVENT_TIMEOUT_MS): Promise<LogLine> {
    return this.waitForLogSince(mark, (line) => line.msg === 'connection closed' && match(line), timeoutMs);
  }

  /** The `connection closed` summaries logged so far. */
  summaries(): LogLine[] {
    return this.logs.filter((line) => line.msg === 'connection closed');
  }

  /** Signals the server alone (as its supervisor would); the whole group is killed if it has not exited after a minute. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.exitCode === undefined) this.child.kill(signal);
    const timer = setTimeout(() => void killGroup(this.child), EVENT_TIMEOUT_MS);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** Stops the server and everything it started, and removes its directory. Safe to call twice. */
  async dispose(): Promise<void> {
    try {
      await this.stop();
    } finally {
      await killGroup(this.child);
      removeTemporaryDir(this.dir);
    }
  }
}

export function writeUsers(file: string, users: UserSpec[]): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, stringify({ users: users.map((user) => ({ name: user.name, keys: user.keys, access: user.access ?? {} })) }));
}

/** The users list most tests need: alice, admin of everything, with one key. */
export function adminUsers(key: { publicLine: string }): UserSpec[] {
  return [{ name: 'alice', keys: [key.publicLine], access: { '*': 'admin' } }];
}
