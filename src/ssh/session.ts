import type { Session as Ssh2Session, ServerChannel } from 'ssh2';
import type { AccessBackend, Identity } from '../backends/backend.js';
import { parseCommand, unknownCommand, type Command } from '../commands/parse.js';
import { ERR_BAD_COMMAND, ERR_INTERNAL, ERR_UNKNOWN_COMMAND, GitSshdError } from '../errors.js';
import type { GitTransport } from '../git/transport.js';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../monitoring/metrics.js';
import { ChannelOutput } from './channelOutput.js';
import { watchIdle } from './idleWatch.js';
import { line } from './streams.js';
import type { Socket } from 'node:net';

/** How a command ended, as counted: ok, git failed, the user was denied, we failed, or the server cut it. */
type CommandResult = 'ok' | 'failed' | 'denied' | 'unknown_command' | 'bad_command' | 'error' | 'cut';

/** What one session did, for the connection's summary line. */
export interface SessionRecord {
  command: string;
  repo?: string;
  exitStatus?: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  error?: string;
  /** Set when the command did not get to run: denied (policy), a command we do not run or cannot parse, or error (ours). */
  result?: 'denied' | 'unknown_command' | 'bad_command' | 'error';
}

export interface SessionOptions {
  readonly session: Ssh2Session;
  /** The connection's socket: its send buffer bounds how fast we produce output. */
  readonly socket: Socket;
  readonly identity: Identity;
  readonly backend: AccessBackend;
  readonly transport: GitTransport;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Aborted when the connection goes away (or the server stops). */
  readonly signal: AbortSignal;
  readonly correlationId: string;
  readonly clientIp: string;
  /** Called when the client breaks the protocol in a way that ends the whole connection. */
  readonly onViolation: (reason: string) => void;
  /** Close the session once its channel has been silent both ways this long; 0 = never. */
  readonly idleTimeoutMs?: number;
}

const GIT_PROTOCOL_VALUE = /^[A-Za-z0-9=:._-]{1,256}$/;
/** ssh2 queues what a client sends past its window instead of refusing it: cap the queue. */
const MAX_UNREAD_INPUT = 4 * 1024 * 1024;
/** ssh2 loops forever writing to a channel whose maximum packet size is 0; refuse tiny ones. */
const MIN_PACKET_SIZE = 1024;
/** How long a client may take to acknowledge our close of its channel. */
const CLOSE_ACK_TIMEOUT_MS = 10_000;
const EXIT_UNKNOWN_COMMAND = 128;
/** How long an idle session's notice may take to be written before its channel is closed. */
const IDLE_NOTICE_TIMEOUT_MS = 2000;
const EXIT_FAILURE = 1;

/**
 * One `session` channel: at most one command. Only GIT_PROTOCOL may be set; terminals,
 * subsystems, X11 and agent forwarding are refused. Output is flushed before the exit
 * status, and the channel is closed only after both.
 */
export class Session {
  private readonly options: SessionOptions;
  private readonly abort = new AbortController();
  private gitProtocol: string | undefined;
  private started = false;
  private channel: ServerChannel | undefined;
  private channelClosed: Promise<void> | undefined;
  private running = false;
  private wasCut = false;
  /** A bounded label for the command: welcome, a git service or unknown. */
  private commandLabel = 'unknown';
  readonly done: Promise<SessionRecord | undefined>;
  private finish!: (record: SessionRecord | undefined) => void;
  private detach: () => void = () => undefined;

  constructor(options: SessionOptions) {
    this.options = options;
    this.done = new Promise((resolve) => {
      this.finish = (record) => {
        this.detach();
        resolve(record);
      };
    });
    const { session, log } = options;
    // ssh2 emits no 'close' for a session whose connection dropped before a command was
    // run: finish here too, or the connection would wait for this session forever.
    const onParentAbort = (): void => {
      this.abort.abort(options.signal.reason);
      if (!this.started) this.finish(undefined);
    };
    options.signal.addEventListener('abort', onParentAbort, { once: true });
    this.detach = () => options.signal.removeEventListener('abort', onParentAbort);

    session.on('env', (accept, reject, info) => {
      if (info.key === 'GIT_PROTOCOL' && GIT_PROTOCOL_VALUE.test(info.val) && !this.started) {
        this.gitProtocol = info.val;
        accept?.();
      } else {
        log.debug({ name: String(info.key).slice(0, 64) }, 'refused environment variable');
        reject?.();
      }
    });
    for (const refused of ['pty', 'x11', 'subsystem', 'sftp', 'auth-agent', 'signal', 'window-change'] as const) {
      session.on(refused as 'pty', (_accept: unknown, reject: (() => void) | undefined) => {
        log.debug({ request: refused }, 'refused session request');
        reject?.();
      });
    }
    session.on('shell', (accept, reject) => this.start('', accept, reject));
    session.on('exec', (accept, reject, info) => this.start(info.command, accept, reject));
    session.on('close', () => {
      this.abort.abort(new Error('session closed'));
      if (!this.started) this.finish(undefined);
    });
  }

  private start(command: string, accept: () => ServerChannel, reject: (() => void) | undefined): void {
    if (this.started) {
      reject?.();
      return;
    }
    this.started = true;
    const channel = accept();
    this.channel = channel;
    channel.on('error', (err: Error) => this.options.log.debug({ err }, 'channel error'));
    channel.stderr.on('error', (err: Error) => this.options.log.debug({ err }, 'channel stderr error'));
    const closed = new Promise<void>((resolve) => channel.once('close', resolve));
    this.channelClosed = closed;
    const packetSize = (channel.outgoing as { packetSize: number }).packetSize;
    if (packetSize < MIN_PACKET_SIZE) {
      this.violation(`maximum packet size ${packetSize} is too small`);
      this.finish(undefined);
      return;
    }
    this.capUnreadInput(channel);
    const idleTimeoutMs = this.options.idleTimeoutMs ?? 0;
    if (idleTimeoutMs > 0) void closed.then(watchIdle(channel, idleTimeoutMs, (idleMs) => void this.closeIdle(idleMs, idleTimeoutMs)));
    this.running = true;
    void this.run(command, channel)
      .then(async (record) => {
        this.running = false;
        // Input nobody will read is dropped, not kept; the session still counts against the
        // limit until the client acknowledges the close, so unacknowledged channels cannot pile up.
        channel.resume();
        const acknowledged = await Promise.race([
          closed.then(() => true),
          aborted(this.abort.signal),
          delay(CLOSE_ACK_TIMEOUT_MS, false),
        ]);
        if (!acknowledged && !this.abort.signal.aborted) this.violation('channel close not acknowledged');
        return record;
      })
      .then((record) => this.finish(record));
  }

  /**
   * The server is stopping and this command has run out of time: its git process is
   * killed and the client reads why on stderr before the connection closes. Resolves true
   * if a command was running, once the notice is written or `timeoutMs` has passed.
   */
  async cut(notice: string, timeoutMs: number, reason = 'server stopping'): Promise<boolean> {
    const channel = this.channel;
    const closed = this.channelClosed;
    if (!this.running || !channel || !closed || this.abort.signal.aborted) return false;
    this.wasCut = true;
    this.abort.abort(new Error(reason));
    const deadline = delay(timeoutMs, false);
    const written = new Promise<boolean>((resolve) => {
      try {
        channel.stderr.write(notice, () => resolve(true));
      } catch {
        resolve(false);
      }
    });
    await Promise.race([written, deadline]);
    // Closing the channel, not just the connection: OpenSSH writes out what a channel
    // received before it handles the channel's close, but may exit on a disconnect with
    // the notice still in its buffer.
    try {
      channel.close();
    } catch {
      // Already closed.
    }
    await Promise.race([closed, deadline]);
    return true;
  }

  /** Nothing moved either way for the idle timeout: git gets EOF and the user reads why. */
  private async closeIdle(idleMs: number, timeoutMs: number): Promise<void> {
    const notice = `git-sshd: this session was idle for ${formatDuration(timeoutMs)} (nothing sent or received) and has been closed.\n`;
    if (!(await this.cut(notice, IDLE_NOTICE_TIMEOUT_MS, 'session idle'))) return;
    this.options.metrics.sessionsIdleClosed.inc();
    this.options.log.info({ idle_ms: Math.round(idleMs), command: this.commandLabel }, 'idle session closed');
  }

  private violation(reason: string): void {
    if (this.abort.signal.aborted) return;
    this.options.log.warn({ reason }, 'protocol violation; closing the connection');
    this.abort.abort(new Error(reason));
    this.options.onViolation(reason);
  }

  /**
   * A client must not send past the window we granted, but ssh2 queues such data anyway,
   * also while nobody reads the channel (a welcome, a denied command). A client that
   * floods is cut off instead of filling our memory.
   */
  private capUnreadInput(channel: ServerChannel): void {
    const push = channel.push.bind(channel);
    channel.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (this.abort.signal.aborted && Buffer.isBuffer(chunk)) return false;
      if (Buffer.isBuffer(chunk) && channel.readableLength + chunk.length > MAX_UNREAD_INPUT) {
        this.options.log.warn({ unread: channel.readableLength }, 'client sent past its window; closing the session');
        this.violation('data sent past the channel window');
        return false;
      }
      return push(chunk, encoding);
    };
  }

  private async run(commandText: string, channel: ServerChannel): Promise<SessionRecord> {
    const started = performance.now();
    const signal = this.abort.signal;
    const record: SessionRecord = { command: summarize(commandText), bytesIn: 0, bytesOut: 0, durationMs: 0 };
    const output = new ChannelOutput(channel, this.options.socket, signal);
    let exitStatus: number;
    try {
      const command = parseCommand(commandText);
      exitStatus = await this.execute(command, channel, output, record);
    } catch (err) {
      exitStatus = await this.report(err, output, record);
    }
    record.exitStatus = exitStatus;
    record.bytesOut = output.bytes;
    record.durationMs = Math.round(performance.now() - started);
    const result: CommandResult = this.wasCut ? 'cut' : (record.result ?? (exitStatus === 0 ? 'ok' : 'failed'));
    this.options.metrics.commands.inc({ command: this.commandLabel, result });
    if (!signal.aborted) {
      channel.exit(exitStatus);
      channel.end();
    }
    return record;
  }

  private async execute(command: Command, channel: ServerChannel, output: ChannelOutput, record: SessionRecord): Promise<number> {
    const { backend, identity, transport } = this.options;
    const signal = this.abort.signal;
    const context = { signal, correlationId: this.options.correlationId, clientIp: this.options.clientIp };
    if (command.kind === 'welcome') {
      this.commandLabel = 'welcome';
      await output.write('stdout', line(await backend.welcome(identity, context)));
      return 0;
    }
    if (command.kind === 'backend') {
      const handler = backend.commands?.get(command.name);
      if (!handler) throw unknownCommand(command.name, backend.commands === undefined);
      this.commandLabel = command.name;
      record.command = command.name;
      const io = { stdin: channel, write: (stream: 'stdout' | 'stderr', text: string) => output.write(stream, Buffer.from(text)) };
      return handler.run(identity, command.args, io, context);
    }
    this.commandLabel = command.service;
    record.command = command.service;
    // As asked for: a refusal is logged with the repository the client named.
    record.repo = summarize(command.repo);
    const target = await backend.authorizeGit(identity, command.service, command.repo, context);
    record.repo = target.repo;
    await writeConsoleMessages(output, target.consoleMessages ?? []);
    this.options.log.debug({ command: command.service, repo: target.repo }, 'running git');
    const outcome = await transport.run({
      service: command.service,
      target,
      gitProtocol: this.gitProtocol,
      stdin: channel,
      output,
      signal,
    });
    record.bytesIn = outcome.bytesIn;
    if (outcome.exitCode === 0 && target.afterSuccess) {
      await target.afterSuccess().catch((err: unknown) => this.options.log.error({ err, repo: target.repo }, 'after-push upkeep failed'));
    }
    return outcome.exitCode;
  }

  /** Policy errors are the user's to read; system errors get a short line and a log entry. */
  private async report(err: unknown, output: ChannelOutput, record: SessionRecord): Promise<number> {
    const signal = this.abort.signal;
    let message: string;
    let exitStatus = EXIT_FAILURE;
    if (err instanceof GitSshdError && err.errorClass === 'policy') {
      message = err.message;
      record.error = err.code;
      record.result = err.code === ERR_UNKNOWN_COMMAND ? 'unknown_command' : err.code === ERR_BAD_COMMAND ? 'bad_command' : 'denied';
      if (record.result !== 'denied') exitStatus = EXIT_UNKNOWN_COMMAND;
      this.options.log.info({ command: record.command, repo: record.repo, error: err.code, reason: message }, 'command refused');
    } else {
      const said = err instanceof GitSshdError ? err.userMessage : undefined;
      message = `${said ?? 'internal server error'} (correlation id ${this.options.correlationId})`;
      record.error = err instanceof GitSshdError ? err.code : ERR_INTERNAL;
      // Failing because the client left or the server is stopping is nobody's error.
      if (!signal.aborted) {
        record.result = 'error';
        this.options.metrics.sliSessionErrors.inc();
        this.options.log.error({ err }, 'command failed');
      }
    }
    if (err instanceof GitSshdError && !signal.aborted) await writeConsoleMessages(output, err.consoleMessages).catch(() => undefined);
    const formatted = this.options.backend.formatError?.(message);
    const text = formatted === undefined ? line(`ERROR: ${message}`) : Buffer.from(formatted);
    if (!signal.aborted) await output.write('stderr', text).catch(() => undefined);
    return exitStatus;
  }
}

/** Messages for the user before git runs (or before an error), framed as git frames the server's own. */
async function writeConsoleMessages(output: ChannelOutput, messages: readonly string[]): Promise<void> {
  const shown = messages.filter((message) => message.trim() !== '');
  if (shown.length === 0) return;
  await output.write('stderr', Buffer.from(['remote: ', ...shown.map((message) => `remote: ${message}`), 'remote: ', ''].join('\n')));
}

/** Resolves (true: nothing left to wait for) once the signal aborts. */
function aborted(signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(true), { once: true }));
}

function delay<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), ms).unref());
}

function formatDuration(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 100) / 10} s`;
}

/** The command as logged: printable, and at most 200 characters of it. */
function summarize(command: string): string {
  const text = command.replace(/[^\x20-\x7e]/g, '?');
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}
