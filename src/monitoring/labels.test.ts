import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { authMethodLabel, ClientSoftwareLabels } from './labels.js';

describe('client software labels', () => {
  test('real clients map to their family and major.minor', () => {
    const labels = new ClientSoftwareLabels();
    const cases: Array<[string, string]> = [
      ['OpenSSH_9.2p1 Debian-2+deb12u3', 'OpenSSH_9.2'],
      ['OpenSSH_for_Windows_8.1', 'OpenSSH_8.1'],
      ['PuTTY_Release_0.78', 'PuTTY_0.78'],
      ['libssh2_1.11.0', 'libssh2_1.11'],
      ['libssh_0.10.5', 'libssh_0.10'],
      ['Go', 'Go'],
      ['JSCH-0.1.54', 'JSch_0.1'],
      ['APACHE-SSHD-2.9.2', 'Apache-SSHD_2.9'],
      ['paramiko_3.4.0', 'paramiko_3.4'],
      ['dropbear_2022.83', 'dropbear_2022.83'],
      ['ssh2js1.17.0', 'ssh2js_1.17'],
    ];
    for (const [software, label] of cases) assert.equal(labels.label(software), label, software);
  });

  test('junk is "other", and invented versions of a known family are bounded', () => {
    const labels = new ClientSoftwareLabels();
    const values = new Set<string>();
    for (let i = 0; i < 10_000; i += 1) {
      values.add(labels.label(`junk${i}_1.${i}`));
      values.add(labels.label(`OpenSSH_${i}.${i % 100}`));
      values.add(labels.label(`\x01\x02${i}`));
    }
    assert.ok(values.has('other'));
    assert.ok(values.has('OpenSSH_other'));
    assert.ok(values.size <= 22, `${values.size} label values`);
    assert.equal(new ClientSoftwareLabels().label(''), 'other');
  });

  test('auth methods outside RFC 4252 and its extensions are "other"', () => {
    assert.equal(authMethodLabel('publickey'), 'publickey');
    assert.equal(authMethodLabel('x'.repeat(100)), 'other');
  });
});
