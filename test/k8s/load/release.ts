import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { ClientKey } from '../../helpers/client.js';
import { apply, clusterEnv } from '../lib/cluster.js';
import type { TestNamespace } from '../lib/namespace.js';
import { ClusterObserver } from './clusterObserver.js';

/** The image's git-sshd user and group (the chart's podSecurityContext). */
const APP_UID = 10001;

/**
 * A ReadWriteMany claim on a hostPath directory of this machine, for several replicas of the
 * local backend. A SINGLE-NODE TEST ARRANGEMENT, not advice for users: a hostPath volume is
 * one node's directory, shared here only because every pod runs on this one node; a real
 * cluster needs real shared storage (NFS, CephFS, EFS...) or backend gitlab.
 * The PersistentVolume is cluster-scoped: it is named after the namespace and deleted after it.
 */
export async function sharedHostPathClaim(namespace: TestNamespace, claim: string, size = '5Gi'): Promise<{ dir: string; remove: () => void }> {
  const dir = mkdtempSync(join('/var/tmp', `${namespace.name}-`));
  chownSync(dir, APP_UID, APP_UID);
  const volume = `${namespace.name}-${claim}`;
  // A class of its own: no provisioner, no other claim can bind this volume.
  const storageClassName = volume;
  namespace.own(`persistentvolume/${volume}`);
  await apply(undefined, [
    {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: volume },
      spec: {
        capacity: { storage: size },
        accessModes: ['ReadWriteMany'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName,
        hostPath: { path: dir, type: 'Directory' },
        claimRef: { namespace: namespace.name, name: claim },
      },
    },
  ]);
  await apply(namespace.name, [
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: claim },
      spec: { accessModes: ['ReadWriteMany'], storageClassName, volumeName: volume, resources: { requests: { storage: size } } },
    },
  ]);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** users.yml for the chart's `backend.local.users`: alice, admin of every repository. */
export function adminUsersYaml(key: ClientKey): string {
  return stringify({ users: [{ name: 'alice', keys: [key.publicLine], access: { '*': 'admin' } }] });
}

/** The admin kubeconfig of the test cluster, for the API client (watches, logs). */
export function clusterKubeConfig(): KubeConfig {
  const config = new KubeConfig();
  config.loadFromFile(clusterEnv().kubeconfig);
  return config;
}

/** An observer of a release installed with the chart's default ports and probe paths. */
export function chartObserver(namespace: string, release: string, selector: string): ClusterObserver {
  return new ClusterObserver({
    kubeConfig: clusterKubeConfig(),
    namespace,
    selector,
    service: release,
    servicePortName: 'ssh',
    container: 'git-sshd',
    monitoringPort: 9122,
    readinessPath: '/start',
  });
}

/** Whether this host can read kube-proxy's nftables rules (root, nft installed). */
export function canReadKubeProxyRules(): boolean {
  try {
    execFileSync('nft', ['list', 'table', 'ip', 'kube-proxy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
