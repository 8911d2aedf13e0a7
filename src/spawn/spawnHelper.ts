import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logging/logger.js';
import type { FromHelper, ToHelper } from './protocol.js';
import { signalProcess } from './signal.js';

/** A process the helper started: what the server reads of a ChildProcess. */
export class HelperChild extends EventEmitter<{ exit: [code: number | null, signal: NodeJS.Signals | null] }> {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;

  /** `detached`: the child leads a process group of its own. */
  constructor(
    readonly pid: number,
    readonly detached: boolean,
  ) {
    super();
  }

  /** @internal the helper reported its end. */
  ended(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exitCode !== null || this.signalCode !== null) return;
    this.exitCode = code;
    this.signalCode = signal;
    // A process that exits at once is reported in the same read as its start: the caller
    // awaiting the start listens from the next microtask on, so 'exit' waits one turn of the
    // event loop, as a ChildProcess's does.
    setImmediate(() => this.emit('exit', code, signal));
  }
}

export interface HelperSpawnOptions {
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** A process group of its own (its id is the pid). */
  readonly detached: boolean;
  /** The child's ends of its stdin, stdout and stderr; handed over (closed here) once sent. */
  readonly stdio: readonly [Socket, Socket, Socket];
}

/** Node options that load code (a TypeScript loader when run from the sources): the only ones the helper takes from the server. */
const LOADER_OPTIONS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);

/** The loader options of `execArgv`, with their values (`--import x` or `--import=x`); profilers, inspectors and the test runner's options stay with the server. */
export function loaderOptions(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i += 1) {
    const arg = execArgv[i]!;
    const name = arg.split('=')[0]!;
    if (!LOADER_OPTIONS.has(name)) continue;
    if (arg.includes('=')) kept.push(arg);
    else if (i + 1 < execArgv.length) kept.push(arg, execArgv[(i += 1)]!);
  }
  return kept;
}

/** After a helper that served nothing (it could not start), how long git starts from the server before the next try. */
const RETRY_AFTER_MS = 60_000;

/**
 * Starts git (or any command) from a small helper process instead of the server itself.
 *
 * Node starts a child with fork(2) then exec, from the main thread, and waits there until the
 * exec is done. fork copies the page tables of everything the server has touched: at the
 * server's 120-140 MB that cost 5-9 ms of CPU per start, stopped the event loop for 12-20 ms
 * (every connection waited), and the child paid again to tear the copy down; the parent then
 * faults on the first write to each page it shares. The helper is a Node process that does
 * nothing else, so it stays small and its forks cheap, and the server's loop never waits for
 * one (docs/benchmarks.md, "Connections").
 *
 * The child's stdio are socket pairs the server made (git's stdout read into reused buffers,
 * as before); their other ends go to the helper over IPC and on to the child. Exits come back
 * as messages. If the helper dies, the processes it started are reported killed and their
 * groups are killed (their exit can no longer be seen); the next spawn starts a new helper.
 */
export class SpawnHelper {
  private helper: ChildProcess | undefined;
  private nextId = 1;
  private readonly starting = new Map<number, { readonly detached: boolean; resolve: (child: HelperChild) => void; reject: (err: Error) => void }>();
  private readonly children = new Map<number, HelperChild>();
  private readonly log: Logger;
  private readonly entry: string;
  private readonly execArgv: readonly string[];
  /** Until then, spawns are refused at once (EHELPER): the last helper could not start. */
  private retryAt = 0;
  /** Whether the current helper has answered anything (it runs, as opposed to failing to start). */
  private answered = false;

  constructor(options: { log: Logger; entry?: string }) {
    this.log = options.log;
    // From the sources (a TypeScript loader is running us, and passes itself on in execArgv) or from dist/.
    const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    this.entry = options.entry ?? fileURLToPath(new URL(`./helperMain${extension}`, import.meta.url));
    this.execArgv = loaderOptions(process.execArgv);
  }

  /** The helper's pid, once started (for tests and the log). */
  get pid(): number | undefined {
    return this.helper?.pid;
  }

  spawn(command: string, args: readonly string[], options: HelperSpawnOptions): Promise<HelperChild> {
    if (Date.now() < this.retryAt) return Promise.reject(helperError('the spawn helper could not start recently; not retried yet'));
    let helper: ChildProcess;
    try {
      helper = this.running();
    } catch (err) {
      // fork itself failed (ENOMEM, EAGAIN): the caller starts git itself, and says why if that fails too.
      return Promise.reject(helperError(`cannot start the spawn helper: ${(err as Error).message}`, err));
    }
    const id = this.nextId++;
    return new Promise<HelperChild>((resolve, reject) => {
      this.starting.set(id, { detached: options.detached, resolve, reject });
      this.referenced(true);
      const sent = (err: Error | null): void => {
        if (err) this.settleStart(id, undefined, helperError(`cannot reach the spawn helper: ${err.message}`, err));
      };
      const request: ToHelper = { kind: 'spawn', id, command, args, env: options.env, detached: options.detached, ...(options.cwd !== undefined ? { cwd: options.cwd } : {}) };
      try {
        options.stdio.forEach((socket, index) => {
          const message: ToHelper = { kind: 'stdio', id, index: index as 0 | 1 | 2 };
          helper.send(message, socket, sent);
        });
        helper.send(request, sent);
      } catch (err) {
        // The channel is already closed (the helper could not start, or just died).
        sent(err as Error);
      }
    });
  }

  /** Stops the helper; what it started is killed as when it dies (for tests and a server that is done). A later spawn starts another. */
  close(): void {
    if (this.helper?.connected) this.helper.disconnect();
  }

  private running(): ChildProcess {
    if (this.helper) return this.helper;
    // A process group of its own: a Ctrl-C or a signal to the server's group (which the
    // server takes as a drain) must not kill it, and with it every git it started.
    const helper = fork(this.entry, [], { execArgv: [...this.execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json', detached: true });
    this.helper = helper;
    this.answered = false;
    helper.on('message', (message: FromHelper) => {
      this.answered = true;
      this.receive(message);
    });
    helper.on('error', (err) => {
      this.log.error({ err }, 'spawn helper failed');
      // It never started (EAGAIN, ENOMEM...): no 'close' will come, so it is lost now.
      if (helper.pid === undefined) this.lost(helper, null, null);
    });
    // 'close', not 'exit': every message it sent before it died has been handled by then.
    helper.once('close', (code: number | null, signal: NodeJS.Signals | null) => this.lost(helper, code, signal));
    this.referenced(false);
    return helper;
  }

  private receive(message: FromHelper): void {
    switch (message.kind) {
      case 'spawned': {
        const waiting = this.starting.get(message.id);
        if (!waiting) {
          // Its caller gave up (the channel failed mid-request) and started git itself: this one must not run on unseen.
          signalProcess(message.pid, true, 'SIGKILL');
          break;
        }
        const child = new HelperChild(message.pid, waiting.detached);
        this.children.set(message.id, child);
        this.settleStart(message.id, child);
        break;
      }
      case 'failed':
        this.settleStart(message.id, undefined, Object.assign(new Error(message.message), { code: message.code }));
        break;
      case 'exit': {
        const child = this.children.get(message.id);
        this.children.delete(message.id);
        this.referenced(this.busy());
        child?.ended(message.code, message.signal);
        break;
      }
    }
  }

  private settleStart(id: number, child: HelperChild | undefined, err?: Error): void {
    const waiting = this.starting.get(id);
    if (!waiting) return;
    this.starting.delete(id);
    this.referenced(this.busy());
    if (child) waiting.resolve(child);
    else waiting.reject(err!);
  }

  private lost(helper: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.helper !== helper) return;
    this.helper = undefined;
    if (!this.answered && this.starting.size > 0) {
      this.retryAt = Date.now() + RETRY_AFTER_MS;
      this.log.error({ code, signal, retry_in_ms: RETRY_AFTER_MS }, 'the spawn helper could not start; git starts from the server until it is tried again');
    }
    const orphans = [...this.children.values()];
    if (this.starting.size > 0 || orphans.length > 0) {
      this.log.error({ code, signal, starting: this.starting.size, running: orphans.length }, 'the spawn helper exited; what it was starting failed and what it started is killed');
    }
    for (const id of [...this.starting.keys()]) {
      this.settleStart(id, undefined, helperError(`the spawn helper exited (${signal ?? code})`));
    }
    this.children.clear();
    for (const child of orphans) {
      signalProcess(child.pid, child.detached, 'SIGKILL');
      child.ended(null, 'SIGKILL');
    }
  }

  private busy(): boolean {
    return this.starting.size > 0 || this.children.size > 0;
  }

  /** The helper keeps the server's event loop alive only while something of it is pending. */
  private referenced(busy: boolean): void {
    const helper = this.helper;
    if (!helper) return;
    if (busy) {
      helper.ref();
      helper.channel?.ref();
    } else {
      helper.unref();
      helper.channel?.unref();
    }
  }
}

function helperError(message: string, cause?: unknown): Error {
  return Object.assign(new Error(message), { code: 'EHELPER' }, cause === undefined ? {} : { cause });
}
