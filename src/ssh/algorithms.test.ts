import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createRequire } from 'node:module';
import { loadConfig } from '../config/load.js';
import { buildAlgorithms } from './algorithms.js';

const dir = mkdtempSync(join(tmpdir(), 'git-sshd-algorithms-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function sshdWith(yaml: string) {
  const file = join(dir, 'config.yml');
  writeFileSync(file, yaml);
  return loadConfig({ argv: ['--config', file], env: {}, cwd: dir }).config.sshd;
}

describe('key exchange algorithms', () => {
  test('by default mlkem768x25519-sha256 comes first, curve25519 right after it for older clients, and no group exchange', () => {
    const { DEFAULT_KEX } = createRequire(import.meta.url)('ssh2/lib/protocol/constants.js') as { DEFAULT_KEX: string[] };
    const offered = buildAlgorithms(sshdWith('user: git\n')).kex;
    assert.deepEqual(offered, DEFAULT_KEX.filter((name) => !name.startsWith('diffie-hellman-group-exchange-')), 'ssh2\'s defaults less what it cannot serve');
    assert.equal(offered?.[0], 'mlkem768x25519-sha256');
    assert.ok(offered?.slice(1, 3).includes('curve25519-sha256'));
  });

  test('sshd.kex_algorithms accepts mlkem768x25519-sha256, in the order given', () => {
    const sshd = sshdWith('sshd:\n  kex_algorithms: [curve25519-sha256, mlkem768x25519-sha256]\n');
    assert.deepEqual(buildAlgorithms(sshd).kex, ['curve25519-sha256', 'mlkem768x25519-sha256']);
  });

  test('a kex ssh2 cannot do is a config error naming the key', () => {
    assert.throws(() => sshdWith('sshd:\n  kex_algorithms: [sntrup761x25519-sha512]\n'), /kex_algorithms.*sntrup761x25519-sha512/);
  });
});
