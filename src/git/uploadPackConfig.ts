import type { UploadPackOptions } from '../config/types.js';

/**
 * The `git -c` options that give upload-pack what the config asks for. Given on the
 * command line, they win over a repository's own config and over the system's.
 */
export function uploadPackConfigArgs(options: UploadPackOptions): string[] {
  const settings: Array<[string, boolean]> = [
    ['uploadpack.allowFilter', options.allowFilter],
    ['uploadpack.allowAnySHA1InWant', options.allowAnySha1InWant],
    ['uploadpack.allowRefInWant', options.allowRefInWant],
    ['transfer.advertiseObjectInfo', options.advertiseObjectInfo],
  ];
  return settings.flatMap(([key, on]) => ['-c', `${key}=${on}`]);
}
