import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from '../config/types.js';
import { textLine } from './textLine.js';

export type { Logger };

const REDACT = ['secret', 'password', 'token', '*.secret', '*.password', '*.token', 'privateKey', '*.privateKey'];

export interface LoggerOptions {
  /** Where lines go instead of stdout or `log_file` (tests). */
  readonly stream?: DestinationStream;
  /** Whether standard output is a terminal: `log_format: auto` writes text there, JSON otherwise. */
  readonly stdoutIsTty?: boolean;
}

/** The format `auto` stands for: a person at a terminal reads text; pipes, files and log shippers get JSON. */
export function resolveLogFormat(config: Pick<Config, 'logFormat' | 'logFile'>, stdoutIsTty: boolean): 'json' | 'text' {
  if (config.logFormat !== 'auto') return config.logFormat;
  return stdoutIsTty && !toFile(config) ? 'text' : 'json';
}

function toFile(config: Pick<Config, 'logFile'>): boolean {
  return config.logFile !== '' && config.logFile !== '/dev/stdout';
}

/**
 * The process logger: JSON lines for machines; `text` (gitlab-shell's other format) is one
 * readable line per event, `time LEVEL message key=value ...`, coloured on a terminal.
 * Secrets and key material are never passed in; the redact list is the safety net for
 * fields that could carry them.
 */
export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat' | 'logFile'>, options: LoggerOptions = {}): Logger {
  const dest = toFile(config) ? config.logFile : 1;
  const stdoutIsTty = options.stdoutIsTty ?? process.stdout.isTTY === true;
  const format = resolveLogFormat(config, stdoutIsTty);
  const destination =
    options.stream ??
    (format === 'text'
      ? pretty({
          destination: dest,
          colorize: stdoutIsTty && !toFile(config),
          sync: true,
          mkdir: toFile(config),
          translateTime: 'SYS:HH:MM:ss.l',
          ignore: 'pid,hostname,service',
          hideObject: true,
          messageFormat: (log, messageKey) => textLine(log, messageKey),
        })
      : pino.destination({ dest, sync: false, mkdir: toFile(config) }));
  return pino(
    {
      level: config.logLevel,
      base: { service: 'git-sshd' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    destination,
  );
}
