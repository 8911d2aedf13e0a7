import { generateKeyPairSync } from 'node:crypto';

/** An OpenSSH public key line for a fresh ed25519 key (no private half kept). */
export function ed25519Line(comment: string): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const type = Buffer.from('ssh-ed25519');
  const blob = Buffer.alloc(4 + type.length + 4 + raw.length);
  blob.writeUInt32BE(type.length, 0);
  type.copy(blob, 4);
  blob.writeUInt32BE(raw.length, 4 + type.length);
  raw.copy(blob, 8 + type.length);
  return `ssh-ed25519 ${blob.toString('base64')} ${comment}`;
}

/** users.yml text for `count` users, each with one key and two grants, as an operator writes it. */
export function bigUsersFile(count: number, extraUsers: string[] = []): string {
  const lines = ['# generated', 'users:'];
  for (let i = 0; i < count; i += 1) {
    lines.push(`  - name: user${i}`, `    keys: ["${ed25519Line(`user${i}@bench`)}"]`, `    access: { "team${i % 100}/*": write, "docs": read }`);
  }
  lines.push(...extraUsers);
  return `${lines.join('\n')}\n`;
}
