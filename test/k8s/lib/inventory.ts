import { kubectl, kubectlOk } from './cluster.js';

/** What Kubernetes itself puts in every namespace. */
export const NAMESPACE_DEFAULTS = ['ConfigMap/kube-root-ca.crt', 'ServiceAccount/default'] as const;

/**
 * Every object in the namespace, of every namespaced kind the API server can list
 * (events aside), as sorted `Kind/name` strings: to show what an install or an uninstall
 * left, without a list of kinds that could miss one.
 */
export async function namespaceInventory(namespace: string): Promise<string[]> {
  const kinds = (await kubectlOk(['api-resources', '--verbs=list', '--namespaced', '-o', 'name']))
    .split('\n')
    .filter((kind) => kind && kind !== 'events' && kind !== 'events.events.k8s.io');
  const listed = await kubectl(['-n', namespace, 'get', kinds.join(','), '--ignore-not-found', '-o', 'jsonpath={range .items[*]}{.kind}/{.metadata.name}{"\\n"}{end}']);
  if (listed.code !== 0) throw new Error(`cannot list namespace ${namespace}: ${listed.stderr}`);
  return [...new Set(listed.stdout.split('\n').filter(Boolean))].sort();
}
