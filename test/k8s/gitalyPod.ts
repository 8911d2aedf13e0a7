import { randomBytes } from 'node:crypto';
import { lchownSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitLocal } from '../helpers/client.js';
import { protectBranches, RELATIVE } from '../helpers/gitalyFixture.js';

/** Gitaly's usual port; the Service answers on it. */
export const GITALY_PORT = 8075;
/** GitLab's git user in its images, who owns the repositories (the image runs as it). */
const GIT_UID = 1000;
/** Where the repositories are in the Gitaly pod. */
export const STORAGE_IN_POD = '/home/git/repositories';
export const REPO_IN_POD = `${STORAGE_IN_POD}/${RELATIVE}`;

/**
 * The Gitaly test peer as a Deployment (one replica, so a deleted pod comes back by itself)
 * behind a ClusterIP Service, with the repositories on the Gitaly pod's own storage: a
 * hostPath directory, which on this single-node cluster stands in for Gitaly's persistent
 * volume (the repository outlives the pod, as it would on a PV). git-sshd's pods mount none.
 * The token comes from a Secret, as in GitLab's chart.
 */
export function gitalyObjects(options: { image: string; storageDir: string; token: string }): object[] {
  const labels = { 'app.kubernetes.io/name': 'gitaly-peer' };
  return [
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gitaly-token' }, stringData: { token: options.token } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'gitaly', labels },
      spec: {
        replicas: 1,
        // One Gitaly per storage: never two pods on the same repositories.
        strategy: { type: 'Recreate' },
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            terminationGracePeriodSeconds: 10,
            securityContext: { runAsNonRoot: true, runAsUser: GIT_UID, runAsGroup: GIT_UID, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'gitaly',
                image: options.image,
                imagePullPolicy: 'Never',
                env: [{ name: 'GITALY_TOKEN', valueFrom: { secretKeyRef: { name: 'gitaly-token', key: 'token' } } }],
                args: ['-listen', `tcp://0.0.0.0:${GITALY_PORT}`, '-token', '$(GITALY_TOKEN)', '-storage', `default=${STORAGE_IN_POD}`],
                ports: [{ name: 'grpc', containerPort: GITALY_PORT }],
                readinessProbe: { tcpSocket: { port: 'grpc' }, periodSeconds: 2, failureThreshold: 1 },
                // Not BestEffort: on a busy node (cgroup v1) a BestEffort pod gets 2 CPU
                // shares against git-sshd's 102, and every clone waits on a starved Gitaly.
                resources: { requests: { cpu: '250m', memory: '64Mi' } },
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                volumeMounts: [
                  { name: 'repositories', mountPath: STORAGE_IN_POD },
                  { name: 'tmp', mountPath: '/tmp' },
                ],
              },
            ],
            volumes: [
              { name: 'repositories', hostPath: { path: options.storageDir, type: 'Directory' } },
              { name: 'tmp', emptyDir: {} },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'gitaly', labels },
      spec: { type: 'ClusterIP', selector: labels, ports: [{ name: 'grpc', port: GITALY_PORT, targetPort: 'grpc' }] },
    },
  ];
}

/** The Gitaly peer's pods. */
export const GITALY_SELECTOR = 'app.kubernetes.io/name=gitaly-peer';

/**
 * The project's repository in the Gitaly storage, made on the host: `megabytes` of random
 * blobs (so a clone lasts long enough to be in flight) and a pre-receive hook refusing
 * force pushes, as GitLab's protected branches do. Owned by the pod's git user.
 */
export function seedRepository(storageDir: string, scratchDir: string, megabytes: number, relativePath = RELATIVE): string {
  const work = join(scratchDir, `seed-${randomBytes(4).toString('hex')}`);
  gitLocal(['init', '-q', '-b', 'main', work]);
  writeFileSync(join(work, 'README.md'), 'hello from gitaly in a pod\n');
  for (let file = 0; file < megabytes; file++) writeFileSync(join(work, `blob-${file}.bin`), randomBytes(1024 * 1024));
  gitLocal(['add', '.'], work);
  gitLocal(['-c', 'user.name=Seed', '-c', 'user.email=seed@example.com', 'commit', '-q', '-m', 'seed'], work);
  const repo = join(storageDir, relativePath);
  mkdirSync(join(repo, '..'), { recursive: true });
  gitLocal(['clone', '-q', '--bare', work, repo]);
  protectBranches(repo);
  chownTree(storageDir, GIT_UID);
  return gitLocal(['rev-parse', 'HEAD'], work);
}

function chownTree(path: string, uid: number): void {
  lchownSync(path, uid, uid);
  if (!lstatSync(path).isDirectory()) return;
  for (const entry of readdirSync(path)) chownTree(join(path, entry), uid);
}
