import assert from 'node:assert/strict';
import { chownSync, chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import { run, temporaryDir } from '../helpers/client.js';
import { waitUntil } from '../helpers/wait.js';
import { helmInstall, helmUpgrade } from './lib/chart.js';
import { apply, helmOk, kubectl, kubectlJson, kubectlOk } from './lib/cluster.js';
import { testNamespace } from './lib/namespace.js';
import { CLUSTER_TIMEOUT_MS, clusterIP, logRecords, podLogs, podToken, tokenKubeconfig, waitForReadyPods } from './lib/pods.js';
import { keyscan, publicKeysOfSecret } from './lib/sshClient.js';

/**
 * Host keys in the chart's default mode, kubernetesApi, with the chart's own RBAC on a
 * real API server: the first pod creates the Secret; the pod's ServiceAccount token (read
 * in the pod, used from the host) may get and watch that Secret and nothing else; three
 * replicas present the same keys; a rotated Secret reaches new connections without a
 * restart.
 *
 * Three replicas of the local backend need a ReadWriteMany claim (the chart refuses more
 * than one replica on ReadWriteOnce). This single-node test cluster has none to provision,
 * so the test makes a hostPath PersistentVolume declared ReadWriteMany, a directory on this
 * machine, and a claim bound to it, passed as backend.local.persistence.existingClaim. On
 * one node every pod mounts the same directory; that is a test arrangement, not a
 * recommendation for real clusters (use a real ReadWriteMany class, or backend gitlab).
 */
const RELEASE = 'keys';
const SECRET = `${RELEASE}-git-sshd-host-keys`;
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;

describe('host keys in a Secret through the API, with the chart RBAC', { timeout: 1_800_000 }, () => {
  const ns = testNamespace(import.meta.filename);
  const values = (replicaCount: number): Record<string, unknown> => ({
    replicaCount,
    backend: { local: { persistence: { existingClaim: 'shared', accessModes: ['ReadWriteMany'] } } },
  });
  let firstPod: V1Pod;

  test('the first pod creates the Secret itself (Helm renders no key)', async () => {
    const dir = temporaryDir('git-sshd-k8s-rwx-');
    chmodSync(dir, 0o755);
    chownSync(dir, 10001, 10001);
    const volume = `${ns.name}-shared`;
    ns.own(`persistentvolume/${volume}`);
    await apply(undefined, [
      {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: volume },
        spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteMany'], persistentVolumeReclaimPolicy: 'Retain', storageClassName: '', hostPath: { path: dir, type: 'Directory' }, claimRef: { namespace: ns.name, name: 'shared' } },
      },
    ]);
    await apply(ns.name, [
      { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'shared' }, spec: { accessModes: ['ReadWriteMany'], storageClassName: '', volumeName: volume, resources: { requests: { storage: '1Gi' } } } },
    ]);
    assert.equal((await kubectl(['-n', ns.name, 'get', 'secret', SECRET])).code, 1, 'no Secret before the install');

    const installed = await helmInstall(ns.name, RELEASE, { values: values(1) });
    assert.equal(installed.code, 0, installed.stderr);
    firstPod = (await waitForReadyPods(ns.name, SELECTOR, 1))[0]!;
    const secret = await kubectlJson<V1Secret>(['-n', ns.name, 'get', 'secret', SECRET]);
    assert.equal(secret.metadata?.labels?.['app.kubernetes.io/managed-by'], 'git-sshd', 'made by the app');
    assert.deepEqual(Object.keys(secret.data ?? {}).sort(), ['ssh_host_ecdsa_key', 'ssh_host_ed25519_key', 'ssh_host_rsa_key']);
    const manifest = await helmOk(['get', 'manifest', RELEASE, '-n', ns.name]);
    assert.doesNotMatch(manifest, /kind: Secret/, 'no Secret in the release');
    assert.doesNotMatch(manifest, /PRIVATE KEY/);
    const records = logRecords(await podLogs(ns.name, firstPod.metadata!.name!));
    assert.ok(records.some((record) => record.msg === 'created the host key secret' && record.host_keys_secret === SECRET), 'the pod logged that it created the Secret');
  });

  test("the pod's own token may get and watch that Secret, and cannot list Secrets or read another", async () => {
    await kubectlOk(['-n', ns.name, 'create', 'secret', 'generic', 'other', '--from-literal=password=not-for-git-sshd']);
    const asPod = tokenKubeconfig(await podToken(ns.name, firstPod.metadata!.name!));
    const as = (args: string[]) => kubectl(args, { kubeconfig: asPod });
    const who = await as(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    assert.equal(who.stdout, `system:serviceaccount:${ns.name}:${RELEASE}-git-sshd`, who.stderr);

    const got = await as(['-n', ns.name, 'get', 'secret', SECRET, '-o', 'jsonpath={.metadata.name}']);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout, SECRET);
    // A watch of that one object (what the server runs), ended by the API server after 1 s.
    const watched = await as(['get', '--raw', `/api/v1/namespaces/${ns.name}/secrets?fieldSelector=metadata.name%3D${SECRET}&watch=true&timeoutSeconds=1`]);
    assert.equal(watched.code, 0, watched.stderr);
    assert.match(watched.stdout, /"type":"ADDED"/);

    const forbidden = async (args: string[], what: string): Promise<void> => {
      const result = await as(args);
      assert.notEqual(result.code, 0, `${what} must be refused`);
      assert.match(result.stderr, /Forbidden|forbidden/, `${what}: ${result.stderr}`);
    };
    await forbidden(['-n', ns.name, 'get', 'secrets'], 'listing the namespace\'s Secrets');
    await forbidden(['-n', ns.name, 'get', 'secret', 'other'], 'reading another Secret');
    await forbidden(['get', '--raw', `/api/v1/namespaces/${ns.name}/secrets?watch=true&timeoutSeconds=1`], 'watching every Secret');
    await forbidden(['-n', 'kube-system', 'get', 'secrets'], 'Secrets of another namespace');
    await forbidden(['-n', ns.name, 'delete', 'secret', SECRET], 'deleting its own Secret');
    await forbidden(['-n', ns.name, 'patch', 'secret', SECRET, '-p', '{"data":{}}'], 'changing its own Secret');
    await forbidden(['-n', ns.name, 'get', 'configmaps'], 'other kinds');
  });

  test('three replicas present the same host keys, each pod and the Service', async () => {
    const upgraded = await helmUpgrade(ns.name, RELEASE, { values: values(3) });
    assert.equal(upgraded.code, 0, upgraded.stderr);
    const pods = await waitForReadyPods(ns.name, SELECTOR, 3);
    const expected = await publicKeysOfSecret(ns.name, SECRET);
    assert.equal(expected.length, 3);
    for (const pod of pods) assert.deepEqual(await keyscan(pod.status!.podIP!, 2222), expected, `pod ${pod.metadata!.name} (${pod.status!.podIP})`);
    const ip = await clusterIP(ns.name, `${RELEASE}-git-sshd`);
    for (let attempt = 0; attempt < 6; attempt += 1) assert.deepEqual(await keyscan(ip, 22), expected, `the Service ${ip}, connection ${attempt + 1}`);
    // Two replicas that started together lost the create race or read the winner's keys: never a second Secret.
    const secrets = await kubectlJson<{ items: V1Secret[] }>(['-n', ns.name, 'get', 'secrets', '-l', 'app.kubernetes.io/managed-by=git-sshd']);
    assert.deepEqual(secrets.items.map((secret) => secret.metadata!.name), [SECRET]);
  });

  test('a rotated Secret reaches new connections on every pod, without a restart', async () => {
    const before = await waitForReadyPods(ns.name, SELECTOR, 3);
    const restarts = new Map(before.map((pod) => [pod.metadata!.name!, pod.status!.containerStatuses![0]!.restartCount]));
    const dir = temporaryDir('git-sshd-k8s-rotated-');
    const files: Record<string, string> = {};
    for (const type of ['ed25519', 'ecdsa', 'rsa']) {
      const path = join(dir, `ssh_host_${type}_key`);
      const made = await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', '', '-f', path]);
      assert.equal(made.code, 0, made.stderr);
      files[`ssh_host_${type}_key`] = readFileSync(path).toString('base64');
    }
    const old = await publicKeysOfSecret(ns.name, SECRET);
    await kubectlOk(['-n', ns.name, 'patch', 'secret', SECRET, '--type=merge', '-p', JSON.stringify({ data: files })]);
    const rotated = await publicKeysOfSecret(ns.name, SECRET);
    assert.notDeepEqual(rotated, old);

    for (const pod of before) {
      await waitUntil(
        `pod ${pod.metadata!.name} serves the rotated keys`,
        async () => JSON.stringify(await keyscan(pod.status!.podIP!, 2222)) === JSON.stringify(rotated),
        CLUSTER_TIMEOUT_MS,
        1_000,
      );
    }
    const ip = await clusterIP(ns.name, `${RELEASE}-git-sshd`);
    assert.deepEqual(await keyscan(ip, 22), rotated, 'through the Service');
    const after = await waitForReadyPods(ns.name, SELECTOR, 3);
    assert.deepEqual(new Map(after.map((pod) => [pod.metadata!.name!, pod.status!.containerStatuses![0]!.restartCount])), restarts, 'the same pods, no restart');
  });
});
