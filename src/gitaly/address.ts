import { GitSshdError } from '../errors.js';

export const ERR_GITALY_ADDRESS = 'ERR_GITALY_ADDRESS';

/** Where a Gitaly listens, from the `address` GitLab's /allowed gives. */
export type GitalyAddress =
  | { readonly kind: 'tcp' | 'tls'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/**
 * `tcp://host:port`, `tls://host:port` or `unix:/path` (also `unix:///path`), the forms
 * Gitaly's own client dials. `dns:` addresses (Praefect's DNS discovery) are not supported.
 */
export function parseGitalyAddress(raw: string): GitalyAddress {
  if (raw.startsWith('unix:')) {
    const path = raw.slice('unix:'.length).replace(/^\/+/, '/');
    if (path === '') throw bad(raw, 'a unix address needs a socket path');
    return { kind: 'unix', path };
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad(raw, 'not a URL');
  }
  const kind = url.protocol.slice(0, -1);
  if (kind !== 'tcp' && kind !== 'tls') throw bad(raw, `scheme ${JSON.stringify(kind)} is not supported (tcp, tls or unix)`);
  if (url.pathname !== '' && url.pathname !== '/') throw bad(raw, 'a remote address has no path');
  if (url.hostname === '' || url.port === '') throw bad(raw, 'a remote address needs host:port');
  return { kind, host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) };
}

function bad(raw: string, why: string): GitSshdError {
  return new GitSshdError(ERR_GITALY_ADDRESS, `invalid Gitaly address ${JSON.stringify(raw)}: ${why}`);
}
