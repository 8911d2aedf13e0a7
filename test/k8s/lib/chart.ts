import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { RunResult } from '../../helpers/client.js';
import { temporaryDir } from '../../helpers/client.js';
import { clusterEnv, helm } from './cluster.js';

/** The chart under test, from this checkout. */
export const CHART_DIR = resolve(import.meta.dirname, '..', '..', '..', 'charts', 'git-sshd');

/** Values that point the chart at the image imported into the cluster (no registry: Never pull). */
export function imageValues(): Record<string, unknown> {
  const image = clusterEnv().image;
  const colon = image.lastIndexOf(':');
  return { image: { repository: image.slice(0, colon), tag: image.slice(colon + 1), pullPolicy: 'Never' } };
}

export interface ReleaseOptions {
  /** Values, written to a file and passed with -f (after the image's, so they win). */
  readonly values?: Record<string, unknown>;
  /** Leave the image values out: the chart's defaults (git-sshd:<appVersion>, also imported). */
  readonly defaultImage?: boolean;
  /** `--wait` (the default) with this bound. */
  readonly wait?: boolean;
  readonly timeout?: string;
  readonly extraArgs?: readonly string[];
}

function valuesArgs(options: ReleaseOptions): string[] {
  const args: string[] = [];
  const dir = temporaryDir('git-sshd-k8s-values-');
  if (!options.defaultImage) {
    writeFileSync(join(dir, 'image.yaml'), JSON.stringify(imageValues()));
    args.push('-f', join(dir, 'image.yaml'));
  }
  if (options.values) {
    writeFileSync(join(dir, 'values.yaml'), JSON.stringify(options.values));
    args.push('-f', join(dir, 'values.yaml'));
  }
  return args;
}

function waitArgs(options: ReleaseOptions): string[] {
  return options.wait === false ? [] : ['--wait', '--timeout', options.timeout ?? '10m'];
}

/** `helm install RELEASE charts/git-sshd -n NAMESPACE --wait`; the result, to assert on. */
export function helmInstall(namespace: string, release: string, options: ReleaseOptions = {}): Promise<RunResult> {
  return helm(['install', release, CHART_DIR, '-n', namespace, ...valuesArgs(options), ...waitArgs(options), ...(options.extraArgs ?? [])], { timeoutMs: 900_000 });
}

/** `helm upgrade RELEASE charts/git-sshd -n NAMESPACE --wait` (values are not reused unless asked). */
export function helmUpgrade(namespace: string, release: string, options: ReleaseOptions = {}): Promise<RunResult> {
  return helm(['upgrade', release, CHART_DIR, '-n', namespace, ...valuesArgs(options), ...waitArgs(options), ...(options.extraArgs ?? [])], { timeoutMs: 900_000 });
}

export function helmUninstall(namespace: string, release: string): Promise<RunResult> {
  return helm(['uninstall', release, '-n', namespace, '--wait', '--timeout', '5m'], { timeoutMs: 360_000 });
}

/** `helm template` against the cluster's version (no install): what the chart renders. */
export function helmTemplate(namespace: string, release: string, options: ReleaseOptions = {}): Promise<RunResult> {
  return helm(['template', release, CHART_DIR, '-n', namespace, ...valuesArgs(options), ...(options.extraArgs ?? [])]);
}
