import { mkdirSync } from 'node:fs';
import { LocalBackend } from './backends/local/localBackend.js';
import { UsersStore } from './backends/local/usersStore.js';
import { loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { GitSshdError } from './errors.js';
import { LocalGitTransport } from './git/localTransport.js';
import { Lifecycle } from './lifecycle/lifecycle.js';
import { drain } from './lifecycle/shutdown.js';
import { createLogger, type Logger } from './logging/logger.js';
import { Listener } from './server/listener.js';
import { plainAddress } from './server/address.js';
import { loadHostKeys } from './ssh/hostkeys/hostKeys.js';
import { SshServer } from './ssh/server.js';
import { readVersion } from './version.js';

const EXIT_CONFIG = 2;
const EXIT_START = 1;

/** The composition root: config, then every object, wired; then signals. */
async function start(config: Config, warnings: readonly string[], log: Logger): Promise<void> {
  const version = readVersion();
  const lifecycle = new Lifecycle();
  for (const warning of warnings) log.warn(warning);

  mkdirSync(config.local.reposDir, { recursive: true, mode: 0o750 });
  const users = new UsersStore({ file: config.local.usersFile, createIfMissing: !config.local.usersFileExplicit, log });
  users.watch();
  const backend = new LocalBackend({ users, reposDir: config.local.reposDir, gitEnv: config.gitEnv, log });
  const hostKeys = loadHostKeys({ files: config.sshd.hostKeyFiles, dataDir: config.local.dataDir, log });
  const transport = new LocalGitTransport({ baseEnv: config.gitEnv, log });
  // git runs in process groups of its own, which do not die with us: take them along.
  process.on('exit', () => transport.killAll());
  const ssh = new SshServer({ config, hostKeys, backend, transport, log, signal: lifecycle.root.signal, version });
  const listener = new Listener({
    address: config.sshd.listen,
    log,
    onSocket: (socket) => ssh.handleSocket(socket, { ip: plainAddress(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 }),
  });

  const address = await listener.listen();
  lifecycle.moveTo('ready');
  log.info({ address: address.address, port: address.port, version, backend: config.backend, config: config.source }, 'listening');

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      log.flush();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    log.info({ signal }, 'shutdown requested');
    void drain({
      lifecycle,
      log,
      gracePeriodMs: config.sshd.gracePeriodMs,
      target: { stopAccepting: () => listener.close(), allClosed: () => ssh.allClosed(), get connectionCount() { return ssh.connectionCount; } },
    })
      .then(() => backend.close())
      .then(() => {
        log.flush();
        process.exitCode = 0;
        setTimeout(() => process.exit(0), 50).unref();
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

function main(): void {
  let loaded;
  try {
    loaded = loadConfig({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() });
  } catch (err) {
    process.stderr.write(`git-sshd: ${(err as Error).message}\n`);
    process.exit(EXIT_CONFIG);
  }
  const log = createLogger(loaded.config);
  // Every socket, connection and channel has its own error listener; reaching these means
  // a bug. Log it with its stack, then exit so that the orchestrator restarts us clean.
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception');
    log.flush();
    process.exit(EXIT_START);
  });
  process.on('unhandledRejection', (reason) => {
    log.fatal({ err: reason }, 'unhandled promise rejection');
    log.flush();
    process.exit(EXIT_START);
  });
  start(loaded.config, loaded.warnings, log).catch((err: unknown) => {
    const message = err instanceof GitSshdError ? err.message : (err as Error).message;
    log.fatal({ err }, 'cannot start');
    log.flush();
    process.stderr.write(`git-sshd: cannot start: ${message}\n`);
    setTimeout(() => process.exit(EXIT_START), 50);
  });
}

main();
