import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { temporaryDir } from './helpers/client.js';
import { ROOT } from './helpers/server.js';

const CHART = join(ROOT, 'charts', 'git-sshd');
const HELM = process.env.HELM ?? 'helm';
/** `helm template` assumes Kubernetes 1.20 unless told; the chart needs 1.30 (preStop sleep). */
const KUBE_VERSION = '1.31.0';
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
  const result = helm(['template', 'git-sshd', CHART, '--namespace', 'git', '--kube-version', KUBE_VERSION, ...values, ...extra]);
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
        writeFileSync(join(dir, 'config.yml'), find(objects, 'ConfigMap').data!['config.yml']!);
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

  test('more than one replica of the local backend needs a ReadWriteMany volume: the render says so', () => {
    for (const extra of [['--set', 'replicaCount=2'], ['--set', 'autoscaling.enabled=true']]) {
      const result = helm(['template', 'x', CHART, '--kube-version', KUBE_VERSION, ...extra]);
      assert.notEqual(result.code, 0, extra.join(' '));
      assert.match(result.stderr, /needs backend.local.persistence.accessModes \[ReadWriteMany\]/);
    }
    assert.equal(find(render('default', ['--set', 'replicaCount=3', '--set', 'backend.type=gitlab', '--set', 'backend.gitlab.url=https://gitlab.example', '--set', 'backend.gitlab.secretRef.name=s']), 'Deployment').spec.replicas, 3);
  });

  test('probes point at the app\'s own liveness and readiness paths on its monitoring port', () => {
    const objects = render('default', ['--set', 'config.sshd.readiness_probe=/ready', '--set', 'ports.monitoring=9200']);
    const container = find(objects, 'Deployment').spec.template.spec.containers[0];
    const config = parseYaml(find(objects, 'ConfigMap').data!['config.yml']!);
    assert.equal(container.readinessProbe.httpGet.path, config.sshd.readiness_probe);
    assert.equal(container.livenessProbe.httpGet.path, config.sshd.liveness_probe);
    const port = container.ports.find((p: { name: string }) => p.name === container.readinessProbe.httpGet.port);
    assert.equal(`0.0.0.0:${port.containerPort}`, config.sshd.web_listen);
  });

  test('the drain time is the termination grace period minus the preStop sleep and the margin; no room is a render error', () => {
    const objects = render('default', ['--set', 'deployment.terminationGracePeriodSeconds=90', '--set', 'deployment.preStopSleepSeconds=20']);
    const config = parseYaml(find(objects, 'ConfigMap').data!['config.yml']!);
    assert.equal(config.sshd.grace_period, '65s');
    const spec = find(objects, 'Deployment').spec.template.spec;
    assert.equal(spec.terminationGracePeriodSeconds, 90);
    assert.equal(spec.containers[0].lifecycle.preStop.sleep.seconds, 20);
    const tooShort = helm(['template', 'x', CHART, '--kube-version', KUBE_VERSION, '--set', 'deployment.terminationGracePeriodSeconds=15']);
    assert.notEqual(tooShort.code, 0);
    assert.match(tooShort.stderr, /terminationGracePeriodSeconds \(15\) must exceed preStopSleepSeconds \(10\) \+ graceMarginSeconds \(5\)/);
  });

  test('PROXY protocol reaches both the app and the load balancer annotation', () => {
    const objects = render('proxy-aws');
    const config = parseYaml(find(objects, 'ConfigMap').data!['config.yml']!);
    assert.equal(config.sshd.proxy_protocol, true);
    assert.deepEqual(config.sshd.proxy_allowed, ['10.0.0.0/8']);
    assert.equal(find(objects, 'Service', 'git-sshd').metadata.annotations!['service.beta.kubernetes.io/aws-load-balancer-proxy-protocol'], '*');
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
    assert.equal(parseYaml(find(api, 'ConfigMap').data!['config.yml']!).sshd.host_keys_secret, 'git-sshd-host-keys');
    assert.equal(find(api, 'Deployment').spec.template.spec.automountServiceAccountToken, true);
  });

  test('values outside the schema are refused with the path named', () => {
    const result = helm(['template', 'x', CHART, '--kube-version', KUBE_VERSION, '--set', 'proxyProtocol.cloud=gcp']);
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

  test('k8s/ is exactly what the chart renders with its default values (never edited by hand)', () => {
    const expected = execFileSync('bash', [join(ROOT, 'scripts', 'render-k8s.sh'), '--stdout'], { encoding: 'utf8', env: { ...process.env, HELM } });
    assert.equal(readFileSync(join(ROOT, 'k8s', 'git-sshd.yaml'), 'utf8'), expected, 'run scripts/render-k8s.sh and commit k8s/');
  });
});
