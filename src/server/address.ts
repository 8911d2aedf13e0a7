/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is logged as `10.0.0.1`. */
export function plainAddress(address: string): string {
  return /^::ffff:\d{1,3}(\.\d{1,3}){3}$/i.test(address) ? address.slice('::ffff:'.length) : address;
}

export interface Endpoint {
  readonly ip: string;
  readonly port: number;
}

/** Who the client is, as we report and limit it: the PROXY header's source when one was used. */
export interface ClientAddress extends Endpoint {
  /** The load balancer the connection came through, when its PROXY header named the client. */
  readonly via?: Endpoint;
}

/** The peer of an accepted socket, IPv4-mapped addresses shown plain. */
export function peerOf(socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined }): Endpoint {
  return { ip: plainAddress(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
}
