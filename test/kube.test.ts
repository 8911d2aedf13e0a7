import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run, temporaryDir } from './helpers/client.js';
import { FakeKubeApi } from './helpers/fakeKube.js';
import { TestServer } from './helpers/server.js';

const NAMESPACE = 'git';
const SECRET = 'git-sshd-host-keys';

/** The host key a client sees, by type, as ssh-keyscan prints it. */
async function scan(port: number, type: 'ed25519' | 'ecdsa' | 'rsa'): Promise<string> {
  const result = await run('ssh-keyscan', ['-T', '60', '-t', type, '-p', String(port), '127.0.0.1']);
  const line = result.stdout.split('\n').find((text) => text.startsWith('['));
  assert.ok(line, `no ${type} key from port ${port}: ${result.stderr}`);
  return line.split(' ').slice(1).join(' ');
}

function startReplica(api: FakeKubeApi): Promise<TestServer> {
  return TestServer.start({
    config: { sshd: { host_keys_secret: SECRET }, kube: { namespace: NAMESPACE } },
    env: { KUBECONFIG: api.kubeconfig(NAMESPACE) },
  });
}

describe('host keys from a Kubernetes Secret (against a fake API server on loopback)', () => {
  const api = new FakeKubeApi();
  const replicas: TestServer[] = [];

  before(() => api.start());
  after(async () => {
    for (const replica of replicas) await replica.dispose();
    await api.stop();
  });

  test('two replicas racing to create the missing Secret end up with one Secret and the same keys', async () => {
    api.holdCreatesUntilReads = 2;
    // Each replica is kept for after() as soon as it is up, even if the other fails to start.
    const started = await Promise.allSettled([startReplica(api), startReplica(api)]);
    for (const result of started) if (result.status === 'fulfilled') replicas.push(result.value);
    for (const result of started) if (result.status === 'rejected') throw result.reason;
    const creates = api.requests.filter((req) => req.method === 'POST');
    assert.deepEqual(creates.map((req) => req.status).sort(), [201, 409], 'both tried to create it; one lost the race');
    assert.equal(api.secrets.size, 1);
    for (const type of ['ed25519', 'ecdsa', 'rsa'] as const) {
      assert.equal(await scan(replicas[0]!.port, type), await scan(replicas[1]!.port, type), `${type}: the same key on both replicas`);
    }
    const secret = api.secrets.get(`${NAMESPACE}/${SECRET}`)!;
    assert.deepEqual(Object.keys(secret.data).sort(), ['ssh_host_ecdsa_key', 'ssh_host_ed25519_key', 'ssh_host_rsa_key']);
    // An operator publishes the fingerprints from the log: they must be there in this mode too.
    for (const type of ['ed25519', 'ecdsa', 'rsa'] as const) {
      const knownHosts = `[localhost]:${replicas[0]!.port} ${await scan(replicas[0]!.port, type)}`;
      await replicas[0]!.waitForLog((line) => line.msg === 'host key' && line.known_hosts === knownHosts);
    }
  });

  test('each replica logs the fingerprints it serves, as ssh-keygen -l prints them, and names the Secret unredacted', async () => {
    assert.equal(replicas.length, 2, 'the replicas of the first test are running');
    for (const replica of replicas) {
      const scanned = await run('ssh-keyscan', ['-p', String(replica.port), '127.0.0.1'], { timeoutMs: 10_000 });
      const listed = await run('ssh-keygen', ['-lf', '-'], { input: scanned.stdout, timeoutMs: 10_000 });
      const expected = [...listed.stdout.matchAll(/SHA256:\S+/g)].map((match) => match[0]).sort();
      assert.equal(expected.length, 3, `${scanned.stderr}${listed.stderr}`);
      const logged = replica.logs.filter((line) => line.msg === 'loaded host key');
      assert.deepEqual(logged.map((line) => line.fingerprint).sort(), expected);
      for (const line of logged) assert.match(String(line.path), new RegExp(`^secret/${SECRET}/ssh_host_`));
      assert.ok(replica.logs.some((line) => line.host_keys_secret === SECRET), 'a line names the Secret');
      assert.deepEqual(replica.logs.filter((line) => JSON.stringify(line).includes('[redacted]')), []);
    }
  });

  test('a rotated Secret is picked up for new connections without a restart', async () => {
    const replica = replicas[0]!;
    const dir = temporaryDir('git-sshd-rotate-');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]);
    const before = await scan(replica.port, 'ed25519');
    const mark = replica.mark();
    api.update(NAMESPACE, SECRET, { ssh_host_ed25519_key: readFileSync(join(dir, 'key')).toString('base64') });
    await replica.waitForLogSince(mark, (line) => line.msg === 'host keys replaced for new connections');
    const after = await scan(replica.port, 'ed25519');
    assert.notEqual(after, before);
    assert.equal(after, readFileSync(join(dir, 'key.pub'), 'utf8').split(' ').slice(0, 2).join(' '));
    const fingerprint = execFileSync('ssh-keygen', ['-lf', join(dir, 'key.pub')], { encoding: 'utf8' }).split(' ')[1];
    assert.ok(replica.logs.slice(mark).some((line) => line.msg === 'loaded host key' && line.fingerprint === fingerprint), 'the new fingerprint is logged');
        const announced = await replica.waitForLogSince(mark, (line) => line.msg === 'host key' && line.type === 'ED25519');
    assert.equal(announced.fingerprint, fingerprint);
    assert.equal(announced.known_hosts, `[localhost]:${replica.port} ${after}`);
  });

  test('a replica that starts later reads the existing Secret and creates nothing', async () => {
    const posts = api.requests.filter((req) => req.method === 'POST').length;
    const late = await startReplica(api);
    replicas.push(late);
    assert.equal(api.requests.filter((req) => req.method === 'POST').length, posts);
    assert.equal(await scan(late.port, 'ed25519'), await scan(replicas[0]!.port, 'ed25519'));
  });
});

describe('host keys from a Kubernetes Secret when the API cannot be reached', () => {
  test('the start fails with a line naming the Secret, exit status 1', async () => {
    const dir = temporaryDir('git-sshd-nokube-');
    const fake = new FakeKubeApi();
    await fake.start();
    const file = fake.kubeconfig(NAMESPACE);
    await fake.stop();
    const config = join(dir, 'config.yml');
    writeFileSync(config, `sshd:\n  listen: "127.0.0.1:0"\n  web_listen: ""\n  host_keys_secret: ${SECRET}\nkube:\n  namespace: ${NAMESPACE}\nlocal:\n  data_dir: ${dir}/data\n`);
    const result = await run(process.execPath, [join(import.meta.dirname, '..', 'dist', 'main.js'), '--config', config], {
      env: { KUBECONFIG: file },
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`git-sshd: cannot start: cannot read host key secret ${NAMESPACE}/${SECRET}`));
  });
});
