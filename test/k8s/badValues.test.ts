import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Deployment } from '@kubernetes/client-node';
import { helmInstall, helmUpgrade } from './lib/chart.js';
import { apply, helmOk, kubectlJson } from './lib/cluster.js';
import { NAMESPACE_DEFAULTS, namespaceInventory } from './lib/inventory.js';
import { testNamespace } from './lib/namespace.js';
import { getPods, waitForReadyPods } from './lib/pods.js';

/**
 * Values the chart must refuse, given to a real `helm install` (and `helm upgrade`) on the
 * real cluster: each fails at render, before anything is applied, with a message that
 * names the value and what to do, and leaves nothing behind (no release, no object).
 */
describe('bad values fail at install with a clear message and leave nothing behind', { timeout: 1_800_000 }, () => {
  const ns = testNamespace(import.meta.filename);

  async function refused(release: string, values: Record<string, unknown>, message: RegExp): Promise<void> {
    const result = await helmInstall(ns.name, release, { values, timeout: '3m' });
    assert.notEqual(result.code, 0, `helm install ${release} must fail`);
    assert.match(result.stderr, message);
    assert.equal(await helmOk(['list', '-n', ns.name, '--all', '-q', '--filter', `^${release}$`]), '', 'no release recorded');
  }

  test('a grace period that leaves the app no time to drain', async () => {
    await refused(
      'grace',
      { deployment: { terminationGracePeriodSeconds: 15, preStopSleepSeconds: 10, graceMarginSeconds: 5 } },
      /deployment\.terminationGracePeriodSeconds \(15\) must exceed preStopSleepSeconds \(10\) \+ graceMarginSeconds \(5\): the app would get 0s to drain/,
    );
  });

  test('several replicas of the local backend on a ReadWriteOnce claim', async () => {
    await refused('rwo', { replicaCount: 3 }, /more than one replica \(or autoscaling\) needs backend\.local\.persistence\.accessModes \[ReadWriteMany\], or backend\.type gitlab/);
    await refused('rwohpa', { autoscaling: { enabled: true } }, /more than one replica \(or autoscaling\) needs/);
  });

  test('several replicas on an existing claim that is ReadWriteOnce (read from the cluster)', async () => {
    await apply(ns.name, [
      { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'mine' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
    ]);
    await refused(
      'existing',
      { replicaCount: 2, backend: { local: { persistence: { existingClaim: 'mine' } } } },
      new RegExp(`PersistentVolumeClaim ${ns.name}/mine is \\["ReadWriteOnce"\\]: more than one replica \\(or autoscaling\\) needs a ReadWriteMany claim`),
    );
  });

  test('an unknown backend', async () => {
    await refused('unknown', { backend: { type: 'gitea' } }, /at '\/backend\/type': value must be one of 'local', 'gitlab'/);
  });

  test('a StorageClass the cluster does not have, naming the ones it has', async () => {
    await refused('noclass', { backend: { local: { persistence: { storageClass: 'fast-ssd' } } } }, /backend\.local\.persistence\.storageClass fast-ssd does not exist \(this cluster has: [^)]*local-path[^)]*\)/);
  });

  test('nothing of the refused installs is in the namespace', async () => {
    // Only what Kubernetes puts in every namespace, and the claim this file made itself.
    assert.deepEqual(await namespaceInventory(ns.name), [...NAMESPACE_DEFAULTS, 'PersistentVolumeClaim/mine'].sort());
  });

  test('scaling an installed release past one replica on its ReadWriteOnce claim fails before anything changes', async () => {
    const installed = await helmInstall(ns.name, 'one', {});
    assert.equal(installed.code, 0, installed.stderr);
    const [pod] = await waitForReadyPods(ns.name, 'app.kubernetes.io/instance=one', 1);
    const upgraded = await helmUpgrade(ns.name, 'one', { values: { replicaCount: 3 }, timeout: '3m' });
    assert.notEqual(upgraded.code, 0);
    assert.match(upgraded.stderr, /more than one replica \(or autoscaling\) needs/);
    const history = JSON.parse(await helmOk(['history', 'one', '-n', ns.name, '-o', 'json'])) as Array<{ revision: number; status: string }>;
    assert.deepEqual(history.map((entry) => [entry.revision, entry.status]), [[1, 'deployed']], 'the release is as it was');
    const deployment = await kubectlJson<V1Deployment>(['-n', ns.name, 'get', 'deployment', 'one-git-sshd']);
    assert.equal(deployment.spec?.replicas, 1);
    const pods = await getPods(ns.name, 'app.kubernetes.io/instance=one');
    assert.deepEqual(pods.map((candidate) => candidate.metadata!.name), [pod!.metadata!.name], 'the same pod, alone');
  });
});
