import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { makeKey, ssh, type ClientKey } from './helpers/client.js';

// What patches/ssh2+1.17.0+002+interop.patch changes in ssh2's own order of packets, seen
// from ssh2's debug log while the stock OpenSSH client connects.
describe('the ssh2 interop patch, against OpenSSH', () => {
  let server: ssh2.Server;
  let port: number;
  let key: ClientKey;
  const debug: string[] = [];

  before(async () => {
    key = makeKey('ed25519');
    const hostKey = readFileSync(makeKey('ed25519').path);
    server = new ssh2.Server({ hostKeys: [hostKey], debug: (line: string) => debug.push(line.replace(/^\[[^\]]*\] /, '')) } as ssh2.ServerConfig, (client) => {
      client.on('error', () => undefined);
      client.on('authentication', (ctx) => ctx.accept());
      client.on('ready', () => client.end());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  after(() => server.close());

  test('EXT_INFO goes out right after the server\'s first NEWKEYS, before the client\'s NEWKEYS is read', async () => {
    await ssh(key, port, ['true']);
    const events = debug.filter((line) => /^(Outbound: Sending (NEWKEYS|EXT_INFO)|Inbound: NEWKEYS)/.test(line));
    assert.deepEqual(events.slice(0, 3), ['Outbound: Sending NEWKEYS', 'Outbound: Sending EXT_INFO', 'Inbound: NEWKEYS']);
  });
});
