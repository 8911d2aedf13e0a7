import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { git, gitLocal, makeKey, makeWorkTree, sshArgs, temporaryDir, url } from '../helpers/client.js';
import { freePort } from '../helpers/loadBalancers.js';
import { ROOT } from '../helpers/server.js';

/**
 * The real Dockerfile, built with buildah and run with podman (no Docker engine here),
 * on a local base image (scripts/image-base.sh: no registry can be reached).
 */
const BASE = process.env.BASE_IMAGE ?? 'localhost/git-sshd-node-base:node24-bookworm';
/** Built by scripts/build-image.sh when `npm run test:image` runs this; built here otherwise. */
const PREBUILT = process.env.GIT_SSHD_IMAGE;
const IMAGE = PREBUILT ?? 'localhost/git-sshd:image-test';
const PODMAN = ['--storage-driver', 'vfs'];
const NAME = `git-sshd-image-test-${process.pid}`;

function podman(args: string[], timeoutMs = 120_000): { code: number; stdout: string; stderr: string } {
  const result = spawnSync('podman', [...PODMAN, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { code: result.status ?? -1, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

async function status(port: number, path: string): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
  } catch {
    return 0;
  }
}

/**
 * The chart's pod for these ports, with host keys from an existing Secret (written to a
 * directory here) and a 3 s drain (9 s termination grace - 1 s preStop - 5 s margin).
 */
function renderPod(sshPort: number, webPort: number): { env: string[]; args: string[]; configDir: string; keysDir: string } {
  const helm = process.env.HELM ?? 'helm';
  const rendered = spawnSync(helm, [
    'template', 'git-sshd', join(ROOT, 'charts', 'git-sshd'), '--kube-version', '1.31.0',
    '--set', `ports.ssh=${sshPort}`, '--set', `ports.monitoring=${webPort}`,
    '--set', 'hostKeys.mode=existingSecret', '--set', 'hostKeys.existingSecret=keys',
    '--set', 'deployment.terminationGracePeriodSeconds=9', '--set', 'deployment.preStopSleepSeconds=1',
  ], { encoding: 'utf8' });
  assert.equal(rendered.status, 0, rendered.stderr);
  const objects = parseAllDocuments(rendered.stdout).map((doc) => doc.toJS() as { kind: string; data?: Record<string, string>; spec?: any });
  const configMap = objects.find((object) => object.kind === 'ConfigMap')!;
  const container = objects.find((object) => object.kind === 'Deployment')!.spec.template.spec.containers[0];
  const configDir = temporaryDir('git-sshd-image-config-');
  writeFileSync(join(configDir, 'config.yml'), configMap.data!['config.yml']!);
  const keysDir = temporaryDir('git-sshd-image-keys-');
  for (const type of ['ed25519', 'ecdsa', 'rsa']) execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', join(keysDir, `ssh_host_${type}_key`)]);
  for (const dir of [configDir, keysDir]) execFileSync('chown', ['-R', '10001:10001', dir]);
  execFileSync('chmod', ['0755', configDir]);
  const env = (container.env as Array<{ name: string; value?: string }>).filter((entry) => entry.value !== undefined).map((entry) => `${entry.name}=${entry.value}`);
  return { env, args: container.args as string[], configDir, keysDir };
}

describe('the container image', () => {
  const key = makeKey();
  const data = temporaryDir('git-sshd-image-data-');
  let sshPort = 0;
  let webPort = 0;

  before(async () => {
    const build = PREBUILT ? { status: 0, stdout: '', stderr: '' } : spawnSync(
      'buildah',
      [...PODMAN, 'bud', '--isolation', 'chroot', '--network', 'host', '--build-arg', `NODE_IMAGE=${BASE}`, '-t', IMAGE, ROOT],
      { encoding: 'utf8', timeout: 900_000 },
    );
    assert.equal(build.status, 0, `buildah bud failed:\n${(build.stdout ?? '').slice(-3000)}\n${(build.stderr ?? '').slice(-3000)}`);
    writeFileSync(join(data, 'users.yml'), `users:\n  - name: alice\n    keys: ["${key.publicLine}"]\n    access: { "*": admin }\n`);
    chownSync(data, 10001, 10001);
    chownSync(join(data, 'users.yml'), 10001, 10001);
    sshPort = await freePort();
    webPort = await freePort();
  });
  after(() => {
    podman(['rm', '-f', NAME]);
  });

  test('runs as a non-root user, exposes the SSH and monitoring ports, starts under tini, has no HEALTHCHECK', () => {
    const inspect = podman(['image', 'inspect', IMAGE]);
    assert.equal(inspect.code, 0, inspect.stderr);
    const [image] = JSON.parse(inspect.stdout) as Array<{ Config: { User: string; ExposedPorts: Record<string, unknown>; Entrypoint: string[]; Healthcheck?: unknown } }>;
    assert.equal(image!.Config.User, '10001:10001');
    assert.deepEqual(Object.keys(image!.Config.ExposedPorts).sort(), ['2222/tcp', '9122/tcp']);
    assert.deepEqual(image!.Config.Entrypoint.slice(0, 3), ['/usr/bin/tini', '--', 'node']);
    assert.equal(image!.Config.Healthcheck, undefined);
  });

  test('serves a push and a clone with OpenSSH, then drains on SIGTERM: readiness 502, the open session cut at the grace period, exit 0', async () => {
    // Run it as the chart's Deployment would: its config.yml, its env and args, its mounts.
    const pod = renderPod(sshPort, webPort);
    const run = podman([
      'run', '-d', '--name', NAME, '--runtime', 'runc', '--network', 'host', '--read-only', '--tmpfs', '/tmp',
      '--user', '10001:10001', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024',
      ...pod.env.flatMap((entry) => ['-e', entry]),
      '-v', `${pod.configDir}:/etc/git-sshd/config:ro`, '-v', `${pod.keysDir}:/etc/git-sshd/host-keys:ro`, '-v', `${data}:/data`,
      IMAGE, ...pod.args,
    ]);
    assert.equal(run.code, 0, run.stderr);
    let ready = 0;
    // Bounded at two minutes: a loaded machine may take that long to start a container.
    for (let attempt = 0; attempt < 600 && ready !== 200; attempt += 1) {
      ready = await status(webPort, '/start');
      if (ready !== 200) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(ready, 200, podman(['logs', NAME]).stderr);

    const pushed = await git(key, sshPort, ['push', '-q', url(sshPort, 'team/app.git'), 'main'], makeWorkTree({ 'README.md': 'from the image test\n' }));
    assert.equal(pushed.code, 0, pushed.stderr);
    const clone = join(temporaryDir('git-sshd-image-clone-'), 'app');
    const cloned = await git(key, sshPort, ['clone', '-q', url(sshPort, 'team/app.git'), clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.equal(gitLocal(['show', 'HEAD:README.md'], clone), 'from the image test');

    // A session that stays open (upload-pack waiting for its client) must be cut at the deadline.
    const session = spawn('ssh', [...sshArgs(key, sshPort), 'git@127.0.0.1', 'git-upload-pack', 'team/app.git'], { stdio: ['pipe', 'ignore', 'pipe'] });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(podman(['kill', '--signal', 'TERM', NAME]).code, 0);
    let draining = 0;
    for (let attempt = 0; attempt < 50 && draining !== 502; attempt += 1) {
      draining = await status(webPort, '/start');
      if (draining !== 502) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(draining, 502, 'readiness answers 502 while draining');
    const wait = podman(['wait', NAME], 30_000);
    assert.equal(wait.stdout.trim(), '0', `exit status ${wait.stdout} ${wait.stderr}`);
    session.kill();
    const logs = podman(['logs', NAME]);
    const lines = `${logs.stdout}${logs.stderr}`.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
    const listening = lines.find((line) => line.msg === 'listening');
    assert.match(String(listening?.node), /^24\./, 'the image runs Node 24');
    assert.equal(listening?.native_crypto, true, 'ssh2\'s native crypto binding loads in the image');
    const stopped = lines.find((line) => line.msg === 'stopped');
    assert.ok(stopped, 'the drain logged its summary');
    assert.equal(stopped.cut, 1);
  });
});
