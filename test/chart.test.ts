import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { README, renderedReadme, valuesTable } from '../scripts/chart-readme.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/logging/logger.js';
import { logLoadedHostKey, parseHostKey } from '../src/ssh/hostkeys/hostKeys.js';
import { run, temporaryDir } from './helpers/client.js';
import { FakeKubeApi } from './helpers/fakeKube.js';
import { ROOT } from './helpers/server.js';

const CHART = join(ROOT, 'charts', 'git-sshd');
const HELM = process.env.HELM ?? 'helm';
const VARIANTS = ['default', ...readdirSync(join(CHART, 'ci')).map((file) => file.replace(/-values\.yaml$/, ''))];

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; annotations?: Record<string, string> }; spec?: any; data?: Record<string, string> };

/** The ENV the image sets (the Dockerfile's runtime stage), as the app sees it in a pod. */
function dockerfileEnv(): Record<string, string> {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const runtime = text.slice(text.lastIndexOf('FROM '));
  const env: Record<string, string> = {};
  for (const line of runtime.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const [, key, value] of line.slice(4).matchAll(/([A-Z_]+)=(\S+)/g)) env[key!] = value!;
  }
  assert.ok(Object.keys(env).length > 0, 'the Dockerfile sets ENV');
  return env;
}

function helm(args: string[]): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(HELM, args, { encoding: 'utf8', timeout: 300_000 });
  if (result.error) throw result.error;
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function render(variant: string, extra: string[] = []): K8sObject[] {
  const values = variant === 'default' ? [] : ['-f', join(CHART, 'ci', `${variant}-values.yaml`)];
  const result = helm(['template', 'git-sshd', CHART, '--namespace', 'git', ...values, ...extra]);
  assert.equal(result.code, 0, result.stderr);
  return parseAllDocuments(result.stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((doc): doc is K8sObject => doc !== null);
}

function find(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.find((object) => object.kind === kind && (name === undefined || object.metadata.name === name));
  assert.ok(found, `no ${kind} ${name ?? ''}`);
  return found;
}

/** The kubernetes-models class for an object, to validate it against the API's OpenAPI schema. */
async function modelFor(object: K8sObject): Promise<new (data: unknown) => { validate(): void }> {
  if (object.apiVersion === 'monitoring.coreos.com/v1') {
    const module = await import(`@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${object.kind}`);
    return module[object.kind];
  }
  const group = object.apiVersion.includes('/') ? object.apiVersion : `core/${object.apiVersion}`;
  const module = await import(`kubernetes-models/${group.replace(/^core\//, '')}/${object.kind}`);
  return module[object.kind];
}

describe('the Helm chart, rendered by the real helm', () => {
  test('helm lint --strict passes for the default values and every variant in ci/', () => {
    for (const variant of VARIANTS) {
      const values = variant === 'default' ? [] : ['-f', join(CHART, 'ci', `${variant}-values.yaml`)];
      const result = helm(['lint', '--strict', CHART, ...values]);
      assert.equal(result.code, 0, `${variant}: ${result.stdout}${result.stderr}`);
    }
  });

  test('every rendered object of every variant validates against the Kubernetes schemas', async () => {
    for (const variant of VARIANTS) {
      for (const object of render(variant)) {
        const Model = await modelFor(object);
        assert.doesNotThrow(() => new Model(object).validate(), `${variant}: ${object.kind} ${object.metadata.name}`);
      }
    }
  });

  test('the config.yml the chart writes loads in git-sshd itself, with the image\'s and the pod\'s environment, for every variant', () => {
    const imageEnv = dockerfileEnv();
    for (const variant of VARIANTS) {
      for (const ports of [[], ['--set', 'ports.ssh=2022', '--set', 'ports.monitoring=9200']]) {
        const objects = render(variant, ports);
        const dir = temporaryDir('git-sshd-chart-config-');
        writeFileSync(join(dir, 'config.yml'), find(objects, 'ConfigMap', 'git-sshd').data!['config.yml']!);
        const container = find(objects, 'Deployment').spec.template.spec.containers[0];
        const podEnv = Object.fromEntries((container.env as Array<{ name: string; value?: string }>).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
        const env = { ...imageEnv, ...podEnv, GITLAB_SHELL_SECRET: 'from-a-secret' };
        // The container's --config is the file the ConfigMap mounts; here it is read from a copy.
        const mount = (container.volumeMounts as Array<{ name: string; mountPath: string }>).find((m) => m.name === 'config')!.mountPath;
        assert.deepEqual(container.args, ['--config', `${mount}/config.yml`]);
        const { config, warnings } = loadConfig({ argv: ['--config', join(dir, 'config.yml')], env, cwd: dir });
        const portOf = (name: string) => container.ports.find((p: { name: string }) => p.name === name).containerPort;
        assert.equal(config.sshd.listen.port, portOf('ssh'), `${variant}: the SSH port the app listens on is the container port`);
        assert.equal(config.sshd.webListen?.port, portOf('monitoring'), `${variant}: the probes reach the monitoring port the app listens on`);
        assert.equal(config.local.dataDir, '/data');
        assert.deepEqual(warnings.filter((warning) => !warning.includes('proxy_allowed')), [], variant);
      }
    }
  });

  test('a change of config changes the pod template (checksum/config), and only then', () => {
    const checksum = (extra: string[]) => find(render('default', extra), 'Deployment').spec.template.metadata.annotations['checksum/config'];
    assert.equal(checksum([]), checksum([]));
    assert.notEqual(checksum([]), checksum(['--set', 'config.sshd.max_auth_tries=3']));
  });

  test('a change of inline users leaves the pods alone (the server re-reads them live); a change of config does not', () => {
    const withUsers = (users: string, extra: string[] = []) => {
      const dir = temporaryDir('git-sshd-chart-users-');
      writeFileSync(join(dir, 'users.yml'), users);
      return render('default', ['--set-file', `backend.local.users=${join(dir, 'users.yml')}`, ...extra]);
    };
    const alice = 'users:\n  - name: alice\n    keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKmLwPAQuNyMZlSavFFd4KMZ3FlBYOvshvaeKtYvxNeM alice"]\n';
    const aliceAndBob = `${alice}  - name: bob\n    keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKmLwPAQuNyMZlSavFFd4KMZ3FlBYOvshvaeKtYvxNeM bob"]\n`;
    const before = withUsers(alice);
    const after = withUsers(aliceAndBob);
    const template = (objects: K8sObject[]) => find(objects, 'Deployment').spec.template;
    assert.notEqual(find(before, 'ConfigMap', 'git-sshd-users').data!['users.yml'], find(after, 'ConfigMap', 'git-sshd-users').data!['users.yml']);
    assert.deepEqual(template(after), template(before), 'the pod template is the same: no rollout');
    assert.notDeepEqual(template(withUsers(aliceAndBob, ['--set', 'config.log_level=debug'])), template(before));
  });

  test('helm template needs no --kube-version; a cluster older than 1.30 is refused with the reason', () => {
    assert.ok(render('default').length > 0);
    const old = helm(['template', 'x', CHART, '--kube-version', '1.29.0']);
    assert.notEqual(old.code, 0);
    assert.match(old.stderr, /git-sshd needs Kubernetes 1\.30 or later \(the preStop sleep action\); this cluster is v1\.29\.0/);
    assert.equal(helm(['template', 'x', CHART, '--kube-version', '1.30.0']).code, 0);
  });

  test('the default Service installs on any cluster (ClusterIP); LoadBalancer and NodePort are one value away', () => {
    const service = (extra: string[]) => find(render('default', extra), 'Service', 'git-sshd').spec;
    assert.equal(service([]).type, 'ClusterIP');
    assert.equal(service([]).externalTrafficPolicy, undefined);
    const lb = service(['--set', 'service.type=LoadBalancer']);
    assert.equal(lb.type, 'LoadBalancer');
    assert.equal(lb.externalTrafficPolicy, 'Local');
    assert.equal(service(['--set', 'service.type=NodePort', '--set', 'service.nodePort=30022']).ports[0].nodePort, 30022);
  });

  test('NOTES add the first user with the config file the pod runs with', () => {
    const notes = readFileSync(join(CHART, 'templates', 'NOTES.txt'), 'utf8');
    const container = find(render('default'), 'Deployment').spec.template.spec.containers[0];
    assert.ok(notes.includes(`node dist/cli/addUser.js --config ${container.args[1]} `), 'the add-user line names the pod\'s --config');
    assert.ok(readFileSync(join(ROOT, 'Dockerfile'), 'utf8').includes('WORKDIR /app'), 'dist/ is relative to the image\'s working directory');
  });

  test('the NOTES\' log grep for host key fingerprints finds the line the server writes in a pod (JSON)', () => {
    const notes = readFileSync(join(CHART, 'templates', 'NOTES.txt'), 'utf8');
    const pattern = /kubectl logs .*\| grep '([^']+)'/.exec(notes)?.[1];
    assert.ok(pattern, 'NOTES show a kubectl logs | grep line');
    const dir = temporaryDir('git-sshd-chart-key-');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]);
    const key = parseHostKey(readFileSync(join(dir, 'key')), 'secret/git-sshd-host-keys/ssh_host_ed25519_key');
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    logLoadedHostKey(createLogger({ logLevel: 'info', logFormat: 'json', logFile: '' }, { stream }), key);
    const found = lines.join('').split('\n').filter((line) => line.includes(pattern));
    assert.equal(found.length, 1, lines.join(''));
    assert.ok(found[0]!.includes(key.fingerprint));
  });

  test('more than one replica of the local backend needs a ReadWriteMany volume: the render says so', () => {
    for (const extra of [['--set', 'replicaCount=2'], ['--set', 'autoscaling.enabled=true']]) {
      const result = helm(['template', 'x', CHART, ...extra]);
      assert.notEqual(result.code, 0, extra.join(' '));
      assert.match(result.stderr, /needs backend.local.persistence.accessModes \[ReadWriteMany\]/);
    }
    assert.equal(find(render('default', ['--set', 'replicaCount=3', '--set', 'backend.type=gitlab', '--set', 'backend.gitlab.url=https://gitlab.example', '--set', 'backend.gitlab.secretRef.name=s']), 'Deployment').spec.replicas, 3);
  });

  test('probes point at the app\'s own liveness and readiness paths on its monitoring port', () => {
    const objects = render('default', ['--set', 'config.sshd.readiness_probe=/ready', '--set', 'ports.monitoring=9200']);
    const container = find(objects, 'Deployment').spec.template.spec.containers[0];
    const config = parseYaml(find(objects, 'ConfigMap', 'git-sshd').data!['config.yml']!);
    assert.equal(container.readinessProbe.httpGet.path, config.sshd.readiness_probe);
    assert.equal(container.livenessProbe.httpGet.path, config.sshd.liveness_probe);
    const port = container.ports.find((p: { name: string }) => p.name === container.readinessProbe.httpGet.port);
    assert.equal(`0.0.0.0:${port.containerPort}`, config.sshd.web_listen);
  });

  test('the drain time is the termination grace period minus the preStop sleep and the margin; no room is a render error', () => {
    const objects = render('default', ['--set', 'deployment.terminationGracePeriodSeconds=90', '--set', 'deployment.preStopSleepSeconds=20']);
    const config = parseYaml(find(objects, 'ConfigMap', 'git-sshd').data!['config.yml']!);
    assert.equal(config.sshd.grace_period, '65s');
    const spec = find(objects, 'Deployment').spec.template.spec;
    assert.equal(spec.terminationGracePeriodSeconds, 90);
    assert.equal(spec.containers[0].lifecycle.preStop.sleep.seconds, 20);
    const tooShort = helm(['template', 'x', CHART, '--set', 'deployment.terminationGracePeriodSeconds=15']);
    assert.notEqual(tooShort.code, 0);
    assert.match(tooShort.stderr, /terminationGracePeriodSeconds \(15\) must exceed preStopSleepSeconds \(10\) \+ graceMarginSeconds \(5\)/);
  });

  test('PROXY protocol reaches both the app and the load balancer annotation', () => {
    const objects = render('proxy-aws');
    const config = parseYaml(find(objects, 'ConfigMap', 'git-sshd').data!['config.yml']!);
    assert.equal(config.sshd.proxy_protocol, true);
    assert.deepEqual(config.sshd.proxy_allowed, ['10.0.0.0/8']);
    const service = find(objects, 'Service', 'git-sshd');
    assert.equal(service.metadata.annotations!['service.beta.kubernetes.io/aws-load-balancer-proxy-protocol'], '*');
    assert.equal(service.spec.type, 'LoadBalancer');
  });

  test('host keys: an existing Secret is mounted read-only; the API mode gets RBAC for that one Secret only', () => {
    const mounted = find(render('existing-secret'), 'Deployment').spec.template.spec;
    assert.deepEqual(
      mounted.containers[0].volumeMounts.find((m: { name: string }) => m.name === 'host-keys'),
      { name: 'host-keys', mountPath: '/etc/git-sshd/host-keys', readOnly: true },
    );
    assert.equal(mounted.volumes.find((v: { name: string }) => v.name === 'host-keys').secret.defaultMode, 0o400);
    const api = render('default');
    const role = find(api, 'Role');
    assert.deepEqual((role as unknown as { rules: Array<{ resourceNames?: string[] }> }).rules[0]!.resourceNames, ['git-sshd-host-keys']);
    assert.equal(parseYaml(find(api, 'ConfigMap', 'git-sshd').data!['config.yml']!).sshd.host_keys_secret, 'git-sshd-host-keys');
    assert.equal(find(api, 'Deployment').spec.template.spec.automountServiceAccountToken, true);
  });

  test('values outside the schema are refused with the path named', () => {
    const result = helm(['template', 'x', CHART, '--set', 'proxyProtocol.cloud=gcp']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /proxyProtocol\/cloud/);
  });

  test('helm-unittest suites under charts/git-sshd/tests pass', () => {
    const untt = process.env.HELM_UNITTEST ?? 'untt';
    const result = spawnSync(untt, [CHART], { encoding: 'utf8', env: { ...process.env, HELM_BIN: HELM }, timeout: 600_000 });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    assert.match(result.stdout, /Tests:\s+\d+ passed, \d+ total/);
  });

  test('k8s/ applies as a kustomization: the namespace and every rendered object', () => {
    const built = execFileSync('kubectl', ['kustomize', join(ROOT, 'k8s')], { encoding: 'utf8' });
    const objects = parseAllDocuments(built).map((doc) => doc.toJS() as K8sObject);
    assert.equal(objects.filter((object) => object.kind === 'Namespace').length, 1);
    assert.equal(objects.length, render('default').length + 1);
    for (const object of objects) if (object.kind !== 'Namespace') assert.equal((object.metadata as { namespace?: string }).namespace, 'git-sshd', object.kind);
  });

  test('k8s/ takes a registry image through kustomize images: in an overlay', () => {
    const overlay = temporaryDir('git-sshd-overlay-');
    // kustomize takes a base by relative path only (an absolute one yields nothing).
    const base = relative(overlay, join(ROOT, 'k8s'));
    writeFileSync(join(overlay, 'kustomization.yaml'), `resources: [${JSON.stringify(base)}]\nimages:\n  - name: git-sshd\n    newName: registry.example.com/platform/git-sshd\n    newTag: 0.1.0\n`);
    const built = parseAllDocuments(execFileSync('kubectl', ['kustomize', overlay], { encoding: 'utf8' })).map((doc) => doc.toJS() as K8sObject);
    assert.equal(find(built, 'Deployment').spec.template.spec.containers[0].image, 'registry.example.com/platform/git-sshd:0.1.0');
  });

  test('the chart README\'s values table is generated from values.yaml and the schema, and every value is described', () => {
    const current = readFileSync(README, 'utf8');
    assert.equal(current, renderedReadme(current), 'run: node --import tsx scripts/chart-readme.ts');
    const undocumented = valuesTable().split('\n').filter((line) => /\|\s*\|$/.test(line));
    assert.deepEqual(undocumented, [], 'describe these values in a comment above them in values.yaml');
  });

  test('k8s/ is exactly what the chart renders with its default values (never edited by hand)', () => {
    const expected = execFileSync('bash', [join(ROOT, 'scripts', 'render-k8s.sh'), '--stdout'], { encoding: 'utf8', env: { ...process.env, HELM } });
    assert.equal(readFileSync(join(ROOT, 'k8s', 'git-sshd.yaml'), 'utf8'), expected, 'run scripts/render-k8s.sh and commit k8s/');
  });
});

describe('the chart\'s checks against a cluster, through the real helm\'s lookups (a fake API server on loopback)', () => {
  const api = new FakeKubeApi();
  let kubeconfig = '';
  let home = '';
  before(async () => {
    await api.start();
    kubeconfig = api.kubeconfig('git');
    home = temporaryDir('git-sshd-helm-home-');
  });
  after(() => api.stop());
  // helm install's own path (capabilities from /version and discovery, lookups, the check
  // that no object exists yet), stopped before it creates anything. The fake serves no
  // OpenAPI documents, hence --disable-openapi-validation.
  const install = (extra: string[] = []) =>
    run(HELM, ['install', 'git-sshd', CHART, '--namespace', 'git', '--dry-run=server', '--disable-openapi-validation', '--kubeconfig', kubeconfig, ...extra], {
      env: { HOME: home },
      timeoutMs: 60_000,
    });

  test('a cluster older than 1.30 is refused at install, by the version it reports; a newer one installs', async () => {
    api.storageClasses = [{ name: 'standard', isDefault: true }];
    try {
      api.serverVersion = 'v1.29.4';
      const old = await install();
      assert.notEqual(old.code, 0);
      assert.match(old.stderr, /git-sshd needs Kubernetes 1\.30 or later \(the preStop sleep action\); this cluster is v1\.29\.4/);
      api.serverVersion = 'v1.37.2';
      const current = await install();
      assert.equal(current.code, 0, current.stderr);
      assert.match(current.stdout, /STATUS: pending-install/);
    } finally {
      api.serverVersion = 'v1.37.2';
    }
  });

  test('without a default StorageClass the install fails at once, naming the classes there are', async () => {
    api.storageClasses = [{ name: 'slow' }];
    const result = await install();
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /PersistentVolumeClaim would stay Pending: this cluster has no default StorageClass \(it has: slow\)/);
    api.storageClasses = [];
    assert.match((await install()).stderr, /no default StorageClass \(it has: none\)/);
    assert.equal((await install(['--set', 'backend.local.persistence.enabled=false'])).code, 0, 'no volume, no StorageClass needed');
  });

  test('a default StorageClass installs; with namespace rights only the check is forbidden until turned off', async () => {
    api.storageClasses = [{ name: 'slow' }, { name: 'standard', isDefault: true }];
    const ok = await install();
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(api.requests.some((req) => req.path === '/apis/storage.k8s.io/v1/storageclasses' && req.status === 200), 'helm asked the cluster');
    api.storageClasses = 'forbidden';
    const forbidden = await install();
    assert.notEqual(forbidden.code, 0);
    assert.match(forbidden.stderr, /storageclasses\.storage\.k8s\.io is forbidden/);
    const skipped = await install(['--set', 'backend.local.persistence.checkStorageClass=false']);
    assert.equal(skipped.code, 0, skipped.stderr);
  });

  test('scaling a ReadWriteOnce release to 3 by switching its claim to ReadWriteMany is refused before anything is applied', async () => {
    api.storageClasses = [];
    // The claim a release made and kept (helm.sh/resource-policy keep): a reinstall adopts it.
    api.claims.set('git/git-sshd', { accessModes: ['ReadWriteOnce'], storageClassName: 'standard', release: 'git-sshd' });
    try {
      const upgrade = await install(['--set', 'replicaCount=3', '--set', 'backend.local.persistence.accessModes={ReadWriteMany}']);
      assert.notEqual(upgrade.code, 0);
      assert.match(upgrade.stderr, /PersistentVolumeClaim git\/git-sshd exists with accessModes \["ReadWriteOnce"\], and the values ask for \["ReadWriteMany"\]/);
      const same = await install();
      assert.equal(same.code, 0, `the claim already there needs no StorageClass: ${same.stderr}`);
    } finally {
      api.claims.delete('git/git-sshd');
    }
  });
});
