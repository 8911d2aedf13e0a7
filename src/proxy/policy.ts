import { BlockList, isIP } from 'node:net';
import { parseAddressRange } from '../config/formats.js';
import type { ProxyPolicy } from '../config/types.js';

export interface ProxyPolicyOptions {
  readonly policy: ProxyPolicy;
  /** When non-empty it decides alone, as in gitlab-sshd: listed sources `use`, all others `reject`. */
  readonly allowed: readonly string[];
}

/** Which PROXY policy applies to a connection from a given peer (the load balancer's address). */
export class ProxyPolicyResolver {
  private readonly policy: ProxyPolicy;
  private readonly allowed: BlockList | undefined;

  constructor(options: ProxyPolicyOptions) {
    this.policy = options.policy;
    if (options.allowed.length === 0) return;
    this.allowed = new BlockList();
    for (const entry of options.allowed) {
      const range = parseAddressRange(entry);
      if (!range) throw new RangeError(`not an IP address or CIDR range: ${JSON.stringify(entry)}`);
      this.allowed.addSubnet(range.address, range.prefix, range.family);
    }
  }

  policyFor(peerIp: string): ProxyPolicy {
    if (!this.allowed) return this.policy;
    const version = isIP(peerIp);
    if (version === 0) return 'reject';
    return this.allowed.check(peerIp, version === 4 ? 'ipv4' : 'ipv6') ? 'use' : 'reject';
  }
}
