import { mutate } from './mutate.js';

/**
 * Structure-aware inputs for the SSH server's pre-authentication surface, built from the
 * RFC 4253 wire format (not with the library under test): the version banner, binary
 * packets (uint32 length, padding length, payload, padding) and KEXINIT's name-lists.
 */

const KEX_NAMES = ['curve25519-sha256', 'ecdh-sha2-nistp256', 'diffie-hellman-group14-sha256', 'diffie-hellman-group-exchange-sha256', 'sntrup761x25519-sha512@openssh.com', 'ext-info-c', 'kex-strict-c-v00@openssh.com'];
const HOST_KEY_NAMES = ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ecdsa-sha2-nistp256', 'ssh-rsa', 'ssh-dss'];
const CIPHER_NAMES = ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes128-cbc', 'none'];
const MAC_NAMES = ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha1', 'none'];
const COMPRESSION_NAMES = ['none', 'zlib@openssh.com', 'zlib'];

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out;
}

function sshString(value: Buffer | string): Buffer {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value, 'latin1');
  return Buffer.concat([uint32(bytes.length), bytes]);
}

/** An unencrypted binary packet; `declaredLength`/`paddingLength` override the fields to lie. */
export function packet(payload: Buffer, options: { declaredLength?: number; paddingLength?: number } = {}): Buffer {
  let padding = 8 - ((5 + payload.length) % 8);
  if (padding < 4) padding += 8;
  const length = 1 + payload.length + padding;
  return Buffer.concat([uint32(options.declaredLength ?? length), Buffer.from([options.paddingLength ?? padding]), payload, Buffer.alloc(padding)]);
}

export function kexInit(random: () => number, lists?: string[][]): Buffer {
  const pick = (names: readonly string[]): string[] => names.filter(() => random() < 0.6);
  const nameLists = lists ?? [pick(KEX_NAMES), pick(HOST_KEY_NAMES), pick(CIPHER_NAMES), pick(CIPHER_NAMES), pick(MAC_NAMES), pick(MAC_NAMES), pick(COMPRESSION_NAMES), pick(COMPRESSION_NAMES), [], []];
  const cookie = Buffer.alloc(16);
  for (let i = 0; i < 16; i += 1) cookie[i] = Math.floor(random() * 256);
  return Buffer.concat([Buffer.from([20]), cookie, ...nameLists.map((list) => sshString(list.join(','))), Buffer.from([random() < 0.1 ? 1 : 0]), uint32(0)]);
}

const BANNERS = ['SSH-2.0-OpenSSH_9.2p1\r\n', 'SSH-2.0-PuTTY_Release_0.81\r\n', 'SSH-2.0-Go\r\n', 'SSH-1.99-old\r\n', 'SSH-2.0-x\n'];

function int(random: () => number, n: number): number {
  return Math.floor(random() * n);
}

/** One structural mutation of the pre-auth exchange, as named parts (the name goes in a failure message). */
export function preAuthInput(random: () => number): { name: string; bytes: Buffer } {
  const banner = BANNERS[int(random, BANNERS.length)]!;
  const good = kexInit(random);
  switch (int(random, 14)) {
    case 0:
      return { name: 'banner only', bytes: Buffer.from(banner) };
    case 1:
      return { name: 'oversized banner', bytes: Buffer.from(`SSH-2.0-${'A'.repeat(200 + int(random, 2000))}\r\n`) };
    case 2: {
      const lines = Array.from({ length: 1 + int(random, 60) }, (_, i) => (i % 7 === 0 ? 'x'.repeat(int(random, 600)) : `pre-banner line ${i}`));
      return { name: 'lines before the banner', bytes: Buffer.from(`${lines.join('\r\n')}\r\n${banner}`) };
    }
    case 3:
      return { name: 'banner with NUL and high bytes', bytes: Buffer.concat([Buffer.from('SSH-2.0-'), Buffer.from([0, 0xff, 0x80, 0x0a, 0x0d]), Buffer.from('\r\n')]) };
    case 4:
      return { name: 'valid KEXINIT', bytes: Buffer.concat([Buffer.from(banner), packet(good)]) };
    case 5: {
      const declared = [0, 1, 4, 5, 35_001, 262_144, 0x7fffffff, 0xffffffff][int(random, 8)]!;
      return { name: `packet length ${declared}`, bytes: Buffer.concat([Buffer.from(banner), packet(good, { declaredLength: declared })]) };
    }
    case 6: {
      const padding = [0, 3, 255, good.length + 20][int(random, 4)]!;
      return { name: `padding length ${padding}`, bytes: Buffer.concat([Buffer.from(banner), packet(good, { paddingLength: padding & 0xff })]) };
    }
    case 7: {
      const huge = Array.from({ length: 1 + int(random, 3000) }, (_, i) => `alg-${i}@x`);
      const lists = Array.from({ length: 10 }, (_, i) => (i === int(random, 10) ? huge : ['none']));
      return { name: 'huge name-list', bytes: Buffer.concat([Buffer.from(banner), packet(kexInit(random, lists))]) };
    }
    case 8: {
      const lists = Array.from({ length: 10 }, () => [[',,,', '', 'x'.repeat(70), '\u00ff\u00fe', 'none,'][int(random, 5)]!]);
      return { name: 'malformed name-lists', bytes: Buffer.concat([Buffer.from(banner), packet(kexInit(random, lists))]) };
    }
    case 9: {
      // A name-list whose length runs past the end of the packet.
      const broken = Buffer.concat([Buffer.from([20]), Buffer.alloc(16), uint32(0xfffffff0), Buffer.from('curve25519-sha256')]);
      return { name: 'name-list length past the end', bytes: Buffer.concat([Buffer.from(banner), packet(broken)]) };
    }
    case 10: {
      // Messages out of order: NEWKEYS, ECDH_INIT, USERAUTH_REQUEST, CHANNEL_OPEN before the kex.
      const type = [21, 30, 31, 34, 50, 90, 94, 1, 2, 4, 255][int(random, 11)]!;
      const body = Buffer.alloc(int(random, 80));
      for (let i = 0; i < body.length; i += 1) body[i] = int(random, 256);
      return { name: `message ${type} out of order`, bytes: Buffer.concat([Buffer.from(banner), packet(good), packet(Buffer.concat([Buffer.from([type]), body]))]) };
    }
    case 11: {
      // KEXINIT, then an ECDH_INIT whose public key is the wrong size.
      const key = Buffer.alloc([0, 1, 31, 33, 65, 4096][int(random, 6)]!, 7);
      return { name: 'ECDH_INIT with a bad key', bytes: Buffer.concat([Buffer.from(banner), packet(kexInit(random, [['curve25519-sha256'], ['ssh-ed25519'], ['aes128-ctr'], ['aes128-ctr'], ['hmac-sha2-256'], ['hmac-sha2-256'], ['none'], ['none'], [], []])), packet(Buffer.concat([Buffer.from([30]), sshString(key)]))]) };
    }
    case 12:
      return { name: 'two KEXINITs', bytes: Buffer.concat([Buffer.from(banner), packet(good), packet(kexInit(random))]) };
    default:
      return { name: 'byte mutation', bytes: mutate(random, Buffer.concat([Buffer.from(banner), packet(good)])) };
  }
}
