import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../config/load.js';
import { uploadPackConfigArgs } from './uploadPackConfig.js';

const dir = mkdtempSync(join(tmpdir(), 'git-sshd-upload-pack-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function load(yaml: string, env: Record<string, string> = {}) {
  const file = join(dir, 'config.yml');
  writeFileSync(file, yaml);
  return loadConfig({ argv: ['--config', file], env, cwd: dir }).config.uploadPack;
}

describe('upload_pack config', () => {
  test('by default serves partial clone, fetches by object id and object-info, not want-ref', () => {
    assert.deepEqual(uploadPackConfigArgs(load('user: git\n')), [
      '-c', 'uploadpack.allowFilter=true',
      '-c', 'uploadpack.allowAnySHA1InWant=true',
      '-c', 'uploadpack.allowRefInWant=false',
      '-c', 'transfer.advertiseObjectInfo=true',
    ]);
  });

  test('each key turns its git setting off, in the file or the environment', () => {
    const options = load('upload_pack:\n  allow_ref_in_want: false\n  advertise_object_info: false\n', {
      GIT_SSHD_UPLOAD_PACK_ALLOW_FILTER: 'false',
      GIT_SSHD_UPLOAD_PACK_ALLOW_ANY_SHA1_IN_WANT: 'false',
    });
    assert.deepEqual(options, { allowFilter: false, allowAnySha1InWant: false, allowRefInWant: false, advertiseObjectInfo: false });
    assert.ok(uploadPackConfigArgs(options).every((arg) => arg === '-c' || arg.endsWith('=false')));
  });

  test('a value that is not a boolean is a config error naming the key', () => {
    assert.throws(() => load('upload_pack:\n  allow_filter: sometimes\n'), /upload_pack\.allow_filter/);
  });
});
