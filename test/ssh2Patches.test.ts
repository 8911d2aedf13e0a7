import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { makeKey, ssh, type ClientKey } from './helpers/client.js';
import { goClient, runGroup } from './helpers/interopClients.js';
import { InteropFixture, WELCOME } from './helpers/interopServer.js';

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

// What patches/ssh2+1.17.0+005+early-input.patch changes: RFC 4254 lets a client send data
// and EOF on a session before it asks for the command. Go's x/crypto/ssh does so whenever
// its stdin pipe is copied faster than the exec request goes out (about 1 login in 100
// with an empty stdin); ssh2 then never answered the request and the client hung. The
// Go client's -input-first makes that order certain.
describe('input a client sends before its command', () => {
  let fixture: InteropFixture;

  before(async () => {
    fixture = await InteropFixture.start();
  });

  after(() => fixture?.dispose());

  function goFirst(command: string[], input: string) {
    const argv = goClient.argv(fixture.ed25519, fixture.server.port, { extra: ['-input-first'] });
    return runGroup(argv[0]!, [...argv.slice(1), ...command], { input });
  }

  test('EOF before a shell request: the welcome is served and the exit status is 0', async () => {
    const result = await goFirst([], '');
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, WELCOME);
  });

  test('a flush and EOF before git-upload-pack reach git: the refs are listed and git exits 0', async () => {
    const result = await goFirst(["git-upload-pack 'team/app'"], '0000');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^[0-9a-f]{4}[0-9a-f]{40} HEAD\0/);
    assert.match(result.stdout, / refs\/heads\/main\n/);
    assert.ok(result.stdout.endsWith('0000'), `the advertisement ends with a flush: ${JSON.stringify(result.stdout.slice(-40))}`);
  });
});
