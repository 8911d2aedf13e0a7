import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { makeKey, ssh, type ClientKey } from './helpers/client.js';
import { TestServer } from './helpers/server.js';

const { Client } = ssh2;

describe('an authenticated client that breaks the SSH protocol', () => {
  let server: TestServer;
  let key: ClientKey;

  before(async () => {
    key = makeKey();
    server = await TestServer.start({ users: [{ name: 'alice', keys: [key.publicLine], access: { '*': 'admin' } }] });
  });

  after(() => server.dispose());

  test('a session with a maximum packet size of 0 is refused instead of hanging the server', async () => {
    const client = new Client();
    client.on('error', () => undefined);
    client.on('ready', () => {
      // ssh2's own client always asks for sane sizes; reach past it, as an attacker would.
      const protocol = (client as unknown as { _protocol: { session: (...args: number[]) => void } })._protocol;
      const open = protocol.session.bind(protocol);
      protocol.session = (channel: number, window: number) => open(channel, window, 0);
      client.exec('', () => undefined);
    });
    const violation = server.nextLog((line) => line.msg === 'protocol violation; closing the connection');
    // Listened for before connecting: the close can come before the log line is read.
    const closed = once(client, 'close');
    client.connect({ host: '127.0.0.1', port: server.port, username: 'git', privateKey: readFileSync(key.path), readyTimeout: 60_000 });
    const logged = await violation;
    assert.match(String(logged.reason), /packet size 0/);
    await closed;
    const welcome = await ssh(key, server.port);
    assert.equal(welcome.stdout, 'Welcome to git-sshd, @alice!\n');
  });
});
