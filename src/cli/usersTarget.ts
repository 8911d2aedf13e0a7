import { accessSync, constants, existsSync, lstatSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config/types.js';
import { CliError } from './cliError.js';

/** Where the Helm chart mounts the server's config.yml (its container runs with --config this). */
export const CHART_CONFIG_FILE = '/etc/git-sshd/config/config.yml';

/**
 * The config file the server of this machine or pod reads: `--config` or GIT_SSHD_CONFIG
 * as the server takes them, else, inside a pod of the chart, the chart's config.yml (its
 * container passes it as an argument, which `kubectl exec` does not inherit).
 */
export function serverConfigArgs(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  chartConfigFile = CHART_CONFIG_FILE,
): string[] {
  if (explicit !== undefined) return ['--config', explicit];
  if (env.GIT_SSHD_CONFIG) return [];
  if (env.KUBERNETES_SERVICE_HOST && existsSync(chartConfigFile)) return ['--config', chartConfigFile];
  return [];
}

/**
 * A kubelet-mounted ConfigMap or Secret: the file is a symlink into `..data/`, which the
 * kubelet swaps on every update (so no edit of ours would survive one, even if it could write).
 */
export function isKubernetesVolumeFile(file: string): boolean {
  try {
    return lstatSync(file).isSymbolicLink() && readlinkSync(file).startsWith('..data/') && existsSync(join(dirname(file), '..data'));
  } catch {
    return false;
  }
}

/** The users file the server reads, if the CLI can and may change it; a clear refusal otherwise. */
export function writableUsersFile(config: Config): string {
  if (config.backend !== 'local') {
    throw new CliError(`the server uses backend ${config.backend}${where(config)}: its users and keys are GitLab's; add SSH keys in GitLab instead`);
  }
  const file = config.local.usersFile;
  if (isKubernetesVolumeFile(file)) {
    throw new CliError(
      `${file} comes from a Kubernetes ConfigMap (the Helm value backend.local.users) and is read-only: change the users in your Helm values and run \`helm upgrade\`; the server reloads them without a restart. To manage users with this CLI instead, leave backend.local.users empty so that the users file lives on the data volume`,
    );
  }
  const dir = dirname(file);
  const target = existsSync(file) ? file : dir;
  try {
    // The new file is renamed into place: the directory must be writable, not only the file.
    if (existsSync(dir)) accessSync(dir, constants.W_OK);
    accessSync(target, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return file;
    const why = code === 'EROFS' ? 'on a read-only file system' : code === 'EACCES' || code === 'EPERM' ? 'not writable by this user' : code;
    throw new CliError(`cannot change ${file}${where(config)}: it is ${why}. Run this as the user the server runs as, or change the users where the file comes from`);
  }
  return file;
}

function where(config: Config): string {
  return config.source === undefined ? ' (embedded default configuration)' : ` (configuration ${config.source})`;
}
