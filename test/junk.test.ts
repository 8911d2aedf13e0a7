import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { gitLocal, makeKey, ssh, type ClientKey } from './helpers/client.js';
import { adminUsers, TestServer } from './helpers/server.js';

const { Client } = ssh2;

/** Sends `bytes` on a fresh TCP connection and waits until the server closes it (or we do, after the banner). */
async function sendRaw(port: number, bytes: Buffer | string, closeAfterWrite = false): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(bytes);
  if (closeAfterWrite) socket.end();
  const timer = setTimeout(() => socket.destroy(), 10_000);
  await once(socket, 'close');
  clearTimeout(timer);
}

/** What comes before (or instead of) an SSH banner, and the log lines one connection may cause. */
describe('junk on the SSH port and noisy clients', () => {
  let server: TestServer;
  let key: ClientKey;

  before(async () => {
    key = makeKey();
    server = await TestServer.start({ users: adminUsers(key), config: { sshd: { concurrent_sessions_limit: 1 } } });
  });

  after(async () => {
    await server?.dispose();
  });

  const cases: Array<{ name: string; bytes: Buffer | string; reason: string; closeAfterWrite?: boolean }> = [
    { name: 'random bytes', bytes: Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0a, 0x41]), reason: 'garbage' },
    { name: 'an HTTP request', bytes: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', reason: 'http' },
    { name: 'a TLS ClientHello', bytes: Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00, 0x0a]), reason: 'tls' },
    { name: 'an oversized banner', bytes: `SSH-2.0-${'x'.repeat(9000)}`, reason: 'oversized_banner' },
    { name: 'an SSH-1 banner', bytes: 'SSH-1.5-old\r\n', reason: 'invalid_banner' },
    { name: 'a banner cut short', bytes: 'SSH-2.0-Open', reason: 'incomplete_banner', closeAfterWrite: true },
  ];
  for (const { name, bytes, reason, closeAfterWrite } of cases) {
    test(`${name} before the SSH banner is logged and counted as ${reason}`, async () => {
      const mark = server.mark();
      const before = (await server.metric('git_sshd_pre_banner_closes_total', `{reason="${reason}"}`)) ?? 0;
      await sendRaw(server.port, bytes, closeAfterWrite);
      const line = await server.waitForLogSince(mark, (entry) => entry.msg === 'connection closed before a valid SSH banner');
      assert.equal(line.reason, reason);
      assert.equal(line.level, 'info');
      assert.ok(typeof line.remote_ip === 'string', 'the line names the client');
      assert.ok(String(line.preview).length <= 32 * 4, 'only a short, printable prefix is logged');
      assert.doesNotMatch(String(line.preview), /[^\x20-\x7e]/);
      assert.equal(await server.metric('git_sshd_pre_banner_closes_total', `{reason="${reason}"}`), before + 1);
    });
  }

  test('a client that connects and sends nothing is counted, and logged at debug only (health checks do this)', async () => {
    const mark = server.mark();
    const before = (await server.metric('git_sshd_pre_banner_closes_total', '{reason="no_data"}')) ?? 0;
    await sendRaw(server.port, '', true);
    const line = await server.waitForLogSince(mark, (entry) => entry.msg === 'connection closed before a valid SSH banner');
    assert.equal(line.level, 'debug');
    assert.equal(await server.metric('git_sshd_pre_banner_closes_total', '{reason="no_data"}'), before + 1);
  });

  test('invented client names all count as "other", not as new label values', async () => {
    const before = (await server.metric('git_sshd_client_software_total', '{software="other"}')) ?? 0;
    for (let i = 0; i < 5; i += 1) await sendRaw(server.port, `SSH-2.0-Junk${i}_${i}.${i}\r\n`, true);
    const { body } = await server.http('/metrics');
    assert.equal(await server.metric('git_sshd_client_software_total', '{software="other"}'), before + 5);
    assert.doesNotMatch(body, /software="Junk/);
  });

  test('an AEAD cipher is counted with mac="implicit", never an empty label value', async () => {
    const result = await ssh(key, server.port, [], ['-o', 'Ciphers=aes256-gcm@openssh.com']);
    assert.equal(result.code, 0, result.stderr);
    const { body } = await server.http('/metrics');
    assert.match(body, /git_sshd_negotiated_algorithms_total\{kind="mac",algorithm="implicit"\} [1-9]/);
    assert.doesNotMatch(body, /algorithm=""/);
  });

  test('a client repeating a refused request writes a few lines a second and one line counting the rest', async () => {
    const bare = join(server.reposDir, 'held.git');
    mkdirSync(bare, { recursive: true });
    gitLocal(['init', '-q', '--bare', bare]);
    const privateKey = (await import('node:fs')).readFileSync(key.path);
    const client = new Client();
    client.on('error', () => undefined);
    const ready = once(client, 'ready');
    client.connect({ host: '127.0.0.1', port: server.port, username: 'git', privateKey });
    await ready;
    const mark = server.mark();
    // The one session allowed: upload-pack waits for the client's wants.
    const held = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.exec("git-upload-pack 'held'", (err, channel) => (err ? reject(err) : resolve(channel))));
    const attempts = 300;
    const refusals = await Promise.all(
      Array.from({ length: attempts }, () => new Promise<boolean>((resolve) => client.exec('git-upload-pack held', (err, channel) => {
        if (channel) channel.close();
        resolve(err !== undefined);
      }))),
    );
    assert.equal(refusals.filter(Boolean).length, attempts, 'every extra session was refused');
    held.close();
    client.end();
    const summary = await server.waitForLogSince(mark, (line) => line.msg === 'log lines suppressed' && line.message === 'too many concurrent sessions', 15_000);
    const written = server.logs.slice(mark).filter((line) => line.msg === 'too many concurrent sessions').length;
    const suppressed = server.logs
      .slice(mark)
      .filter((line) => line.msg === 'log lines suppressed' && line.message === 'too many concurrent sessions')
      .reduce((sum, line) => sum + Number(line.suppressed), 0);
    assert.ok(suppressed > 0 && written < attempts, `${written} lines written for ${attempts} refusals`);
    assert.equal(written + suppressed, attempts, 'every refusal is either written or counted');
    assert.equal(summary.level, 'warn');
  });
});
