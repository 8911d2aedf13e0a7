import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gitLocal, killProcessGroups, makeKey, makeWorkTree, run, sshCommand, temporaryDir, type ClientKey, type RunResult } from '../helpers/client.js';
import { blobOf, RELATIVE, SECRET, TOKEN } from '../helpers/gitalyFixture.js';
import { allowedReply, GitlabApiFixture, type Reply } from '../helpers/gitlabApi.js';
import { waitUntil, within } from '../helpers/wait.js';
import { FORCE_PUSH_REFUSED, GITALY_PORT, gitalyManifests, REPO_IN_POD, seedRepository } from './gitalyPod.js';
import { gitStream, type GitClient, type Operation } from './gitlabLoad.js';

// Interim: replaced by test/k8s/lib once it lands.
const BIN = process.env.GIT_SSHD_K8S_BIN ?? '';
const GATEWAY = '10.244.0.1';
const NAMESPACE = `gsd-gitlab-${Math.random().toString(36).slice(2, 8)}`;
async function kubectl(args: string[], input?: string, timeoutMs = 120_000): Promise<RunResult> {
  return run(join(BIN, 'kubectl'), ['-n', NAMESPACE, ...args], { ...(input === undefined ? {} : { input }), timeoutMs });
}
async function kubectlOk(args: string[], input?: string, timeoutMs = 120_000): Promise<string> {
  const result = await kubectl(args, input, timeoutMs);
  assert.equal(result.code, 0, `kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}
async function helmOk(args: string[], timeoutMs = 600_000): Promise<string> {
  const result = await run(join(BIN, 'helm'), ['-n', NAMESPACE, ...args], { timeoutMs });
  assert.equal(result.code, 0, `helm ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

const RELEASE = 'gsd';
const DEPLOYMENT = `${RELEASE}-git-sshd`;
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;
const CHART = join(import.meta.dirname, '..', '..', 'charts', 'git-sshd');
/** The project git-sshd's clients use, and a bigger one that a throttled clone is still reading when Gitaly goes. */
const PROJECT = 'group/project';
const BIG_PROJECT = 'group/big';
const BIG_RELATIVE = RELATIVE.replace(/\.git$/, '-big.git');
const DENIED_PROJECT = 'group/secret';
/** GitLab's own answer for a project the user may not see (lib/gitlab/git_access.rb). */
const PROJECT_NOT_FOUND = 'The project you were looking for could not be found or you don\'t have permission to view it.';
const GITALY_DOWN = /ERROR: The git server, Gitaly, is not available at this time\. Please contact your administrator\./;
const MEGABYTE = 1024 * 1024;

interface Pod {
  readonly name: string;
  readonly ip: string;
  readonly templateHash: string;
  readonly ready: boolean;
  readonly deleting: boolean;
  readonly spec: Record<string, any>;
}

async function pods(selector: string): Promise<Pod[]> {
  const list = JSON.parse(await kubectlOk(['get', 'pods', '-l', selector, '-o', 'json'])) as { items: Array<Record<string, any>> };
  return list.items.map((item) => ({
    name: item.metadata.name,
    ip: item.status.podIP ?? '',
    templateHash: item.metadata.labels?.['pod-template-hash'] ?? '',
    ready: (item.status.conditions ?? []).some((condition: { type: string; status: string }) => condition.type === 'Ready' && condition.status === 'True'),
    deleting: Boolean(item.metadata.deletionTimestamp),
    spec: item.spec,
  }));
}

/** Bytes under `dir` (a clone in progress: its pack arrives in objects/pack/tmp_pack_*). */
function bytesUnder(dir: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(dir, entry);
    try {
      const stat = statSync(path);
      total += stat.isDirectory() ? bytesUnder(path) : stat.size;
    } catch {
      // Renamed or removed while we looked.
    }
  }
  return total;
}

function clientFor(host: string, port: number): GitClient {
  const env = (key: ClientKey) => ({ GIT_SSH_COMMAND: sshCommand(key, port), GIT_CONFIG_NOSYSTEM: '1', HOME: process.env.HOME ?? '/tmp' });
  return {
    url: (repo) => `ssh://git@${host}:${port}/${repo}.git`,
    git: (key, args, cwd) =>
      run('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', '-c', 'init.defaultBranch=main', ...args], { ...(cwd ? { cwd } : {}), env: env(key), timeoutMs: 300_000 }),
    slowGit: (key, bytesPerSecond, args) => {
      const throttle = join(import.meta.dirname, '..', 'helpers', 'throttle.mjs');
      const pipeline = `set -o pipefail; ${env(key).GIT_SSH_COMMAND} "$@" | ${process.execPath} ${throttle} ${bytesPerSecond}`;
      return run('git', args, { env: { ...env(key), GIT_SSH_COMMAND: `bash -c '${pipeline}' slow-ssh` }, timeoutMs: 300_000 });
    },
  };
}

describe('backend gitlab on a real cluster: git-sshd x3 through the Service, git in the Gitaly test peer as a pod, GitLab\'s internal API on the host', { timeout: 20 * 60_000 }, () => {
  const api = new GitlabApiFixture(SECRET);
  const alice = makeKey();
  const storage = temporaryDir('git-sshd-k8s-gitaly-storage-');
  const scratch = temporaryDir('git-sshd-k8s-gitlab-');
  const valuesFile = join(scratch, 'values.json');
  let seededHead = '';
  let gitalyAddress = '';
  let service: GitClient;
  let namespaceMade = false;

  const inGitaly = (args: string[]) => kubectlOk(['exec', 'deploy/gitaly', '--', 'git', '-C', REPO_IN_POD, ...args]);

  before(async () => {
    assert.ok(BIN && process.env.KUBECONFIG && process.env.GIT_SSHD_K8S_IMAGE, 'run through `npm run test:k8s` (KUBECONFIG, GIT_SSHD_K8S_BIN and GIT_SSHD_K8S_IMAGE)');
    const gitalyImage = process.env.GIT_SSHD_K8S_GITALY_IMAGE ?? execFileSync('bash', [join(import.meta.dirname, 'gitaly-image.sh'), '--import'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!;
    seededHead = seedRepository(storage, scratch, 8);
    seedRepository(storage, scratch, 48, BIG_RELATIVE);

    await run(join(BIN, 'kubectl'), ['create', 'namespace', NAMESPACE]).then((created) => assert.equal(created.code, 0, created.stderr));
    namespaceMade = true;
    await kubectlOk(['apply', '-f', '-'], gitalyManifests({ image: gitalyImage, storageDir: storage, token: TOKEN }));
    await kubectlOk(['rollout', 'status', 'deployment/gitaly', '--timeout=300s'], undefined, 320_000);
    const clusterIp = (await kubectlOk(['get', 'service', 'gitaly', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    gitalyAddress = `tcp://${clusterIp}:${GITALY_PORT}`;

    // The fake GitLab listens where pods reach the host: the pod bridge's gateway.
    await api.start({ host: GATEWAY });
    api.users.set(blobOf(alice.publicLine), { keyId: 11, userId: 7, username: 'alice' });
    api.handlers['/api/v4/internal/allowed'] = (req) => {
      const project = String(req.body.project).replace(/^\/|\.git$/g, '');
      if (project === PROJECT) return allowedFor(RELATIVE, PROJECT);
      if (project === BIG_PROJECT) return allowedFor(BIG_RELATIVE, BIG_PROJECT);
      return { status: 404, body: { status: false, message: PROJECT_NOT_FOUND } };
    };

    // The shared secret as GitLab's .gitlab_shell_secret holds it (with its newline).
    await kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gitlab-shell-secret' }, stringData: { secret: SECRET } }));
    const image = process.env.GIT_SSHD_K8S_IMAGE!;
    const colon = image.lastIndexOf(':');
    writeFileSync(
      valuesFile,
      JSON.stringify({
        replicaCount: 3,
        image: { repository: image.slice(0, colon), tag: image.slice(colon + 1), pullPolicy: 'Never' },
        backend: { type: 'gitlab', gitlab: { url: api.url, gitTransport: 'gitaly', secretRef: { name: 'gitlab-shell-secret', key: 'secret' } } },
        // Long enough that the API-down test's keys, looked up a moment before, are still known.
        config: { gitlab: { key_cache_ttl: '10m' } },
      }),
    );
    await helmOk(['install', RELEASE, CHART, '-f', valuesFile, '--wait', '--timeout', '8m']);
    const clusterIpSsh = (await kubectlOk(['get', 'service', DEPLOYMENT, '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    service = clientFor(clusterIpSsh, 22);
  });

  after(async () => {
    await killProcessGroups();
    await api.stop();
    if (namespaceMade) await run(join(BIN, 'kubectl'), ['delete', 'namespace', NAMESPACE, '--wait=true', '--timeout=180s'], { timeoutMs: 200_000 });
  });

  function allowedFor(relativePath: string, projectPath: string): Reply {
    const reply = allowedReply({ relativePath, projectPath, userId: 7, username: 'alice' });
    const body = reply.body as Record<string, any>;
    // No receive.MaxInputSize: the stream's pushes and the big project are over 1 MB.
    return { status: 200, body: { ...body, gl_key_id: 11, git_config_options: [], gitaly: { ...body.gitaly, address: gitalyAddress, token: TOKEN, features: {} } } };
  }

  test('three replicas run with no repository volume: git-sshd\'s pods mount only their config, /tmp and an emptyDir', async () => {
    const running = (await pods(SELECTOR)).filter((pod) => !pod.deleting);
    assert.equal(running.length, 3);
    for (const pod of running) {
      assert.ok(pod.ready, `${pod.name} is Ready`);
      const volumes = pod.spec.volumes as Array<Record<string, unknown>>;
      for (const volume of volumes) {
        assert.ok(volume.configMap || volume.emptyDir || volume.projected, `${pod.name}: volume ${JSON.stringify(volume)} is a ConfigMap, an emptyDir or the API token`);
      }
      const container = pod.spec.containers[0];
      const mounts = (container.volumeMounts as Array<{ mountPath: string }>).map((mount) => mount.mountPath);
      assert.ok(!mounts.some((path) => path.startsWith('/var/opt/gitlab')), `${pod.name} mounts no repositories: ${mounts.join(', ')}`);
      const secret = (container.env as Array<Record<string, any>>).find((entry) => entry.name === 'GITLAB_SHELL_SECRET');
      assert.deepEqual(secret?.valueFrom?.secretKeyRef, { name: 'gitlab-shell-secret', key: 'secret' });
    }
  });

  test('clone through the Service ClusterIP runs upload-pack in the Gitaly pod, with GitLab\'s identity in its metadata', async () => {
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
    // Every internal API call carried a valid JWT of the shared secret from the pod's Secret.
    assert.ok(api.requests.length > 0);
    assert.deepEqual(api.requests.filter((req) => req.jwtError), []);
  });

  test('a push lands in the Gitaly pod\'s repository, through its hooks (a force push is refused with GitLab\'s message)', async () => {
    const work = makeWorkTree({ 'FEATURE.md': 'from the host, through the Service\n' });
    const push = await service.git(alice, ['push', service.url(PROJECT), 'HEAD:refs/heads/feature'], work);
    assert.equal(push.code, 0, push.stderr);
    assert.equal((await inGitaly(['rev-parse', 'refs/heads/feature'])).trim(), gitLocal(['rev-parse', 'HEAD'], work));
    const unrelated = makeWorkTree({ 'OTHER.md': 'rewritten history\n' });
    const force = await service.git(alice, ['push', '--force', service.url(PROJECT), 'HEAD:refs/heads/main'], unrelated);
    assert.notEqual(force.code, 0);
    assert.ok(force.stderr.includes(`remote: ${FORCE_PUSH_REFUSED}`), force.stderr);
    assert.equal((await inGitaly(['rev-parse', 'refs/heads/main'])).trim(), seededHead);
  });

  test('a key GitLab does not know is refused', async () => {
    const stranger = makeKey();
    const asked = api.to('/authorized_keys').length;
    const clone = await service.git(stranger, ['clone', service.url(PROJECT), join(temporaryDir('git-sshd-k8s-stranger-'), 'p')]);
    assert.notEqual(clone.code, 0);
    assert.match(clone.stderr, /Permission denied \(publickey\)/);
    assert.ok(api.to('/authorized_keys').slice(asked).some((req) => req.query.key === blobOf(stranger.publicLine)), 'GitLab was asked about the key');
  });

  test('a project GitLab denies is refused with GitLab\'s message, and Gitaly is never called', async () => {
    const before = (await gitalyRpcs()).length;
    const clone = await service.git(alice, ['clone', service.url(DENIED_PROJECT), join(temporaryDir('git-sshd-k8s-denied-'), 'p')]);
    assert.notEqual(clone.code, 0);
    assert.ok(clone.stderr.includes(`ERROR: ${PROJECT_NOT_FOUND}`), clone.stderr);
    assert.equal((await gitalyRpcs()).length, before);
  });

  test('a rolling update (helm upgrade with a config change) under a stream of clones and pushes: no operation fails, every push is in Gitaly', { timeout: 12 * 60_000 }, async () => {
    const before = (await pods(SELECTOR)).filter((pod) => !pod.deleting);
    const stop = new AbortController();
    const stream = gitStream({ client: service, key: alice, repo: PROJECT, workers: ['clone', 'clone', 'slow-clone', 'push', 'push'], slowBytesPerSecond: 2 * MEGABYTE, stop: stop.signal });
    let operations: Operation[] = [];
    let upgradeStartedAt = 0;
    let rolledAt = 0;
    try {
      // The stream is running before the upgrade starts.
      await sleep(5_000);
      upgradeStartedAt = performance.now();
      await helmOk(['upgrade', RELEASE, CHART, '-f', valuesFile, '--set', 'config.sshd.login_grace_time=45s', '--wait', '--timeout', '8m']);
      // Every old pod has drained and gone; the stream keeps running a little longer.
      await waitUntil('the old pods are gone', async () => (await pods(SELECTOR)).every((pod) => !before.some((old) => old.name === pod.name)), 5 * 60_000, 1_000);
      rolledAt = performance.now();
      await sleep(5_000);
    } finally {
      stop.abort();
      operations = await within('the stream ends', stream, 5 * 60_000);
    }
    const failed = operations.filter((operation) => !operation.ok);
    const during = operations.filter((operation) => operation.endedAt > upgradeStartedAt && operation.startedAt < rolledAt);
    const longest = Math.max(...operations.map((operation) => operation.endedAt - operation.startedAt));
    const count = (kind: string) => operations.filter((operation) => operation.kind === kind).length;
    console.log(
      `rolling update: ${operations.length} operations (${count('clone')} clones, ${count('slow-clone')} throttled clones, ${count('push')} pushes), ` +
        `${during.length} overlapping the roll-out (${Math.round((rolledAt - upgradeStartedAt) / 1000)} s), ${failed.length} failed, longest ${Math.round(longest / 1000)} s`,
    );
    assert.deepEqual(failed.map((operation) => `${operation.kind}: ${operation.failure}`), []);
    for (const kind of ['clone', 'slow-clone', 'push']) assert.ok(during.some((operation) => operation.kind === kind), `${kind}s ran during the roll-out`);
    const after = (await pods(SELECTOR)).filter((pod) => !pod.deleting);
    assert.equal(after.length, 3);
    assert.ok(after.every((pod) => pod.ready && !before.some((old) => old.templateHash === pod.templateHash)), 'three new pods, all Ready');
    const refs = new Map(
      (await inGitaly(['for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads/load/']))
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split(' ') as [string, string]),
    );
    for (const { pushed } of operations.filter((operation) => operation.pushed)) assert.equal(refs.get(pushed!.ref), pushed!.commit, `${pushed!.ref} is in Gitaly`);
  });

  test('the Gitaly pod deleted mid-clone: the client gets a clear ERROR, nothing hangs, and every replica clones again once Gitaly is back', { timeout: 8 * 60_000 }, async () => {
    const [gitaly] = (await pods('app.kubernetes.io/name=gitaly-peer')).filter((pod) => !pod.deleting);
    const dest = join(temporaryDir('git-sshd-k8s-gitaly-gone-'), 'p');
    const clone = service.slowGit(alice, MEGABYTE, ['clone', '--bare', service.url(BIG_PROJECT), dest]);
    await waitUntil('the pack is arriving', () => bytesUnder(dest) > 3 * MEGABYTE, 120_000, 100);
    await kubectlOk(['delete', 'pod', gitaly!.name, '--wait=false']);
    const result = await within('the clone ends', clone, 180_000);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, GITALY_DOWN);
    await kubectlOk(['rollout', 'status', 'deployment/gitaly', '--timeout=180s'], undefined, 200_000);
    await waitUntil('a new Gitaly pod is Ready', async () => (await pods('app.kubernetes.io/name=gitaly-peer')).some((pod) => pod.ready && !pod.deleting && pod.name !== gitaly!.name), 180_000, 1_000);
    // Each replica, through its own pod IP: each had a channel to the Gitaly that went.
    for (const pod of (await pods(SELECTOR)).filter((candidate) => !candidate.deleting)) {
      const direct = clientFor(pod.ip, 2222);
      const again = await direct.git(alice, ['clone', '-q', '--bare', direct.url(PROJECT), join(temporaryDir('git-sshd-k8s-gitaly-back-'), 'p')]);
      assert.equal(again.code, 0, `${pod.name}: ${again.stderr}`);
    }
  });

  test('GitLab\'s API down: a known key\'s clone gets a clear ERROR on every replica, and an unknown key is refused, without hanging', { timeout: 8 * 60_000 }, async () => {
    const replicas = (await pods(SELECTOR)).filter((pod) => !pod.deleting);
    // Each replica looks alice's key up while GitLab answers (and keeps it key_cache_ttl).
    for (const pod of replicas) {
      const direct = clientFor(pod.ip, 2222);
      const primed = await direct.git(alice, ['ls-remote', direct.url(PROJECT)]);
      assert.equal(primed.code, 0, `${pod.name}: ${primed.stderr}`);
    }
    await api.stop();
    for (const pod of replicas) {
      const direct = clientFor(pod.ip, 2222);
      const refused = await direct.git(alice, ['ls-remote', direct.url(PROJECT)]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /ERROR: Internal API unreachable/, `${pod.name}: ${refused.stderr}`);
    }
    const stranger = await service.git(makeKey(), ['ls-remote', service.url(PROJECT)]);
    assert.notEqual(stranger.code, 0);
    assert.match(stranger.stderr, /GitLab|Permission denied/);
  });

  /** The Gitaly peer's finished RPCs, from its pod's log (one JSON line each). */
  async function gitalyRpcs(): Promise<Array<{ method: string; code: string; metadata: Record<string, string> }>> {
    const log = await kubectlOk(['logs', 'deploy/gitaly']);
    return log
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { event: string; method: string; code: string; metadata: Record<string, string> })
      .filter((event) => event.event === 'rpc');
  }
});
