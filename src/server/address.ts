/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is logged as `10.0.0.1`. */
export function plainAddress(address: string): string {
  return /^::ffff:\d{1,3}(\.\d{1,3}){3}$/i.test(address) ? address.slice('::ffff:'.length) : address;
}
