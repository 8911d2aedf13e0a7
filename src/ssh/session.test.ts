import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import pino from 'pino';
import type { Session as Ssh2Session } from 'ssh2';
import type { AccessBackend } from '../backends/backend.js';
import type { GitTransport } from '../git/transport.js';
import { Registry } from 'prom-client';
import { Metrics } from '../monitoring/metrics.js';
import { Session } from './session.js';

const unused = (): never => {
  throw new Error('not used in this test');
};

function makeSession(signal: AbortSignal): { session: Session; ssh2Session: EventEmitter } {
  const ssh2Session = new EventEmitter();
  const session = new Session({
    session: ssh2Session as unknown as Ssh2Session,
    socket: new EventEmitter() as unknown as Socket,
    identity: { username: 'alice', keyId: 'k', keyFingerprint: 'SHA256:x' },
    backend: { identify: unused, welcome: unused, authorizeGit: unused, close: unused } as AccessBackend,
    transport: { run: unused } as GitTransport,
    log: pino({ level: 'silent' }),
    metrics: new Metrics(new Registry(), { lifecycleState: () => 'ready', drainSeconds: () => undefined, bytes: () => ({ received: 0, sent: 0 }) }, 'test'),
    signal,
    correlationId: 'test',
    clientIp: '127.0.0.1',
    onViolation: () => undefined,
  });
  return { session, ssh2Session };
}

describe('a session', () => {
  test('finishes when its connection drops before any command, though ssh2 emits no close', { timeout: 60_000 }, async () => {
    const connection = new AbortController();
    const { session } = makeSession(connection.signal);
    connection.abort(new Error('connection closed'));
    // A session that never finished would fail this test by its timeout.
    assert.equal(await session.done, undefined);
  });

  test('finishes when the client closes it before any command', async () => {
    const { session, ssh2Session } = makeSession(new AbortController().signal);
    ssh2Session.emit('close');
    assert.equal(await session.done, undefined);
  });

  test('refuses every environment variable but GIT_PROTOCOL, and odd GIT_PROTOCOL values', () => {
    const { ssh2Session } = makeSession(new AbortController().signal);
    const answers: string[] = [];
    const ask = (key: string, val: string): void => {
      ssh2Session.emit('env', () => answers.push(`${key}=accept`), () => answers.push(`${key}=reject`), { key, val });
    };
    ask('LD_PRELOAD', '/tmp/x.so');
    ask('GIT_PROTOCOL', 'version=2');
    ask('GIT_PROTOCOL', 'version=2\nrm -rf /');
    ask('PATH', '/tmp');
    assert.deepEqual(answers, ['LD_PRELOAD=reject', 'GIT_PROTOCOL=accept', 'GIT_PROTOCOL=reject', 'PATH=reject']);
  });

  test('refuses terminals, subsystems, X11 and agent forwarding', () => {
    const { ssh2Session } = makeSession(new AbortController().signal);
    for (const request of ['pty', 'x11', 'subsystem', 'sftp', 'auth-agent']) {
      let answer = 'none';
      ssh2Session.emit(request, () => (answer = 'accept'), () => (answer = 'reject'), {});
      assert.equal(answer, 'reject', request);
    }
  });
});
