import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { makeKey, makeWorkTree, git, run, ssh, sshArgs, url, type ClientKey } from './helpers/client.js';
import { killGroup, spawnGroup } from './helpers/processes.js';
import { TestServer } from './helpers/server.js';

describe('the SSH session rules', () => {
  let server: TestServer;
  let alice: ClientKey;
  let stranger: ClientKey;
  let rsa: ClientKey;
  let ecdsa: ClientKey;

  before(async () => {
    alice = makeKey('ed25519');
    stranger = makeKey('ed25519');
    rsa = makeKey('rsa');
    ecdsa = makeKey('ecdsa');
    server = await TestServer.start({
      users: [
        { name: 'alice', keys: [alice.publicLine], access: { '*': 'admin' } },
        { name: 'rosa', keys: [rsa.publicLine, ecdsa.publicLine], access: { docs: 'read' } },
      ],
    });
    const work = makeWorkTree();
    const pushed = await git(alice, server.port, ['push', url(server.port, 'docs'), 'main'], work);
    assert.equal(pushed.code, 0, pushed.stderr);
  });

  after(() => server.dispose());

  test('a shell request prints the welcome line and exits 0', async () => {
    const result = await ssh(alice, server.port, [], ['-T']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'Welcome to git-sshd, @alice!\n');
  });

  test('RSA and ECDSA user keys authenticate too', async () => {
    for (const key of [rsa, ecdsa]) {
      const result = await ssh(key, server.port, []);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, 'Welcome to git-sshd, @rosa!\n');
    }
  });

  test('an unknown command exits 128 with an ERROR line', async () => {
    const result = await ssh(alice, server.port, ['rm', '-rf', '/']);
    assert.equal(result.code, 128);
    assert.match(result.stderr, /^ERROR: Unknown command: rm$/m);
  });

  test('in a terminal, the PTY is refused and the welcome still comes', async () => {
    // `script` gives ssh a real terminal, as a person typing `ssh git@host` has; OpenSSH
    // then asks for a PTY on its own and treats the refusal as a warning.
    const command = ['ssh', ...sshArgs(alice, server.port), 'git@127.0.0.1'].join(' ');
    const result = await run('script', ['-qec', command, '/dev/null']);
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, /PTY allocation request failed/);
    assert.match(result.stdout, /Welcome to git-sshd, @alice!/);
  });

  test('an explicit ssh -t gets its PTY request refused', async () => {
    // With -t OpenSSH itself gives up when the PTY is refused (its rule, not ours).
    const result = await ssh(alice, server.port, ['git-upload-pack', 'docs'], ['-tt']);
    assert.match(result.stderr, /PTY allocation request failed/);
    await server.waitForLog((line) => line.msg === 'refused session request' && line.request === 'pty');
  });

  test('local port forwarding is refused', async () => {
    const target = createServer((socket) => socket.end('reached\n')).listen(0, '127.0.0.1');
    await once(target, 'listening');
    const targetPort = (target.address() as AddressInfo).port;
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const localPort = (probe.address() as AddressInfo).port;
    probe.close();
    const forwarder = spawnGroup('ssh', [...sshArgs(alice, server.port, ['-N', '-L', `${localPort}:127.0.0.1:${targetPort}`]), 'git@127.0.0.1']);
    const stderr: Buffer[] = [];
    forwarder.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    try {
      let received = '';
      // Refused until ssh has logged in and bound the port: on a busy machine that takes seconds (bounded: a minute).
      for (let attempt = 0; attempt < 1200 && received === ''; attempt++) {
        received = await new Promise<string>((resolve) => {
          const socket = connect(localPort, '127.0.0.1');
          let data = '';
          socket.on('data', (chunk) => (data += chunk.toString()));
          socket.on('error', () => resolve('refused'));
          socket.on('close', () => resolve(data === '' ? 'closed' : data));
        });
        if (received === 'refused') {
          received = '';
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      assert.equal(received, 'closed');
      await server.waitForLog((line) => line.msg === 'refused port forwarding');
    } finally {
      await killGroup(forwarder);
      target.close();
    }
  });

  test('remote port forwarding is refused', async () => {
    const result = await ssh(alice, server.port, [], ['-o', 'ExitOnForwardFailure=yes', '-R', '0:127.0.0.1:9', '-N']);
    assert.equal(result.code, 255);
    assert.match(result.stderr, /remote port forwarding failed/i);
  });

  test('environment variables other than GIT_PROTOCOL are ignored', async () => {
    const result = await ssh(alice, server.port, [], ['-o', 'SetEnv=LD_PRELOAD=/tmp/evil.so GIT_PROTOCOL=version=2']);
    assert.equal(result.code, 0);
    await server.waitForLog((line) => line.msg === 'refused environment variable' && line.name === 'LD_PRELOAD');
  });

  test('a user name other than git is refused', async () => {
    const result = await ssh(alice, server.port, [], [], 'root');
    assert.equal(result.code, 255);
    assert.match(result.stderr, /Permission denied/);
  });

  test('an unknown key is refused and never reaches a command', async () => {
    const result = await ssh(stranger, server.port, ['git-upload-pack', 'docs']);
    assert.equal(result.code, 255);
    assert.match(result.stderr, /Permission denied \(publickey\)/);
    const summary = await server.waitForLog((line) => line.msg === 'connection closed' && line.auth === 'unknown_key');
    assert.deepEqual(summary.sessions, []);
  });

  test('password and keyboard-interactive logins are not offered', async () => {
    const result = await ssh(stranger, server.port, [], ['-o', 'PreferredAuthentications=password,keyboard-interactive']);
    assert.equal(result.code, 255);
    assert.match(result.stderr, /Permission denied \(publickey\)/);
  });

  test('a key is first only found acceptable, and accepted once its signature verifies', async () => {
    const before = server.summaries().length;
    const result = await ssh(alice, server.port, []);
    assert.equal(result.code, 0);
    await server.waitForLog((line) => line.msg === 'connection closed' && server.summaries().length > before);
    const attempts = server.logs.filter((line) => line.msg === 'authentication attempt' && line.method === 'publickey');
    assert.ok(attempts.some((line) => line.outcome === 'key_acceptable'));
    assert.ok(attempts.some((line) => line.outcome === 'accepted'));
  });
});
