import { createHmac } from 'node:crypto';

/**
 * Gitaly's v2 auth token: `v2.<hex HMAC-SHA256(token, unix seconds)>.<unix seconds>`,
 * valid for 30 s either side of Gitaly's clock, so it is made fresh for every call.
 */
export function gitalyAuthorization(token: string, now = Date.now()): string {
  const issued = String(Math.floor(now / 1000));
  const signature = createHmac('sha256', token).update(issued).digest('hex');
  return `Bearer v2.${signature}.${issued}`;
}
