import type { Session as Ssh2Session } from 'ssh2';
import type { Logger } from '../logging/logger.js';

const EXIT_REFUSED = 1;

/**
 * A session that may not run anything: its command (or shell) gets `message` on stderr
 * and exit status 1, so that the user reads why instead of a bare "channel open failed".
 * Resolves once the channel has closed.
 */
export function refuseSession(session: Ssh2Session, message: string, log: Logger): Promise<void> {
  return new Promise((resolve) => {
    let answered = false;
    session.on('close', () => resolve());
    const answer = (accept: () => import('ssh2').ServerChannel, reject: (() => void) | undefined): void => {
      if (answered) {
        reject?.();
        return;
      }
      answered = true;
      const channel = accept();
      channel.on('error', (err: Error) => log.debug({ err }, 'channel error'));
      channel.stderr.on('error', (err: Error) => log.debug({ err }, 'channel stderr error'));
      channel.resume();
      channel.stderr.write(message.endsWith('\n') ? message : `${message}\n`);
      channel.exit(EXIT_REFUSED);
      channel.end();
    };
    session.on('exec', (accept, reject) => answer(accept, reject));
    session.on('shell', (accept, reject) => answer(accept, reject));
    for (const refused of ['env', 'pty', 'x11', 'subsystem', 'sftp', 'auth-agent', 'signal', 'window-change'] as const) {
      session.on(refused as 'pty', (_accept: unknown, reject: (() => void) | undefined) => reject?.());
    }
  });
}
