import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { makeKey, run } from './helpers/client.js';
import { spawnGroup } from './helpers/processes.js';
import { MAIN, TestServer } from './helpers/server.js';

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderrLines: string[];
}

/**
 * Runs `node dist/main.js --config FILE` to its end, with a clean environment. The kill
 * after `timeoutMs` is a bound for a process that never exits, not a speed limit.
 */
function runMain(configFile: string, cwd: string, timeoutMs = 120_000): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawnGroup(process.execPath, [MAIN, '--config', configFile], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: cwd },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderrLines: Buffer.concat(err).toString('utf8').split('\n').filter((line) => line !== ''),
      });
    });
  });
}

/** One stderr line, `git-sshd: ...`, no stack trace, a non-zero exit of our own. */
function assertRefusedCleanly(exit: Exit): string {
  assert.equal(exit.signal, null, 'the process was killed: it did not exit on its own');
  assert.notEqual(exit.code, 0);
  assert.equal(exit.stderrLines.length, 1, `stderr:\n${exit.stderrLines.join('\n')}`);
  const [line] = exit.stderrLines as [string];
  assert.match(line, /^git-sshd: /);
  assert.doesNotMatch(line, /\bat .*\.js:\d+/);
  return line;
}

/** `ssh-keyscan` of every host key type, as sorted "type base64" lines. */
async function scanHostKeys(port: number): Promise<string[]> {
  const result = await run('ssh-keyscan', ['-T', '60', '-t', 'ed25519,ecdsa,rsa', '-p', String(port), '127.0.0.1'], { timeoutMs: 120_000 });
  assert.equal(result.code, 0, result.stderr);
  return result.stdout
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(' ').slice(1, 3).join(' '))
    .sort();
}

describe('start-up', () => {
  let dir: string;
  const servers: TestServer[] = [];
  const baseConfig = (): Record<string, any> => ({
    log_level: 'debug',
    sshd: { listen: '127.0.0.1:0', web_listen: '', grace_period: '2s' },
    local: { data_dir: join(dir, 'data') },
  });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'git-sshd-startup-'));
  });

  after(async () => {
    for (const server of servers) await server.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('a bad config file stops the process with one line naming the key and the value', () => {
    const cases: Array<{ name: string; edit: (config: Record<string, any>) => void; expect: RegExp[] }> = [
      { name: 'an unknown key', edit: (c) => (c.sshd.lisen = '127.0.0.1:22'), expect: [/sshd\.lisen/, /unknown key/, /127\.0\.0\.1:22/] },
      {
        name: 'a value of the wrong type',
        edit: (c) => (c.sshd.concurrent_sessions_limit = 'many'),
        expect: [/sshd\.concurrent_sessions_limit/, /"many"/],
      },
      {
        name: 'a zero where at least one is needed',
        edit: (c) => (c.sshd.client_alive_count_max = 0),
        expect: [/sshd\.client_alive_count_max/, /value was 0\b/],
      },
      { name: 'a negative duration', edit: (c) => (c.sshd.grace_period = '-1s'), expect: [/sshd\.grace_period/, /"-1s"/] },
      { name: 'a listen address without a port', edit: (c) => (c.sshd.listen = 'nowhere'), expect: [/sshd\.listen/, /"nowhere"/] },
      { name: 'an unknown backend', edit: (c) => (c.backend = 'gitlab2'), expect: [/backend/, /"gitlab2"/, /local/] },
      {
        name: 'a MaxStartups whose full is below its start',
        edit: (c) => (c.sshd.max_startups = '10:30:5'),
        expect: [/sshd\.max_startups/, /"10:30:5"/, /start:rate:full/],
      },
      {
        name: 'a readiness path equal to the liveness path',
        edit: (c) => {
          c.sshd.readiness_probe = '/health';
        },
        expect: [/sshd\.readiness_probe/, /"\/health"/, /sshd\.liveness_probe/],
      },
    ];
    for (const { name, edit, expect } of cases) {
      test(`${name} is refused`, async () => {
        const config = baseConfig();
        edit(config);
        const file = join(dir, `bad-${name.replaceAll(' ', '-')}.yml`);
        writeFileSync(file, stringify(config));

        const line = assertRefusedCleanly(await runMain(file, dir));

        for (const pattern of expect) assert.match(line, pattern);
      });
    }

    test('malformed YAML is refused with the file and the line', async () => {
      const file = join(dir, 'malformed.yml');
      writeFileSync(file, 'sshd:\n  listen: "127.0.0.1:0\n  grace_period: [2s\n');

      const line = assertRefusedCleanly(await runMain(file, dir));

      assert.match(line, /malformed\.yml:\d+/);
      assert.match(line, /YAML/);
    });

    test('a config file that does not exist is refused, naming it', async () => {
      const line = assertRefusedCleanly(await runMain(join(dir, 'no-such-config.yml'), dir));

      assert.match(line, /no-such-config\.yml/);
      assert.match(line, /ENOENT/);
    });
  });

  test('a users file that is malformed at start stops the process with a message naming it', async () => {
    const home = mkdtempSync(join(dir, 'users-'));
    const config = baseConfig();
    config.local.data_dir = join(home, 'data');
    mkdirSync(config.local.data_dir);
    const usersFile = join(config.local.data_dir, 'users.yml');
    writeFileSync(usersFile, 'users:\n  - name: alice\n    keys: [unclosed\n');
    const file = join(home, 'config.yml');
    writeFileSync(file, stringify(config));

    const line = assertRefusedCleanly(await runMain(file, home));

    assert.ok(line.includes(usersFile), line);
    assert.match(line, /YAML/);
  });

  test('a monitoring port that is taken stops the process with a message naming sshd.web_listen', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const config = baseConfig();
      config.sshd.web_listen = `127.0.0.1:${(blocker.address() as AddressInfo).port}`;
      const file = join(dir, 'web-listen-taken.yml');
      writeFileSync(file, stringify(config));

      const line = assertRefusedCleanly(await runMain(file, dir));

      assert.match(line, /sshd\.web_listen 127\.0\.0\.1:\d+: EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });

  test('a users file named in the config that does not exist stops the process, and is not created', async () => {
    const home = mkdtempSync(join(dir, 'users-missing-'));
    const config = baseConfig();
    config.local.data_dir = join(home, 'data');
    config.local.users_file = join(home, 'users.yml');
    const file = join(home, 'config.yml');
    writeFileSync(file, stringify(config));

    const line = assertRefusedCleanly(await runMain(file, home));

    assert.ok(line.includes(join(home, 'users.yml')), line);
    assert.match(line, /does not exist/);
    assert.equal(readdirSync(home).includes('users.yml'), false);
  });

  describe('host keys', () => {
    test('the embedded default generates host keys once, private to the owner, and reuses them on restart', async () => {
      const first = await TestServer.start();
      servers.push(first);
      const scannedFirst = await scanHostKeys(first.port);
      assert.equal(await first.stop(), 0);

      const generated = readdirSync(first.dataDir).filter((name) => /^ssh_host_\w+_key$/.test(name)).sort();
      assert.deepEqual(generated, ['ssh_host_ecdsa_key', 'ssh_host_ed25519_key', 'ssh_host_rsa_key']);
      for (const name of generated) {
        assert.equal((statSync(join(first.dataDir, name)).mode & 0o777).toString(8), '600', name);
      }
      const keyFiles = generated.map((name) => readFileSync(join(first.dataDir, name), 'utf8'));

      const second = await TestServer.start({ dir: first.dir });
      servers.push(second);
      const scannedSecond = await scanHostKeys(second.port);

      assert.equal(scannedFirst.length, 3);
      assert.deepEqual(scannedSecond, scannedFirst);
      assert.deepEqual(generated.map((name) => readFileSync(join(second.dataDir, name), 'utf8')), keyFiles);
      assert.equal(second.logs.some((line) => line.msg === 'generated host key'), false);
    });

    test('listed host key files that are missing are skipped and logged when another one loads', async () => {
      const keysDir = mkdtempSync(join(dir, 'hostkeys-'));
      const valid = makeKey('ed25519', keysDir);
      const missing = join(keysDir, 'missing_host_key');

      const server = await TestServer.start({ config: { sshd: { host_key_files: [missing, valid.path] } } });
      servers.push(server);

      const skipped = await server.waitForLog((line) => line.msg === 'skipped host key that could not be loaded');
      assert.equal(skipped.path, missing);
      assert.deepEqual(await scanHostKeys(server.port), [valid.publicLine.split(' ').slice(0, 2).join(' ')]);
      assert.deepEqual(readdirSync(server.dataDir).filter((name) => name.startsWith('ssh_host_')), []);
    });

    test('only missing host key files stop the process, and no key is generated', async () => {
      const home = mkdtempSync(join(dir, 'nokeys-'));
      const config = baseConfig();
      config.local.data_dir = join(home, 'data');
      config.sshd.host_key_files = [join(home, 'missing_a'), join(home, 'missing_b')];
      const file = join(home, 'config.yml');
      writeFileSync(file, stringify(config));

      const exit = await runMain(file, home);

      const line = assertRefusedCleanly(exit);
      assert.match(line, /host key/);
      assert.ok(line.includes(join(home, 'missing_a')), line);
      const everything = readdirSync(home, { recursive: true, encoding: 'utf8' });
      assert.deepEqual(everything.filter((name) => /ssh_host_|missing_/.test(name)), []);
    });
  });

  // How fast an idle server stops is measured in bench/ (npm run bench:drain), not here.
  test('SIGTERM on an idle server exits 0 and logs "stopped"', async () => {
    const server = await TestServer.start();
    servers.push(server);

    const code = await server.stop('SIGTERM');

    assert.equal(code, 0);
    assert.ok(server.logs.some((line) => line.msg === 'stopped'));
  });
});
