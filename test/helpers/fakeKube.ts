import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express, { type Response } from 'express';
import { temporaryDir } from './processes.js';
import { waitUntil } from './wait.js';

interface Secret {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: { name: string; namespace: string; resourceVersion: string; [key: string]: unknown };
  type?: string;
  data: Record<string, string>;
}

/**
 * The few Kubernetes API endpoints git-sshd uses for its host key Secret: get, create
 * (409 when it exists) and watch; and what the chart's `lookup`s read through helm's
 * client (discovery, a claim, the StorageClasses). No API server can run on these
 * machines; this one answers as the real one does for exactly these calls.
 */
export class FakeKubeApi {
  readonly secrets = new Map<string, Secret>();
  /** PersistentVolumeClaims by `namespace/name`; `release`: the Helm release that made it (and kept it). */
  readonly claims = new Map<string, { accessModes: string[]; storageClassName: string; release?: string }>();
  /** The cluster's StorageClasses, or `forbidden` for a user with namespace rights only. */
  storageClasses: Array<{ name: string; isDefault?: boolean }> | 'forbidden' = [];
  /** What `/version` reports (helm's capabilities at install). */
  serverVersion = 'v1.37.2';
  readonly requests: Array<{ method: string; path: string; status: number }> = [];
  /**
   * Holds each create until this many reads of the Secret have been answered, so that two
   * replicas both find it missing first, however far apart a busy machine starts them.
   */
  holdCreatesUntilReads = 0;
  port = 0;
  private version = 1;
  private readonly watchers = new Set<{ namespace: string; name: string; res: Response }>();
  private server: Server | undefined;

  async start(): Promise<void> {
    const app = express();
    app.use(express.json());
    app.get('/api/v1/namespaces/:ns/secrets/:name', (req, res) => {
      const secret = this.secrets.get(`${req.params.ns}/${req.params.name}`);
      this.answer(req.method, req.path, res, secret ? 200 : 404, secret ?? status(404, 'NotFound', `secrets "${req.params.name}" not found`));
    });
    app.post('/api/v1/namespaces/:ns/secrets', async (req, res) => {
      await waitUntil('reads of the Secret before a create', () => this.reads() >= this.holdCreatesUntilReads);
      const body = req.body as Secret;
      const key = `${req.params.ns}/${body.metadata.name}`;
      if (this.secrets.has(key)) {
        this.answer(req.method, req.path, res, 409, status(409, 'AlreadyExists', `secrets "${body.metadata.name}" already exists`));
        return;
      }
      const secret = { ...body, metadata: { ...body.metadata, namespace: req.params.ns, resourceVersion: String(this.version++) } };
      this.secrets.set(key, secret);
      this.answer(req.method, req.path, res, 201, secret);
    });
    app.get('/api/v1/namespaces/:ns/secrets', (req, res) => {
      const name = String(req.query.fieldSelector ?? '').replace(/^metadata\.name=/, '');
      this.requests.push({ method: 'WATCH', path: req.path, status: 200 });
      res.status(200).type('application/json');
      res.flushHeaders();
      const watcher = { namespace: req.params.ns, name, res };
      this.watchers.add(watcher);
      const current = this.secrets.get(`${req.params.ns}/${name}`);
      if (current) res.write(`${JSON.stringify({ type: 'ADDED', object: current })}\n`);
      req.on('close', () => this.watchers.delete(watcher));
    });
    this.lookupRoutes(app);
    // Anything else does not exist (helm's install checks each object it would create).
    app.use((req, res) => this.answer(req.method, req.path, res, 404, status(404, 'NotFound', `${req.path} not found`)));
    this.server = app.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
  }

  private reads(): number {
    return this.requests.filter((request) => request.method === 'GET' && request.path.includes('/secrets/')).length;
  }

  /** Replaces the Secret's data, as `kubectl apply` would, and tells the watchers. */
  update(namespace: string, name: string, data: Record<string, string>): void {
    const key = `${namespace}/${name}`;
    const existing = this.secrets.get(key);
    if (!existing) throw new Error(`no secret ${key}`);
    const secret = { ...existing, data, metadata: { ...existing.metadata, resourceVersion: String(this.version++) } };
    this.secrets.set(key, secret);
    for (const watcher of this.watchers) {
      if (watcher.namespace === namespace && watcher.name === name) watcher.res.write(`${JSON.stringify({ type: 'MODIFIED', object: secret })}\n`);
    }
  }

  /** A kubeconfig file pointing at this server. */
  kubeconfig(namespace: string): string {
    const file = join(temporaryDir('git-sshd-kube-'), 'config');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        // client-node refuses plain http unless TLS checks are off, which loopback needs no more than that.
        `- name: fake\n  cluster:\n    server: http://127.0.0.1:${this.port}\n    insecure-skip-tls-verify: true`,
        'users:',
        '- name: git-sshd\n  user:\n    token: fake-token',
        'contexts:',
        `- name: fake\n  context:\n    cluster: fake\n    user: git-sshd\n    namespace: ${namespace}`,
        'current-context: fake',
        '',
      ].join('\n'),
    );
    return file;
  }

  async stop(): Promise<void> {
    for (const watcher of this.watchers) watcher.res.end();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Discovery as helm reads it at install: the version and the kinds the chart renders. */
  private lookupRoutes(app: express.Express): void {
    const resource = (name: string, kind: string, namespaced = true) => ({ name, singularName: kind.toLowerCase(), namespaced, kind, verbs: ['get', 'list', 'create'] });
    const groups: Record<string, ReturnType<typeof resource>[]> = {
      v1: [resource('persistentvolumeclaims', 'PersistentVolumeClaim'), resource('secrets', 'Secret'), resource('configmaps', 'ConfigMap'), resource('services', 'Service'), resource('serviceaccounts', 'ServiceAccount')],
      'apps/v1': [resource('deployments', 'Deployment')],
      'rbac.authorization.k8s.io/v1': [resource('roles', 'Role'), resource('rolebindings', 'RoleBinding')],
      'storage.k8s.io/v1': [resource('storageclasses', 'StorageClass', false)],
    };
    app.get('/version', (req, res) => {
      const [major, minor] = this.serverVersion.replace(/^v/, '').split('.');
      this.answer(req.method, req.path, res, 200, { major, minor, gitVersion: this.serverVersion, platform: 'linux/amd64' });
    });
    app.get('/api', (req, res) => this.answer(req.method, req.path, res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] }));
    app.get('/apis', (req, res) => {
      const list = Object.keys(groups)
        .filter((gv) => gv.includes('/'))
        .map((gv) => ({ name: gv.split('/')[0], versions: [{ groupVersion: gv, version: 'v1' }], preferredVersion: { groupVersion: gv, version: 'v1' } }));
      this.answer(req.method, req.path, res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: list });
    });
    for (const [groupVersion, resources] of Object.entries(groups)) {
      app.get(groupVersion === 'v1' ? '/api/v1' : `/apis/${groupVersion}`, (req, res) => {
        this.answer(req.method, req.path, res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources });
      });
    }
    app.get('/api/v1/namespaces/:ns/persistentvolumeclaims/:name', (req, res) => {
      const claim = this.claims.get(`${req.params.ns}/${req.params.name}`);
      if (!claim) {
        this.answer(req.method, req.path, res, 404, status(404, 'NotFound', `persistentvolumeclaims "${req.params.name}" not found`));
        return;
      }
      const { release, ...rest } = claim;
      const spec = { ...rest, resources: { requests: { storage: '10Gi' } } };
      const owner = release
        ? { labels: { 'app.kubernetes.io/managed-by': 'Helm' }, annotations: { 'meta.helm.sh/release-name': release, 'meta.helm.sh/release-namespace': req.params.ns } }
        : {};
      const metadata = { name: req.params.name, namespace: req.params.ns, ...owner };
      this.answer(req.method, req.path, res, 200, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata, spec });
    });
    app.get('/apis/storage.k8s.io/v1/storageclasses', (req, res) => {
      if (this.storageClasses === 'forbidden') {
        const message = 'storageclasses.storage.k8s.io is forbidden: User "ns-admin" cannot list resource "storageclasses" in API group "storage.k8s.io" at the cluster scope';
        this.answer(req.method, req.path, res, 403, status(403, 'Forbidden', message));
        return;
      }
      const items = this.storageClasses.map((sc) => ({
        apiVersion: 'storage.k8s.io/v1',
        kind: 'StorageClass',
        metadata: { name: sc.name, ...(sc.isDefault ? { annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } } : {}) },
        provisioner: 'example.com/provisioner',
      }));
      this.answer(req.method, req.path, res, 200, { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClassList', metadata: {}, items });
    });
  }

  private answer(method: string, path: string, res: Response, code: number, body: unknown): void {
    this.requests.push({ method, path, status: code });
    res.status(code).json(body);
  }
}

function status(code: number, reason: string, message: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}
