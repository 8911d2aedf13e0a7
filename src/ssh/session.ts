import type { Session as Ssh2Session, ServerChannel } from 'ssh2';
import type { AccessBackend, Identity } from '../backends/backend.js';
import { parseCommand, type Command } from '../commands/parse.js';
import { ERR_BAD_COMMAND, ERR_UNKNOWN_COMMAND, GitSshdError } from '../errors.js';
import type { GitTransport } from '../git/transport.js';
import type { Logger } from '../logging/logger.js';
import { writeLine } from './streams.js';

/** What one session did, for the connection's summary line. */
export interface SessionRecord {
  command: string;
  repo?: string;
  exitStatus?: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  error?: string;
}

export interface SessionOptions {
  readonly session: Ssh2Session;
  readonly identity: Identity;
  readonly backend: AccessBackend;
  readonly transport: GitTransport;
  readonly log: Logger;
  /** Aborted when the connection goes away (or the server stops). */
  readonly signal: AbortSignal;
  readonly correlationId: string;
}

const GIT_PROTOCOL_VALUE = /^[A-Za-z0-9=:._-]{1,256}$/;
const EXIT_UNKNOWN_COMMAND = 128;
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
  readonly done: Promise<SessionRecord | undefined>;
  private finish!: (record: SessionRecord | undefined) => void;

  constructor(options: SessionOptions) {
    this.options = options;
    this.done = new Promise((resolve) => (this.finish = resolve));
    const { session, log } = options;
    const onParentAbort = (): void => this.abort.abort(options.signal.reason);
    options.signal.addEventListener('abort', onParentAbort, { once: true });

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
      options.signal.removeEventListener('abort', onParentAbort);
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
    channel.on('error', (err: Error) => this.options.log.debug({ err }, 'channel error'));
    channel.stderr.on('error', (err: Error) => this.options.log.debug({ err }, 'channel stderr error'));
    void this.run(command, channel).then((record) => this.finish(record));
  }

  private async run(commandText: string, channel: ServerChannel): Promise<SessionRecord> {
    const started = performance.now();
    const signal = this.abort.signal;
    const record: SessionRecord = { command: summarize(commandText), bytesIn: 0, bytesOut: 0, durationMs: 0 };
    let exitStatus: number;
    try {
      const command = parseCommand(commandText);
      exitStatus = await this.execute(command, channel, record);
    } catch (err) {
      exitStatus = await this.report(err, channel, record);
    }
    record.exitStatus = exitStatus;
    record.durationMs = Math.round(performance.now() - started);
    if (!signal.aborted) {
      channel.exit(exitStatus);
      channel.end();
    }
    return record;
  }

  private async execute(command: Command, channel: ServerChannel, record: SessionRecord): Promise<number> {
    const { backend, identity, transport } = this.options;
    const signal = this.abort.signal;
    if (command.kind === 'welcome') {
      await writeLine(channel, await backend.welcome(identity, signal), signal);
      return 0;
    }
    record.command = command.service;
    const target = await backend.authorizeGit(identity, command.service, command.repo, signal);
    record.repo = target.repo;
    const outcome = await transport.run({
      service: command.service,
      target,
      gitProtocol: this.gitProtocol,
      stdin: channel,
      stdout: channel,
      stderr: channel.stderr,
      signal,
    });
    record.bytesIn = outcome.bytesIn;
    record.bytesOut = outcome.bytesOut;
    if (outcome.exitCode === 0 && target.afterSuccess) {
      await target.afterSuccess().catch((err: unknown) => this.options.log.error({ err, repo: target.repo }, 'after-push upkeep failed'));
    }
    return outcome.exitCode;
  }

  /** Policy errors are the user's to read; system errors get a short line and a log entry. */
  private async report(err: unknown, channel: ServerChannel, record: SessionRecord): Promise<number> {
    const signal = this.abort.signal;
    let message: string;
    let exitStatus = EXIT_FAILURE;
    if (err instanceof GitSshdError && err.errorClass === 'policy') {
      message = err.message;
      record.error = err.code;
      if (err.code === ERR_UNKNOWN_COMMAND || err.code === ERR_BAD_COMMAND) exitStatus = EXIT_UNKNOWN_COMMAND;
    } else {
      message = `internal server error (correlation id ${this.options.correlationId})`;
      record.error = err instanceof GitSshdError ? err.code : 'ERR_INTERNAL';
      if (!signal.aborted) this.options.log.error({ err }, 'command failed');
    }
    if (!signal.aborted) await writeLine(channel.stderr, `ERROR: ${message}`, signal).catch(() => undefined);
    return exitStatus;
  }
}

/** The command as logged: its first two words, never arbitrary client text in full. */
function summarize(command: string): string {
  const text = command.replace(/[^\x20-\x7e]/g, '?');
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}
