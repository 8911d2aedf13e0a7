import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { V1NetworkPolicy, V1Pod } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { makeKey, makeWorkTree, run, temporaryDir } from '../helpers/client.js';
import { helmInstall, helmTemplate } from './lib/chart.js';
import { kubectlJson, ok } from './lib/cluster.js';
import { testNamespace } from './lib/namespace.js';
import { clusterIP, waitForReadyPods } from './lib/pods.js';
import { clusterGit, clusterSsh, clusterUrl, keyscan, knownHostsFromSecret, type Target } from './lib/sshClient.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * git over OpenSSH through the Service's ClusterIP, as users inside the cluster (or behind
 * what forwards to it) reach it: kube-proxy (nftables) picks the pod. Users come from the
 * chart's values (backend.local.users, a ConfigMap); the client checks the host key against
 * a known_hosts made from the host-key Secret (StrictHostKeyChecking=yes). Probe paths are
 * not the defaults, so the pod is Ready only if the chart passes them to both the app and
 * the kubelet. The NetworkPolicy is on: the API server accepts what the chart renders; this
 * cluster's bridge CNI enforces no NetworkPolicy, so whether it would let SSH in and keep
 * others off the monitoring port is NOT verified here.
 */
const RELEASE = 'gitsvc';
const FULLNAME = `${RELEASE}-git-sshd`;
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;

describe('git through the Service ClusterIP, users from the values', { timeout: 1_800_000 }, () => {
  const ns = testNamespace(import.meta.filename);
  const alice = makeKey('ed25519');
  const bob = makeKey('ecdsa');
  const stranger = makeKey('ed25519');
  let target: Target;
  let values: Record<string, unknown>;

  test('installs with users, custom probe paths and a NetworkPolicy, and becomes Ready', async () => {
    const users = [
      'users:',
      `  - name: alice`,
      `    keys: ["${alice.publicLine}"]`,
      `    access: { "*": admin }`,
      `  - name: bob`,
      `    keys: ["${bob.publicLine}"]`,
      `    access: { "team/*": read }`,
      '',
    ].join('\n');
    values = {
      backend: { local: { users } },
      config: { sshd: { readiness_probe: '/k8s-test/ready', liveness_probe: '/k8s-test/alive' } },
      networkPolicy: {
        enabled: true,
        monitoringFrom: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } }],
        // The API server for the host keys: the endpoint behind kubernetes.default (policies see it after DNAT).
        egress: [{ to: [{ ipBlock: { cidr: '10.244.0.1/32' } }], ports: [{ port: 6443, protocol: 'TCP' }] }],
      },
    };
    const installed = await helmInstall(ns.name, RELEASE, { values });
    assert.equal(installed.code, 0, installed.stderr);
    const [pod] = (await waitForReadyPods(ns.name, SELECTOR, 1)) as [V1Pod];
    const container = pod.spec!.containers[0]!;
    assert.equal(container.readinessProbe?.httpGet?.path, '/k8s-test/ready');
    assert.equal(container.livenessProbe?.httpGet?.path, '/k8s-test/alive');
    // The kubelet's readiness probe got 200 from the custom path (Ready), and our server counts it.
    const metrics = await (await fetch(`http://${pod.status!.podIP}:9122/metrics`)).text();
    assert.match(metrics, /^git_sshd_probe_requests_total\{probe="readiness",code="200",client="kubelet"\} [1-9]/m);

    const ip = await clusterIP(ns.name, FULLNAME);
    // A Ready pod is not yet a routed Service: kube-proxy programs its rules a moment later
    // (a busy machine's run got "Connection refused" from the ClusterIP right after Ready).
    await waitUntil('kube-proxy routes the Service to the pod (ssh-keyscan through the ClusterIP)', async () => (await keyscan(ip, 22, 'ed25519')).length > 0, 300_000, 1_000);
    target = { host: ip, port: 22, knownHosts: await knownHostsFromSecret(ns.name, `${FULLNAME}-host-keys`, [{ host: ip, port: 22 }]) };
  });

  test('alice pushes and clones with git and OpenSSH, the host key checked', async () => {
    const work = makeWorkTree({ 'README.md': 'through kube-proxy\n' });
    const pushed = await clusterGit(alice, target, ['push', '-q', clusterUrl(target, 'team/app.git'), 'main'], work);
    assert.equal(pushed.code, 0, pushed.stderr);
    const clone = join(temporaryDir('git-sshd-k8s-clone-'), 'app');
    const cloned = await clusterGit(alice, target, ['clone', '-q', clusterUrl(target, 'team/app.git'), clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.equal((await run('git', ['-C', clone, 'rev-parse', 'HEAD'])).stdout, (await run('git', ['-C', work, 'rev-parse', 'HEAD'])).stdout);
    const fsck = await run('git', ['-C', clone, 'fsck', '--strict']);
    assert.equal(fsck.code, 0, fsck.stderr);
  });

  test('bob may read team/* and not write; a key nobody has is refused; a wrong host key is refused by the client', async () => {
    const clone = join(temporaryDir('git-sshd-k8s-clone-'), 'app');
    const cloned = await clusterGit(bob, target, ['clone', '-q', clusterUrl(target, 'team/app.git'), clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    const pushed = await clusterGit(bob, target, ['push', '-q', clusterUrl(target, 'team/app.git'), 'HEAD:refs/heads/bob'], clone);
    assert.notEqual(pushed.code, 0);
    assert.match(pushed.stderr, /denied|not allowed|permission/i);

    const refused = await clusterSsh(stranger, target);
    assert.equal(refused.code, 255);
    assert.match(refused.stderr, /Permission denied \(publickey\)/);

    const wrongHosts = join(temporaryDir('git-sshd-k8s-known-hosts-'), 'known_hosts');
    const other = makeKey('ed25519');
    writeFileSync(wrongHosts, `${target.host} ${other.publicLine.split(' ').slice(0, 2).join(' ')}\n`);
    const mismatch = await clusterSsh(alice, { ...target, knownHosts: wrongHosts }, [], ['-o', 'HostKeyAlgorithms=ssh-ed25519']);
    assert.equal(mismatch.code, 255);
    assert.match(mismatch.stderr, /HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  test('the NetworkPolicy the chart renders is the one the API server holds (enforcement not verified: the bridge CNI enforces none)', async () => {
    const rendered = parseAllDocuments(ok('helm template', await helmTemplate(ns.name, RELEASE, { values })))
      .map((doc) => doc.toJS() as { kind?: string; spec?: unknown })
      .find((object) => object?.kind === 'NetworkPolicy');
    assert.ok(rendered, 'the chart renders a NetworkPolicy');
    const stored = await kubectlJson<V1NetworkPolicy>(['-n', ns.name, 'get', 'networkpolicy', FULLNAME]);
    // The API server fills in defaults the chart leaves out (protocol TCP already given).
    assert.deepEqual(JSON.parse(JSON.stringify(stored.spec)), rendered.spec);
  });
});
