import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from '../config/types.js';

export type { Logger };

const REDACT = ['secret', 'password', 'token', '*.secret', '*.password', '*.token', 'privateKey', '*.privateKey'];

/**
 * The process logger: JSON lines by default (what log shippers want); `text` (gitlab-shell's
 * other format) is one readable line per event. Secrets and key material are never passed
 * in; the redact list is the safety net for fields that could carry them.
 */
export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat' | 'logFile'>, stream?: DestinationStream): Logger {
  const toFile = config.logFile !== '' && config.logFile !== '/dev/stdout';
  const dest = toFile ? config.logFile : 1;
  const destination =
    stream ??
    (config.logFormat === 'text'
      ? pretty({ destination: dest, colorize: false, singleLine: true, sync: true, mkdir: toFile, translateTime: 'SYS:standard' })
      : pino.destination({ dest, sync: false, mkdir: toFile }));
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
