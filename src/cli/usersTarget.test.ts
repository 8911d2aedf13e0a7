import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { temporaryDir } from '../../test/helpers/client.js';
import { serverConfigArgs } from './usersTarget.js';

describe('the CLI reads the configuration the server reads', () => {
  const chartConfig = join(temporaryDir('git-sshd-chart-'), 'config.yml');
  writeFileSync(chartConfig, 'user: git\n');

  test('--config wins, then GIT_SSHD_CONFIG (left to the loader), then nothing', () => {
    assert.deepEqual(serverConfigArgs('/x.yml', { GIT_SSHD_CONFIG: '/y.yml' }, chartConfig), ['--config', '/x.yml']);
    assert.deepEqual(serverConfigArgs(undefined, { GIT_SSHD_CONFIG: '/y.yml', KUBERNETES_SERVICE_HOST: '10.0.0.1' }, chartConfig), []);
    assert.deepEqual(serverConfigArgs(undefined, {}, chartConfig), []);
  });

  test('in a pod of the chart, whose server gets its config file as an argument kubectl exec does not pass on, that file is used', () => {
    assert.deepEqual(serverConfigArgs(undefined, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, chartConfig), ['--config', chartConfig]);
    assert.deepEqual(serverConfigArgs(undefined, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, join(chartConfig, 'missing')), []);
  });
});
