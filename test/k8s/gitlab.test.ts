import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import { gitLocal, killProcessGroups, makeKey, makeWorkTree, run, temporaryDir } from '../helpers/client.js';
import { blobOf, FORCE_PUSH_REFUSED, RELATIVE, SECRET, TOKEN } from '../helpers/gitalyFixture.js';
import { allowedReply, GitlabApiFixture, type Reply } from '../helpers/gitlabApi.js';
import { waitUntil, within } from '../helpers/wait.js';
import { GITALY_PORT, GITALY_SELECTOR, gitalyObjects, REPO_IN_POD, seedRepository } from './gitalyPod.js';
import { gitStream, type GitClient, type Operation } from './gitlabLoad.js';
import { helmInstall, helmUpgrade } from './lib/chart.js';
import { apply, kubectlJson, kubectlOk, ok } from './lib/cluster.js';
import { testNamespace } from './lib/namespace.js';
import { clusterIP, exec, getPods, isReady, podLogs, waitForReadyPods } from './lib/pods.js';
import { clusterGit, clusterSshArgs, clusterUrl, type Target } from './lib/sshClient.js';

/**
 * The GitLab backend on a real cluster, as GitLab runs gitlab-sshd: three git-sshd replicas
 * behind their Service with no repository volume, git running in Gitaly (the Gitaly test
 * peer, test/gitaly-peer, as a pod behind a ClusterIP Service, its repositories on its own
 * storage), and GitLab's internal API answered by the test's fake (test/helpers/gitlabApi.ts)
 * on the host, at the bridge's gateway address where pods reach the host. The fake runs in
 * this process, not in a pod, so each test swaps its answers and reads the requests (with
 * their JWTs checked) directly, and can take it down. Clients are OpenSSH and git on the host.
 */
const GATEWAY = '10.244.0.1';
const RELEASE = 'gsd';
const SERVICE = `${RELEASE}-git-sshd`;
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;
/** The project, and a bigger one that a throttled clone is still reading when Gitaly goes. */
const PROJECT = 'group/project';
const BIG_PROJECT = 'group/big';
const BIG_RELATIVE = RELATIVE.replace(/\.git$/, '-big.git');
const DENIED_PROJECT = 'group/secret';
/** GitLab's answer for a project the user may not see (lib/gitlab/git_access.rb). */
const PROJECT_NOT_FOUND = 'The project you were looking for could not be found or you don\'t have permission to view it.';
const GITALY_DOWN = /ERROR: The git server, Gitaly, is not available at this time\. Please contact your administrator\./;
const MEGABYTE = 1024 * 1024;

/** Bytes under `dir`: a clone in progress writes its pack there as it arrives. */
function bytesUnder(dir: string): number {
  let total = 0;
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const entry of entries) {
    try {
      const stat = statSync(join(dir, entry));
      total += stat.isDirectory() ? bytesUnder(join(dir, entry)) : stat.size;
    } catch {
      // Renamed or removed while we looked.
    }
  }
  return total;
}

/** OpenSSH and git aimed at `target`, optionally with the server's output throttled. */
function gitClient(target: Target): GitClient {
  return {
    url: (repo) => clusterUrl(target, `${repo}.git`),
    git: (key, args, cwd) => clusterGit(key, target, args, cwd, 300_000),
    slowGit: (key, bytesPerSecond, args) => {
      const throttle = join(import.meta.dirname, '..', 'helpers', 'throttle.mjs');
      const pipeline = `set -o pipefail; ${['ssh', ...clusterSshArgs(key, target)].join(' ')} "$@" | ${process.execPath} ${throttle} ${bytesPerSecond}`;
      return run('git', args, { env: { GIT_SSH_COMMAND: `bash -c '${pipeline}' slow-ssh`, GIT_CONFIG_NOSYSTEM: '1', HOME: process.env.HOME ?? '/tmp' }, timeoutMs: 300_000 });
    },
  };
}

/** One sample of a pod's /metrics (labels as written, e.g. `{reason="shutdown"}`), or undefined. */
async function podMetric(pod: V1Pod, name: string, labels = ''): Promise<number | undefined> {
  const body = await (await fetch(`http://${pod.status!.podIP}:9122/metrics`, { signal: AbortSignal.timeout(60_000) })).text();
  const line = body.split('\n').find((text) => text.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(name.length + labels.length + 1));
}

const live = (pods: V1Pod[]) => pods.filter((pod) => !pod.metadata?.deletionTimestamp);
const nameOf = (pod: V1Pod) => pod.metadata!.name!;

describe('backend gitlab on a real cluster: 3 git-sshd replicas through their Service, git in the Gitaly test peer as a pod, GitLab\'s API on the host', { timeout: 25 * 60_000 }, () => {
  const ns = testNamespace(import.meta.filename);
  const api = new GitlabApiFixture(SECRET);
  const alice = makeKey();
  const storage = temporaryDir('git-sshd-k8s-gitaly-storage-');
  const scratch = temporaryDir('git-sshd-k8s-gitlab-');
  let values: Record<string, unknown>;
  let seededHead = '';
  let gitalyAddress = '';
  let service: GitClient;

  const inGitaly = async (args: string[]) => ok(`git ${args.join(' ')} in the Gitaly pod`, await exec(ns.name, 'deploy/gitaly', ['git', '-C', REPO_IN_POD, ...args])).trim();
  const direct = (pod: V1Pod) => gitClient({ host: pod.status!.podIP!, port: 2222 });

  function allowedFor(relativePath: string, projectPath: string): Reply {
    const body = allowedReply({ relativePath, projectPath, userId: 7, username: 'alice' }).body as Record<string, any>;
    // No receive.MaxInputSize: the stream's pushes are small, but the limit is not what is tested here.
    return { status: 200, body: { ...body, gl_key_id: 11, git_config_options: [], gitaly: { ...body.gitaly, address: gitalyAddress, token: TOKEN, features: {} } } };
  }

  /** The Gitaly peer's finished RPCs, from its pod's log (one JSON line each). */
  async function gitalyRpcs(): Promise<Array<{ method: string; code: string; metadata: Record<string, string> }>> {
    return (await podLogs(ns.name, 'deploy/gitaly'))
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { event: string; method: string; code: string; metadata: Record<string, string> })
      .filter((event) => event.event === 'rpc');
  }

  before(async () => {
    // Built and cached by the runner (scripts/test-k8s.sh runs test/k8s/images/*.sh); the
    // import is repeated here so that the file also runs on its own against a dev cluster.
    const script = join(import.meta.dirname, 'images', 'gitaly-peer.sh');
    const gitalyImage = execFileSync('bash', [script, '--import'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 60 * 60_000 }).trim().split('\n').pop()!;
    seededHead = seedRepository(storage, scratch, 8);
    seedRepository(storage, scratch, 48, BIG_RELATIVE);

    await apply(ns.name, gitalyObjects({ image: gitalyImage, storageDir: storage, token: TOKEN }));
    await waitForReadyPods(ns.name, GITALY_SELECTOR, 1);
    gitalyAddress = `tcp://${await clusterIP(ns.name, 'gitaly')}:${GITALY_PORT}`;

    await api.start({ host: GATEWAY });
    api.users.set(blobOf(alice.publicLine), { keyId: 11, userId: 7, username: 'alice' });
    api.handlers['/api/v4/internal/allowed'] = (req) => {
      const project = String(req.body.project).replace(/^\/|\.git$/g, '');
      if (project === PROJECT) return allowedFor(RELATIVE, PROJECT);
      if (project === BIG_PROJECT) return allowedFor(BIG_RELATIVE, BIG_PROJECT);
      return { status: 404, body: { status: false, message: PROJECT_NOT_FOUND } };
    };

    // The shared secret as GitLab's .gitlab_shell_secret holds it, newline included.
    await apply(ns.name, [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gitlab-shell-secret' }, stringData: { secret: SECRET } }]);
    values = {
      replicaCount: 3,
      backend: { type: 'gitlab', gitlab: { url: api.url, gitTransport: 'gitaly', secretRef: { name: 'gitlab-shell-secret', key: 'secret' } } },
      // Long enough that the API-down test's key, looked up a moment before, is still known.
      config: { gitlab: { key_cache_ttl: '10m' } },
      // A draining pod lets what is in flight finish for up to 165 s (180 - preStop 10 - margin 5):
      // an 8 MB clone takes a second on an idle machine but over 100 s on a loaded CI one,
      // and one cut at the end of the grace period would count as failed. Operators size
      // the grace to their longest clone in the same way.
      deployment: { terminationGracePeriodSeconds: 180 },
    };
    const installed = await helmInstall(ns.name, RELEASE, { values });
    assert.equal(installed.code, 0, installed.stderr);
    await waitForReadyPods(ns.name, SELECTOR, 3);
    service = gitClient({ host: await clusterIP(ns.name, SERVICE), port: 22 });
  });

  after(async () => {
    await killProcessGroups();
    await api.stop();
  });

  test('three replicas run with no repository volume: each pod mounts only its config, the API token, /tmp and an emptyDir', async () => {
    const pods = live(await getPods(ns.name, SELECTOR));
    assert.equal(pods.length, 3);
    for (const pod of pods) {
      assert.ok(isReady(pod), `${nameOf(pod)} is Ready`);
      for (const volume of pod.spec!.volumes ?? []) {
        assert.ok(volume.configMap || volume.emptyDir || volume.projected, `${nameOf(pod)}: volume ${JSON.stringify(volume)} is a ConfigMap, an emptyDir or the API token`);
      }
      const container = pod.spec!.containers[0]!;
      const mounts = (container.volumeMounts ?? []).map((mount) => mount.mountPath);
      assert.ok(!mounts.some((path) => path.startsWith('/var/opt/gitlab')), `${nameOf(pod)} mounts no repositories: ${mounts.join(', ')}`);
      const secret = container.env?.find((entry) => entry.name === 'GITLAB_SHELL_SECRET');
      assert.deepEqual(secret?.valueFrom?.secretKeyRef, { name: 'gitlab-shell-secret', key: 'secret' });
    }
  });

  test('a clone through the Service ClusterIP runs upload-pack in the Gitaly pod, with GitLab\'s identity in its metadata', async () => {
    const dest = join(temporaryDir('git-sshd-k8s-clone-'), 'p');
    const clone = await service.git(alice, ['clone', service.url(PROJECT), dest]);
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(gitLocal(['rev-parse', 'HEAD'], dest), seededHead);
    assert.equal(gitLocal(['show', 'HEAD:README.md'], dest), 'hello from gitaly in a pod');
    const rpc = (await gitalyRpcs()).filter((event) => event.method === '/gitaly.SSHService/SSHUploadPackWithSidechannel').at(-1);
    assert.equal(rpc?.code, 'OK', JSON.stringify(rpc));
    assert.equal(rpc!.metadata.username, 'alice');
    assert.equal(rpc!.metadata.user_id, 'user-7');
    assert.equal(rpc!.metadata['x-gitlab-client-name'], 'git-sshd-git-upload-pack');
    // Every internal API call carried a valid JWT made with the secret from the pod's Secret.
    assert.ok(api.to('/allowed').length > 0);
    assert.deepEqual(api.requests.filter((req) => req.jwtError).map((req) => req.jwtError), []);
  });

  test('a push lands in the Gitaly pod\'s repository and runs its hooks there (a force push is refused with GitLab\'s message)', async () => {
    const work = makeWorkTree({ 'FEATURE.md': 'from the host, through the Service\n' });
    const push = await service.git(alice, ['push', service.url(PROJECT), 'HEAD:refs/heads/feature'], work);
    assert.equal(push.code, 0, push.stderr);
    assert.equal(await inGitaly(['rev-parse', 'refs/heads/feature']), gitLocal(['rev-parse', 'HEAD'], work));
    const unrelated = makeWorkTree({ 'OTHER.md': 'rewritten history\n' });
    const force = await service.git(alice, ['push', '--force', service.url(PROJECT), 'HEAD:refs/heads/main'], unrelated);
    assert.notEqual(force.code, 0);
    assert.ok(force.stderr.includes(`remote: ${FORCE_PUSH_REFUSED}`), force.stderr);
    assert.equal(await inGitaly(['rev-parse', 'refs/heads/main']), seededHead);
  });

  test('a key GitLab does not know is refused, after GitLab was asked', async () => {
    const stranger = makeKey();
    const clone = await service.git(stranger, ['clone', service.url(PROJECT), join(temporaryDir('git-sshd-k8s-stranger-'), 'p')]);
    assert.notEqual(clone.code, 0);
    assert.match(clone.stderr, /Permission denied \(publickey\)/);
    assert.ok(api.to('/authorized_keys').some((req) => req.query.key === blobOf(stranger.publicLine)), 'GitLab was asked about the key');
  });

  test('a project GitLab denies is refused with GitLab\'s message, and Gitaly is not called', async () => {
    const rpcs = (await gitalyRpcs()).length;
    const clone = await service.git(alice, ['clone', service.url(DENIED_PROJECT), join(temporaryDir('git-sshd-k8s-denied-'), 'p')]);
    assert.notEqual(clone.code, 0);
    assert.ok(clone.stderr.includes(`ERROR: ${PROJECT_NOT_FOUND}`), clone.stderr);
    assert.equal((await gitalyRpcs()).length, rpcs);
  });

  test('a rolling update (helm upgrade with a config change) under a stream of clones and pushes: none fails, every push is in Gitaly', { timeout: 15 * 60_000 }, async () => {
    const oldPods = live(await getPods(ns.name, SELECTOR));
    const old = oldPods.map(nameOf);
    const checksum = (pod: V1Pod) => pod.metadata?.annotations?.['checksum/config'];
    const stop = new AbortController();
    const stream = gitStream({ client: service, key: alice, repo: PROJECT, workers: ['clone', 'clone', 'slow-clone', 'push', 'push'], slowBytesPerSecond: 2 * MEGABYTE, stop: stop.signal });
    let operations: Operation[] = [];
    let upgradeStartedAt = 0;
    let rolledAt = 0;
    try {
      await sleep(5_000);
      upgradeStartedAt = performance.now();
      const upgraded = await helmUpgrade(ns.name, RELEASE, { values: { ...values, config: { gitlab: { key_cache_ttl: '10m' }, sshd: { login_grace_time: '45s' } } } });
      assert.equal(upgraded.code, 0, upgraded.stderr);
      // Every old pod has drained and gone; the stream then runs a little longer on the new ones.
      await waitUntil('the old pods are gone', async () => !(await getPods(ns.name, SELECTOR)).some((pod) => old.includes(nameOf(pod))), 5 * 60_000, 1_000);
      rolledAt = performance.now();
      await sleep(5_000);
    } finally {
      stop.abort();
      operations = await within('the stream ends', stream, 5 * 60_000);
    }
    const failed = operations.filter((operation) => !operation.ok);
    const during = operations.filter((operation) => operation.endedAt > upgradeStartedAt && operation.startedAt < rolledAt);
    const seconds = (operation: Operation) => ((operation.endedAt - operation.startedAt) / 1000).toFixed(1);
    const kinds = ['clone', 'slow-clone', 'push'] as const;
    const summary = kinds.map((kind) => {
      const ofKind = operations.filter((operation) => operation.kind === kind).sort((a, b) => a.endedAt - a.startedAt - (b.endedAt - b.startedAt));
      return `${ofKind.length} ${kind}s (median ${ofKind.length ? seconds(ofKind[Math.floor(ofKind.length / 2)]!) : '-'} s, longest ${ofKind.length ? seconds(ofKind.at(-1)!) : '-'} s)`;
    });
    const longest = [...operations].sort((a, b) => b.endedAt - b.startedAt - (a.endedAt - a.startedAt))[0]!;
    console.log(
      `rolling update: ${operations.length} git operations: ${summary.join(', ')}; ${during.length} overlapping the ${Math.round((rolledAt - upgradeStartedAt) / 1000)} s roll-out; ` +
        `${failed.length} failed; the longest, a ${longest.kind}, started ${((longest.startedAt - upgradeStartedAt) / 1000).toFixed(1)} s after the upgrade began`,
    );
    // What the kubelet did to the pods meanwhile (probe failures, kills, back-offs), said before any verdict.
    const events = await kubectlJson<{ items: CoreV1Event[] }>(['-n', ns.name, 'get', 'events']);
    // (MissingClusterDNS: this cluster runs no DNS, and nothing here needs it.)
    const trouble = events.items.filter((event) => (event.type === 'Warning' && event.reason !== 'MissingClusterDNS') || event.reason === 'Killing');
    for (const event of trouble) console.log(`event: ${event.lastTimestamp ?? event.eventTime} ${event.involvedObject.name} ${event.reason} x${event.count ?? 1}: ${event.message}`);
    assert.deepEqual(failed.map((operation) => `${operation.kind}: ${operation.failure}`), []);
    for (const kind of kinds) assert.ok(during.some((operation) => operation.kind === kind), `${kind} operations ran during the roll-out`);
    const now = await waitForReadyPods(ns.name, SELECTOR, 3);
    assert.ok(now.every((pod) => !old.includes(nameOf(pod))), 'three new pods');
    assert.deepEqual(now.map((pod) => pod.status?.containerStatuses?.[0]?.restartCount), [0, 0, 0], 'no new pod was restarted by its probes');
    assert.ok(now.every((pod) => checksum(pod) !== checksum(oldPods[0]!)), 'rolled by the config checksum');
    const refs = new Map((await inGitaly(['for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads/load/'])).split('\n').filter(Boolean).map((line) => line.split(' ') as [string, string]));
    const pushes = operations.filter((operation) => operation.pushed);
    for (const { pushed } of pushes) assert.equal(refs.get(pushed!.ref), pushed!.commit, `${pushed!.ref} is in Gitaly`);
    await inGitaly(['fsck', '--no-progress', '--no-dangling']);
  });

  test('the Gitaly pod deleted mid-clone: a clear ERROR, nothing hangs, and every replica clones again once Gitaly is back', { timeout: 10 * 60_000 }, async () => {
    const [gitaly] = await waitForReadyPods(ns.name, GITALY_SELECTOR, 1);
    const dest = join(temporaryDir('git-sshd-k8s-gitaly-gone-'), 'p');
    const clone = service.slowGit(alice, MEGABYTE, ['clone', '--bare', service.url(BIG_PROJECT), dest]);
    await waitUntil('the pack is arriving', () => bytesUnder(dest) > 3 * MEGABYTE, 120_000, 100);
    await kubectlOk(['-n', ns.name, 'delete', 'pod', nameOf(gitaly!), '--wait=false']);
    const deletedAt = performance.now();
    const result = await within('the clone ends', clone, 180_000);
    const failedAfter = (performance.now() - deletedAt) / 1000;
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, GITALY_DOWN);
    // The replica that served it holds nothing open for it.
    for (const pod of live(await getPods(ns.name, SELECTOR))) {
      await waitUntil(`${nameOf(pod)} has no connection in flight`, async () => (await podMetric(pod, 'gitlab_shell_sshd_in_flight_connections')) === 0, 60_000, 500);
    }
    const [back] = await waitForReadyPods(ns.name, GITALY_SELECTOR, 1);
    assert.notEqual(nameOf(back!), nameOf(gitaly!));
    console.log(`Gitaly pod deleted mid-clone: the client's clone failed ${failedAfter.toFixed(1)} s later (with the pack data already sent drained at 1 MB/s), a new Gitaly pod was Ready within ${((performance.now() - deletedAt) / 1000).toFixed(1)} s`);
    // Through each replica's own address: each had a channel to the Gitaly that went.
    for (const pod of await waitForReadyPods(ns.name, SELECTOR, 3)) {
      const client = direct(pod);
      const again = await client.git(alice, ['clone', '-q', '--bare', client.url(PROJECT), join(temporaryDir('git-sshd-k8s-gitaly-back-'), 'p')]);
      assert.equal(again.code, 0, `${nameOf(pod)}: ${again.stderr}`);
    }
  });

  test('GitLab\'s API down: on every replica a known key gets "Internal API unreachable", an unknown one is told its key could not be checked; nothing hangs', { timeout: 10 * 60_000 }, async () => {
    const replicas = await waitForReadyPods(ns.name, SELECTOR, 3);
    // Each replica looks alice's key up while GitLab answers, and keeps it (key_cache_ttl).
    for (const pod of replicas) {
      const client = direct(pod);
      const primed = await client.git(alice, ['ls-remote', client.url(PROJECT)]);
      assert.equal(primed.code, 0, `${nameOf(pod)}: ${primed.stderr}`);
    }
    await api.stop();
    for (const pod of replicas) {
      const client = direct(pod);
      const refused = await client.git(alice, ['ls-remote', client.url(PROJECT)]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /remote: ERROR: Internal API unreachable \(correlation id [0-9a-f-]{36}\)/, `${nameOf(pod)}: ${refused.stderr}`);
      const stranger = await client.git(makeKey(), ['ls-remote', client.url(PROJECT)]);
      assert.notEqual(stranger.code, 0);
      assert.match(stranger.stderr, /git-sshd: your key could not be checked: the server's access backend \(GitLab's internal API\) is unreachable or failing/, `${nameOf(pod)}: ${stranger.stderr}`);
      assert.equal(await podMetric(pod, 'git_sshd_connections_dropped_total', '{reason="backend_error"}'), 1);
      await waitUntil(`${nameOf(pod)} has no connection in flight`, async () => (await podMetric(pod, 'gitlab_shell_sshd_in_flight_connections')) === 0, 60_000, 500);
    }
  });
});
