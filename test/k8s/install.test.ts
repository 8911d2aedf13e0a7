import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { V1Deployment, V1PersistentVolume, V1PersistentVolumeClaim, V1Pod, V1StorageClass } from '@kubernetes/client-node';
import { makeKey, makeWorkTree, run, temporaryDir } from '../helpers/client.js';
import { waitUntil } from '../helpers/wait.js';
import { helmInstall, helmUninstall } from './lib/chart.js';
import { kubectlJson } from './lib/cluster.js';
import { NAMESPACE_DEFAULTS, namespaceInventory } from './lib/inventory.js';
import { testNamespace } from './lib/namespace.js';
import { CLUSTER_TIMEOUT_MS, clusterIP, exec, getPods, logRecords, podLogs, waitForReadyPods } from './lib/pods.js';
import { clusterGit, clusterUrl, keyscan, knownHostsFromSecret, publicKeysOfSecret, type Target } from './lib/sshClient.js';

/**
 * `helm install --wait` of charts/git-sshd with its default values, on the real cluster
 * (test/k8s/cluster/up.sh), then what a user does next (the install notes' add-user, a push
 * and a clone through the Service), then `helm uninstall`.
 *
 * Default values mean a 10Gi ReadWriteOnce claim on the default StorageClass, checked at
 * install (checkStorageClass). The test cluster's default StorageClass is `local-path`:
 * rancher's local-path-provisioner (what kind ships), run by up.sh as a host process,
 * WaitForFirstConsumer, reclaimPolicy Delete; each claim is a directory under the cluster's
 * state dir, made and removed by a helper pod. The image is the chart's default name too:
 * images.sh tags the image built from the Dockerfile git-sshd:<appVersion> in containerd, so
 * IfNotPresent finds it and no registry is asked.
 */
const RELEASE = 'git-sshd';
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;

describe('helm install with the default values', { timeout: 1_800_000 }, () => {
  const ns = testNamespace(import.meta.filename);
  const key = makeKey();
  let pod: V1Pod;
  let target: Target;
  let pushedHead = '';

  test('ends once the pod is Ready, with the claim bound on the default StorageClass', async () => {
    const installed = await helmInstall(ns.name, RELEASE, { defaultImage: true });
    assert.equal(installed.code, 0, `helm install --wait failed:\n${installed.stderr}`);
    assert.match(installed.stdout, /STATUS: deployed/);

    const deployment = await kubectlJson<V1Deployment>(['-n', ns.name, 'get', 'deployment', RELEASE]);
    assert.equal(deployment.status?.readyReplicas, 1, '--wait returned with the Deployment Ready');
    const container = deployment.spec!.template.spec!.containers[0]!;
    assert.equal(container.image, 'git-sshd:0.1.0', 'the default values, image included');

    const classes = await kubectlJson<{ items: V1StorageClass[] }>(['get', 'storageclass']);
    const defaultClass = classes.items.find((item) => item.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true');
    assert.ok(defaultClass, 'the test cluster has a default StorageClass');
    const claim = await kubectlJson<V1PersistentVolumeClaim>(['-n', ns.name, 'get', 'pvc', RELEASE]);
    assert.equal(claim.status?.phase, 'Bound');
    assert.equal(claim.spec?.storageClassName, defaultClass.metadata!.name);
    assert.deepEqual(claim.spec?.accessModes, ['ReadWriteOnce']);
    assert.equal(claim.spec?.resources?.requests?.storage, '10Gi');
    const volume = await kubectlJson<V1PersistentVolume>(['get', 'pv', claim.spec!.volumeName!]);
    assert.equal(volume.spec?.claimRef?.name, RELEASE);

    pod = (await waitForReadyPods(ns.name, SELECTOR, 1))[0]!;
  });

  test('the pod became Ready only after the SSH port listened', async () => {
    const records = logRecords(await podLogs(ns.name, pod.metadata!.name!));
    const listening = records.find((record) => record.msg === 'listening');
    assert.ok(listening, 'the server logged that it listens');
    const monitoring = records.find((record) => record.msg === 'monitoring server listening');
    assert.ok(monitoring, 'the probes port was up first');
    const listeningAt = Date.parse(String(listening.time));
    assert.ok(Date.parse(String(monitoring.time)) <= listeningAt, `the monitoring port listens (${String(monitoring.time)}) before the SSH port (${String(listening.time)})`);
    // The Ready condition changes once, from False to True, when the kubelet's readiness
    // probe first gets 200; Kubernetes keeps that time to the second. It is not before
    // the second in which the server logged `listening`: until then the probe got 502.
    const ready = pod.status!.conditions!.find((condition) => condition.type === 'Ready')!;
    const readyAt = Date.parse(String(ready.lastTransitionTime));
    const listeningSecond = Math.floor(listeningAt / 1000) * 1000;
    assert.ok(readyAt >= listeningSecond, `Ready at ${new Date(readyAt).toISOString()}, SSH listening at ${String(listening.time)}`);
    assert.equal(pod.status!.containerStatuses![0]!.restartCount, 0);

    // And the port accepts SSH now: the pod IP's SSH banner and host keys.
    const keys = await keyscan(pod.status!.podIP!, 2222);
    assert.ok(keys.length >= 1, 'ssh-keyscan of the pod IP');
  });

  test("the kubelet's probes hit our readiness and liveness paths on the monitoring port", async () => {
    const container = pod.spec!.containers[0]!;
    assert.equal(container.readinessProbe?.httpGet?.path, '/start');
    assert.equal(container.readinessProbe?.httpGet?.port, 'monitoring');
    assert.equal(container.livenessProbe?.httpGet?.path, '/health');
    assert.equal(container.livenessProbe?.httpGet?.port, 'monitoring');
    assert.equal(container.ports?.find((port) => port.name === 'monitoring')?.containerPort, 9122);
    // Our server counts requests to those paths, the kubelet's (kube-probe) apart. The
    // liveness probe runs every 10 s: wait for the first one.
    const metric = async (labels: string): Promise<number> => {
      const response = await fetch(`http://${pod.status!.podIP}:9122/metrics`);
      const line = (await response.text()).split('\n').find((candidate) => candidate.startsWith(`git_sshd_probe_requests_total{${labels}}`));
      return Number(line?.split(' ')[1] ?? 0);
    };
    await waitUntil('the kubelet probed liveness', async () => (await metric('probe="liveness",code="200",client="kubelet"')) >= 1, CLUSTER_TIMEOUT_MS, 1_000);
    assert.ok((await metric('probe="readiness",code="200",client="kubelet"')) >= 1, 'the kubelet probed readiness and got 200');
  });

  test("the install notes' add-user, then a push and a clone through the Service, the host key checked", async () => {
    const added = await exec(ns.name, pod.metadata!.name!, ['node', 'dist/cli/addUser.js', '--config', '/etc/git-sshd/config/config.yml', '--name', 'alice', '--key', '-'], `${key.publicLine}\n`);
    assert.equal(added.code, 0, added.stderr);

    const ip = await clusterIP(ns.name, RELEASE);
    const knownHosts = await knownHostsFromSecret(ns.name, `${RELEASE}-host-keys`, [{ host: ip, port: 22 }]);
    target = { host: ip, port: 22, knownHosts };
    // The server re-reads users.yml when it changes, and says so.
    await waitUntil(
      'the server reloaded users.yml with alice',
      async () => logRecords(await podLogs(ns.name, pod.metadata!.name!)).some((record) => record.msg === 'reloaded users file' && Number(record.users) >= 1),
      CLUSTER_TIMEOUT_MS,
      1_000,
    );
    const work = makeWorkTree({ 'README.md': 'on a real cluster\n' });
    const pushed = await clusterGit(key, target, ['push', '-q', clusterUrl(target, 'team/app.git'), 'main'], work);
    pushedHead = (await run('git', ['-C', work, 'rev-parse', 'HEAD'])).stdout.trim();
    assert.equal(pushed.code, 0, pushed.stderr);
    const clone = join(temporaryDir('git-sshd-k8s-clone-'), 'app');
    const cloned = await clusterGit(key, target, ['clone', '-q', clusterUrl(target, 'team/app.git'), clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.equal((await run('git', ['-C', clone, 'show', 'HEAD:README.md'])).stdout, 'on a real cluster\n');

    // The notes' fingerprints (`kubectl logs ... | grep '"loaded host key"'`) are the keys served.
    const logged = logRecords(await podLogs(ns.name, pod.metadata!.name!)).filter((record) => record.msg === 'loaded host key').map((record) => String(record.fingerprint));
    const served = await run('ssh-keygen', ['-lf', knownHosts]);
    for (const line of served.stdout.trim().split('\n')) assert.ok(logged.includes(line.split(' ')[1]!), `${line} is in the logs`);
  });

  test('helm uninstall leaves the host key Secret and the claim, and nothing else of the release', async () => {
    const keysBefore = await publicKeysOfSecret(ns.name, `${RELEASE}-host-keys`);
    const uninstalled = await helmUninstall(ns.name, RELEASE);
    assert.equal(uninstalled.code, 0, uninstalled.stderr);
    await waitUntil('the pods are gone', async () => (await getPods(ns.name, SELECTOR)).length === 0, CLUSTER_TIMEOUT_MS, 1_000);

    let left: string[] = [];
    const expected = [
      ...NAMESPACE_DEFAULTS,
      // The chart's policy: the claim (helm.sh/resource-policy: keep) and the host keys
      // (made by the app, never by Helm) outlive the release.
      `PersistentVolumeClaim/${RELEASE}`,
      `Secret/${RELEASE}-host-keys`,
    ].sort();
    await waitUntil(
      'only the kept objects are left',
      async () => {
        left = await namespaceInventory(ns.name);
        return JSON.stringify(left) === JSON.stringify(expected);
      },
      CLUSTER_TIMEOUT_MS,
      2_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: left ${JSON.stringify(left)}, expected ${JSON.stringify(expected)}`);
    });
    assert.deepEqual(await publicKeysOfSecret(ns.name, `${RELEASE}-host-keys`), keysBefore, 'the same keys');
    const claim = await kubectlJson<V1PersistentVolumeClaim>(['-n', ns.name, 'get', 'pvc', RELEASE]);
    assert.equal(claim.status?.phase, 'Bound', 'the kept claim still holds its volume');
  });

  test('a reinstall under the same name finds the repositories, users and host keys again', async () => {
    const installed = await helmInstall(ns.name, RELEASE, { defaultImage: true });
    assert.equal(installed.code, 0, installed.stderr);
    await waitForReadyPods(ns.name, SELECTOR, 1);
    // The Service is new (a new ClusterIP); the host keys are the kept Secret's, so the known_hosts entry made from it holds.
    const ip = await clusterIP(ns.name, RELEASE);
    const again: Target = { host: ip, port: 22, knownHosts: await knownHostsFromSecret(ns.name, `${RELEASE}-host-keys`, [{ host: ip, port: 22 }]) };
    const clone = join(temporaryDir('git-sshd-k8s-clone-'), 'app');
    const cloned = await clusterGit(key, again, ['clone', '-q', clusterUrl(again, 'team/app.git'), clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.equal((await run('git', ['-C', clone, 'rev-parse', 'HEAD'])).stdout.trim(), pushedHead);
  });
});
