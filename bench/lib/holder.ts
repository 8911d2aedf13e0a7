import ssh2 from 'ssh2';
import type { RunningServer } from './servers.js';

export interface Held {
  readonly clients: ssh2.Client[];
  readonly failed: number;
  readonly firstError: string | undefined;
}

/**
 * Opens `count` authenticated SSH connections from this process (ssh2's client: one
 * process can hold thousands, where as many OpenSSH clients would not fit in memory),
 * `parallel` at a time. With `session`, each runs git-upload-pack and waits after its
 * advertisement, as a client that has not yet said what it wants.
 */
export async function hold(server: RunningServer, privateKey: Buffer, count: number, options: { session?: string; parallel?: number } = {}): Promise<Held> {
  const clients: ssh2.Client[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const client = new ssh2.Client();
      const fail = (err: Error): void => {
        failed += 1;
        firstError ??= err.message;
        client.end();
        resolve();
      };
      client.once('error', fail);
      client.once('ready', () => {
        client.removeListener('error', fail);
        client.on('error', () => undefined);
        clients.push(client);
        if (!options.session) return resolve();
        client.exec(`git-upload-pack '${options.session}'`, (err, stream) => {
          if (err) return fail(err);
          stream.on('error', () => undefined);
          stream.stderr.on('data', () => undefined);
          // The advertisement has come: the session now waits for the client.
          stream.once('data', () => {
            stream.pause();
            resolve();
          });
        });
      });
      client.connect({
        host: '127.0.0.1',
        port: server.port,
        username: server.user,
        privateKey,
        readyTimeout: 120_000,
        keepaliveInterval: 0,
        hostVerifier: () => true,
      });
    });
  const worker = async (): Promise<void> => {
    while (next < count) {
      next += 1;
      await one();
    }
  };
  await Promise.all(Array.from({ length: options.parallel ?? 20 }, worker));
  return { clients, failed, firstError };
}

export async function release(held: Held): Promise<void> {
  await Promise.all(
    held.clients.map(
      (client) =>
        new Promise<void>((resolve) => {
          client.once('close', () => resolve());
          client.end();
          setTimeout(resolve, 5_000).unref();
        }),
    ),
  );
}
