import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { ERR_CONFIG, GitSshdError } from '../errors.js';
import { loadConfig, type LoadedConfig } from './load.js';

const dir = mkdtempSync(join(tmpdir(), 'git-sshd-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function writeConfig(text: string): string {
  const file = join(dir, `config-${++fileCount}.yml`);
  writeFileSync(file, text);
  return file;
}

function loadText(text: string, env: Record<string, string> = {}): LoadedConfig {
  return loadConfig({ argv: ['--config', writeConfig(text)], env, cwd: dir });
}

/** Asserts one ERR_CONFIG whose message is a single line containing every fragment. */
function assertConfigError(fn: () => unknown, ...fragments: string[]): string {
  let message = '';
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof GitSshdError, `expected a GitSshdError, got ${String(err)}`);
    assert.equal(err.code, ERR_CONFIG);
    assert.ok(!err.message.includes('\n'), `message is not one line: ${JSON.stringify(err.message)}`);
    for (const fragment of fragments) {
      assert.ok(err.message.includes(fragment), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(fragment)}`);
    }
    message = err.message;
    return true;
  });
  return message;
}

const OMNIBUS = `# This file is managed by gitlab-ctl. Manual changes will be
# erased! To change the contents below, edit /etc/gitlab/gitlab.rb
# and run \`sudo gitlab-ctl reconfigure\`.

---
user: git
gitlab_url: "http+unix://%2Fvar%2Fopt%2Fgitlab%2Fgitlab-workhorse%2Fsockets%2Fsocket"
secret_file: "/var/opt/gitlab/gitlab-shell/.gitlab_shell_secret"
http_settings:
  user: "api-user"
  password: "api-password"
  read_timeout: 120
auth_file: "/var/opt/gitlab/.ssh/authorized_keys"
log_file: "/var/log/gitlab/gitlab-shell/gitlab-shell.log"
log_level: INFO
audit_usernames: false
lfs:
  pure_ssh_protocol: false
pat:
  enabled: true
  allowed_scopes: ["read_repository", "write_repository"]
sshd:
  listen: "[::]:2222"
  web_listen: "localhost:9122"
  concurrent_sessions_limit: 100
  proxy_protocol: false
  proxy_policy: "USE"
  proxy_header_timeout: "500ms"
  grace_period: 55
  login_grace_time: 60
  client_alive_interval:
  ciphers:
  kex_algorithms:
  macs:
  public_key_algorithms:
  host_key_files:
    - /var/opt/gitlab/ssh/ssh_host_rsa_key
    - /var/opt/gitlab/ssh/ssh_host_ecdsa_key
    - /var/opt/gitlab/ssh/ssh_host_ed25519_key
  host_key_certs: []
  trusted_user_ca_keys: []
`;

const HELM = `user: git
gitlab_url: "http://gitlab-webservice-default.default.svc:8181/"
secret_file: /etc/gitlab-secrets/shell/.gitlab_shell_secret
log_file: /dev/stdout
log_format: json
sshd:
  listen: "[::]:2222"
  web_listen: "0.0.0.0:9122"
  concurrent_sessions_limit: 10
  client_alive_interval: 0
  proxy_protocol: false
  proxy_policy: "use"
  grace_period: 55
  login_grace_time: 60
  gssapi:
    enabled: false
    libpath: "libgssapi_krb5.so.2"
    keytab: "/etc/krb5.keytab"
    service_principal_name: ""
  host_key_files:
    - /etc/ssh/ssh_host_rsa_key
    - /etc/ssh/ssh_host_ed25519_key
`;

describe('loadConfig sources', () => {
  test('without a file every key has its default', () => {
    const { config, warnings } = loadConfig({ argv: [], env: {}, cwd: dir });
    assert.equal(config.source, undefined);
    assert.deepEqual(warnings, []);
    assert.equal(config.user, 'git');
    assert.equal(config.backend, 'local');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.logFormat, 'auto');
    assert.deepEqual(config.sshd.listen, { host: '::', port: 2222 });
    assert.deepEqual(config.sshd.webListen, { host: 'localhost', port: 9122 });
    assert.equal(config.sshd.proxyPolicy, 'use');
    assert.equal(config.sshd.proxyHeaderTimeoutMs, 500);
    assert.equal(config.sshd.clientAliveIntervalMs, 15_000);
    assert.equal(config.sshd.gracePeriodMs, 10_000);
    assert.equal(config.sshd.loginGraceTimeMs, 60_000);
    assert.equal(config.sshd.concurrentSessionsLimit, 10);
    assert.deepEqual(config.sshd.hostKeyFiles, []);
    assert.equal(config.httpSettings.readTimeoutMs, 300_000);
    assert.equal(config.local.dataDir, join(dir, 'data'));
  });

  test('--config FILE, --config=FILE, -c FILE and GIT_SSHD_CONFIG all name the file', () => {
    const file = writeConfig('user: gitty\n');
    const spellings = [
      { argv: ['--config', file], env: {} },
      { argv: [`--config=${file}`], env: {} },
      { argv: ['-c', file], env: {} },
      { argv: [], env: { GIT_SSHD_CONFIG: file } },
    ];
    for (const { argv, env } of spellings) {
      const { config } = loadConfig({ argv, env, cwd: dir });
      assert.equal(config.user, 'gitty', JSON.stringify(argv));
      assert.equal(config.source, file);
    }
  });

  test('a relative --config path resolves against cwd', () => {
    const file = writeConfig('user: relative\n');
    const { config } = loadConfig({ argv: ['--config', file.slice(dir.length + 1)], env: {}, cwd: dir });
    assert.equal(config.user, 'relative');
  });

  test('--config wins over GIT_SSHD_CONFIG', () => {
    const fromArg = writeConfig('user: from-arg\n');
    const fromEnv = writeConfig('user: from-env\n');
    const { config } = loadConfig({ argv: ['--config', fromArg], env: { GIT_SSHD_CONFIG: fromEnv }, cwd: dir });
    assert.equal(config.user, 'from-arg');
  });

  test('--config without a file name is an error', () => {
    assertConfigError(() => loadConfig({ argv: ['--config'], env: {}, cwd: dir }), '--config');
  });

  test('environment variables win over the file', () => {
    const { config } = loadText('gitlab_url: "http://file:8080"\nsecret: from-file\nsshd:\n  listen: "0.0.0.0:22"\n', {
      GITLAB_URL: 'http://env:8080',
      GITLAB_SHELL_SECRET: 'from-env',
      GIT_SSHD_LISTEN: '127.0.0.1:2022',
    });
    assert.equal(config.gitlabUrl, 'http://env:8080');
    assert.equal(config.secret, 'from-env');
    assert.deepEqual(config.sshd.listen, { host: '127.0.0.1', port: 2022 });
  });

  test('"0", "no" and "off" in a boolean environment variable mean false', () => {
    for (const value of ['0', 'no', 'off', 'false']) {
      const { config } = loadConfig({ argv: [], env: { GIT_SSHD_PROXY_PROTOCOL: value }, cwd: dir });
      assert.equal(config.sshd.proxyProtocol, false, `GIT_SSHD_PROXY_PROTOCOL=${value}`);
    }
  });

  test('the returned config is deeply frozen', () => {
    const { config } = loadConfig({ argv: [], env: {}, cwd: dir });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.sshd));
    assert.ok(Object.isFrozen(config.sshd.listen));
    assert.ok(Object.isFrozen(config.sshd.hostKeyFiles));
    assert.ok(Object.isFrozen(config.local));
    assert.throws(() => {
      (config as { user: string }).user = 'root';
    }, TypeError);
  });
});

describe('loadConfig with gitlab-shell files', () => {
  test('the config.yml omnibus writes loads unchanged', () => {
    const { config, warnings } = loadText(OMNIBUS);
    assert.equal(config.user, 'git');
    assert.equal(config.gitlabUrl, 'http+unix://%2Fvar%2Fopt%2Fgitlab%2Fgitlab-workhorse%2Fsockets%2Fsocket');
    assert.equal(config.secretFile, '/var/opt/gitlab/gitlab-shell/.gitlab_shell_secret');
    assert.equal(config.httpSettings.user, 'api-user');
    assert.equal(config.httpSettings.password, 'api-password');
    assert.equal(config.httpSettings.readTimeoutMs, 120_000);
    assert.equal(config.logFile, '/var/log/gitlab/gitlab-shell/gitlab-shell.log');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.auditUsernames, false);
    assert.deepEqual(config.sshd.listen, { host: '::', port: 2222 });
    assert.deepEqual(config.sshd.webListen, { host: 'localhost', port: 9122 });
    assert.equal(config.sshd.concurrentSessionsLimit, 100);
    assert.equal(config.sshd.proxyProtocol, false);
    assert.equal(config.sshd.proxyPolicy, 'use');
    assert.equal(config.sshd.proxyHeaderTimeoutMs, 500);
    assert.equal(config.sshd.gracePeriodMs, 55_000);
    assert.equal(config.sshd.loginGraceTimeMs, 60_000);
    assert.equal(config.sshd.clientAliveIntervalMs, 15_000, 'an empty value keeps the default');
    assert.deepEqual(config.sshd.ciphers, []);
    assert.deepEqual(config.sshd.kexAlgorithms, []);
    assert.deepEqual(config.sshd.macs, []);
    // Empty means the defaults: as a current OpenSSH, no SHA-1 RSA signatures and no DSA.
    assert.deepEqual(config.sshd.publicKeyAlgorithms, [
      'ssh-ed25519',
      'ecdsa-sha2-nistp256',
      'ecdsa-sha2-nistp384',
      'ecdsa-sha2-nistp521',
      'rsa-sha2-512',
      'rsa-sha2-256',
    ]);
    assert.equal(config.sshd.minRsaKeyBits, 2048);
    assert.deepEqual(config.sshd.hostKeyFiles, [
      '/var/opt/gitlab/ssh/ssh_host_rsa_key',
      '/var/opt/gitlab/ssh/ssh_host_ecdsa_key',
      '/var/opt/gitlab/ssh/ssh_host_ed25519_key',
    ]);
    assert.deepEqual(config.sshd.hostCertFiles, []);
    assert.deepEqual(config.sshd.trustedUserCaKeys, []);
    assert.ok(warnings.some((warning) => warning.includes('auth_file')), 'auth_file is legacy and set');
  });

  test('the config the GitLab Helm chart renders loads, gssapi included', () => {
    const { config } = loadText(HELM);
    assert.equal(config.sshd.clientAliveIntervalMs, 0);
    assert.equal(config.sshd.gracePeriodMs, 55_000);
    assert.deepEqual(config.sshd.webListen, { host: '0.0.0.0', port: 9122 });
    assert.equal(config.logFile, '/dev/stdout');
    assert.deepEqual(config.sshd.hostKeyFiles, ['/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_ed25519_key']);
  });

  test('legacy keys load and each one set produces a warning', () => {
    const { warnings } = loadText('redis:\n  host: 127.0.0.1\n  port: 6379\nrepos_path: /var/opt/gitlab/git-data/repositories\n');
    assert.equal(warnings.length, 2);
    assert.ok(warnings.some((warning) => warning.includes('redis')));
    assert.ok(warnings.some((warning) => warning.includes('repos_path')));
  });

  test('yes, no, on and off are booleans where a boolean is expected', () => {
    const { config } = loadText('audit_usernames: yes\nlfs:\n  pure_ssh_protocol: On\n');
    assert.equal(config.auditUsernames, true);
    const off = loadText('audit_usernames: no\nsshd:\n  proxy_protocol: off\n').config;
    assert.equal(off.auditUsernames, false);
    assert.equal(off.sshd.proxyProtocol, false);
  });

  test('an empty sshd section keeps every sshd default', () => {
    const { config } = loadText('user: git\nsshd:\n');
    assert.deepEqual(config.sshd.listen, { host: '::', port: 2222 });
    assert.equal(config.sshd.concurrentSessionsLimit, 10);
  });

  test('an empty file loads as all defaults', () => {
    const { config } = loadText('');
    assert.equal(config.user, 'git');
  });

  test('an empty web_listen turns the monitoring listener off', () => {
    const { config } = loadText('sshd:\n  web_listen: ""\n');
    assert.equal(config.sshd.webListen, undefined);
  });
});

describe('loadConfig errors', () => {
  test('an unknown top-level key is named with the allowed keys', () => {
    assertConfigError(() => loadText('usr: git\n'), 'usr', 'unknown key', 'user', 'gitlab_url');
  });

  test('an unknown sshd key is named with its value and the allowed sshd keys', () => {
    assertConfigError(
      () => loadText('sshd:\n  listen_address: ":22"\n'),
      'sshd.listen_address',
      '":22"',
      'listen',
      'grace_period',
      'host_key_files',
    );
  });

  test('a value of the wrong type names the key and the value', () => {
    assertConfigError(() => loadText('sshd:\n  concurrent_sessions_limit: "many"\n'), 'sshd.concurrent_sessions_limit', '"many"');
    assertConfigError(() => loadText('user: [git]\n'), 'user', '["git"]');
  });

  test('a key exchange ssh2 cannot serve is refused with the reason, not offered to be dropped mid-handshake', () => {
    const message = assertConfigError(
      () => loadText('sshd:\n  kex_algorithms: [curve25519-sha256, diffie-hellman-group-exchange-sha256]\n'),
      'sshd.kex_algorithms',
      '"diffie-hellman-group-exchange-sha256" not supported',
      'no server side of Diffie-Hellman group exchange',
      'curve25519-sha256',
    );
    assert.doesNotMatch(message.split('supported:')[1] ?? '', /group-exchange/);
    assertConfigError(() => loadText('sshd:\n  kex_algorithms: diffie-hellman-group-exchange-sha1\n'), 'sshd.kex_algorithms', 'group exchange');
    assertConfigError(() => loadText('sshd:\n  kex_algorithms: [curve448-sha512]\n'), 'sshd.kex_algorithms', '"curve448-sha512" not supported');
  });

  test('an unknown user key algorithm is refused', () => {
    assertConfigError(() => loadText('sshd:\n  public_key_algorithms: [rsa-sha2-384]\n'), 'sshd.public_key_algorithms', '"rsa-sha2-384" not supported');
  });

  test('an empty user name and a timer longer than Node can keep are refused', () => {
    assertConfigError(() => loadText('user: ""\n'), 'user', 'value was ""');
    assertConfigError(() => loadText('sshd:\n  login_grace_time: 720h\n'), 'sshd.login_grace_time', '720h');
  });

  test('PROXY protocol settings load, with the allowed sources checked entry by entry', () => {
    const { config } = loadText(
      'sshd:\n  proxy_protocol: true\n  proxy_policy: REQUIRE\n  proxy_allowed: ["10.0.0.0/8", "192.0.2.7", "fd00::/8", "::1"]\n  proxy_header_timeout: 250ms\n',
    );
    assert.equal(config.sshd.proxyProtocol, true);
    assert.equal(config.sshd.proxyPolicy, 'require');
    assert.deepEqual(config.sshd.proxyAllowed, ['10.0.0.0/8', '192.0.2.7', 'fd00::/8', '::1']);
    assert.equal(config.sshd.proxyHeaderTimeoutMs, 250);
    const fromEnv = loadConfig({ argv: [], env: { GIT_SSHD_PROXY_ALLOWED: '10.0.0.0/8, 127.0.0.1' }, cwd: dir }).config;
    assert.deepEqual(fromEnv.sshd.proxyAllowed, ['10.0.0.0/8', '127.0.0.1']);
  });

  test('a PROXY source that is not an address or range, an unknown policy and a zero header timeout are refused', () => {
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.1/8/8', 'fe80::1%eth0', '::1/129', '10.0.0.0/08', '']) {
      assertConfigError(() => loadText(`sshd:\n  proxy_allowed: [${JSON.stringify(bad)}]\n`), 'sshd.proxy_allowed', JSON.stringify(bad));
    }
    assertConfigError(() => loadText('sshd:\n  proxy_policy: trust\n'), 'sshd.proxy_policy', 'trust');
    assertConfigError(() => loadText('sshd:\n  proxy_header_timeout: 0s\n'), 'sshd.proxy_header_timeout', 'more than 0');
  });

  test('a relative log_file is taken relative to the config file, as gitlab-shell does', () => {
    const { config } = loadText('log_file: gitlab-shell.log\n');
    assert.ok(config.source);
    const configPath = isAbsolute(config.source) ? config.source : join(dir, config.source);
    assert.equal(config.logFile, join(dirname(configPath), 'gitlab-shell.log'));
  });

  test('a string that is not a boolean word is refused where a boolean is expected', () => {
    assertConfigError(() => loadText('sshd:\n  proxy_protocol: "nope"\n'), 'sshd.proxy_protocol');
    assertConfigError(() => loadText('audit_usernames: maybe\n'), 'audit_usernames');
    assertConfigError(() => loadConfig({ argv: [], env: { GIT_SSHD_PROXY_PROTOCOL: 'nope' }, cwd: dir }), 'sshd.proxy_protocol');
  });

  test('the message stays on one line even when a key contains a line break', () => {
    assertConfigError(() => loadText('"foo\\nbar": 1\n'), 'unknown key');
  });

  test('impossible values name the key and the value', () => {
    assertConfigError(() => loadText('sshd:\n  concurrent_sessions_limit: 0\n'), 'sshd.concurrent_sessions_limit', 'value was 0');
    assertConfigError(() => loadText('sshd:\n  grace_period: "-5s"\n'), 'sshd.grace_period', '-5s');
    assertConfigError(() => loadText('sshd:\n  listen: "nonsense"\n'), 'sshd.listen', 'nonsense');
    assertConfigError(() => loadText('sshd:\n  min_rsa_key_bits: 512\n'), 'sshd.min_rsa_key_bits', '1024');
  });

  test('the RSA floor and the accepted algorithms can be set, ssh-rsa included', () => {
    const { config } = loadText('sshd:\n  min_rsa_key_bits: 3072\n  public_key_algorithms: [ssh-ed25519, ssh-rsa]\n');
    assert.equal(config.sshd.minRsaKeyBits, 3072);
    assert.deepEqual(config.sshd.publicKeyAlgorithms, ['ssh-ed25519', 'ssh-rsa']);
  });

  test('a bad value from the environment is reported too', () => {
    assertConfigError(() => loadConfig({ argv: [], env: { GIT_SSHD_LISTEN: 'nonsense' }, cwd: dir }), 'sshd.listen');
  });

  test('a section that is not a mapping is named', () => {
    assertConfigError(() => loadText('sshd: "[::]:22"\n'), 'sshd', 'mapping');
  });

  test('malformed YAML is reported with file:line:col', () => {
    const file = writeConfig('user: git\nsshd:\n  listen: [::]:2222\n   bad: : :\n');
    const message = assertConfigError(() => loadConfig({ argv: ['--config', file], env: {}, cwd: dir }), 'not valid YAML');
    assert.match(message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+`));
  });

  test('duplicate keys are malformed YAML', () => {
    assertConfigError(() => loadText('user: a\nuser: b\n'), 'not valid YAML');
  });

  test('a top-level list is refused', () => {
    assertConfigError(() => loadText('- user: git\n'), 'top level', 'list');
  });

  test('a missing file is named', () => {
    const missing = join(dir, 'nope.yml');
    assertConfigError(() => loadConfig({ argv: ['--config', missing], env: {}, cwd: dir }), missing, 'ENOENT');
  });

  test('secret values of the wrong type are not echoed', () => {
    const secret = assertConfigError(() => loadText('secret: 12345\n'), 'secret');
    assert.ok(!secret.includes('12345'), secret);
    const password = assertConfigError(() => loadText('http_settings:\n  password: 98765\n'), 'http_settings.password');
    assert.ok(!password.includes('98765'), password);
  });
});

describe('loadConfig local backend paths', () => {
  test('a relative data_dir resolves against cwd and the other paths derive from it', () => {
    const { config } = loadText('local:\n  data_dir: state\n');
    assert.equal(config.local.dataDir, join(dir, 'state'));
    assert.equal(config.local.usersFile, join(dir, 'state', 'users.yml'));
    assert.equal(config.local.reposDir, join(dir, 'state', 'repos'));
    assert.equal(config.local.usersFileExplicit, false);
  });

  test('a users_file that is named is explicit and resolves against cwd', () => {
    const { config } = loadText('local:\n  data_dir: /srv/git-sshd\n  users_file: conf/users.yml\n  repos_dir: /srv/repos\n');
    assert.equal(config.local.dataDir, '/srv/git-sshd');
    assert.equal(config.local.usersFile, join(dir, 'conf', 'users.yml'));
    assert.equal(config.local.usersFileExplicit, true);
    assert.equal(config.local.reposDir, '/srv/repos');
  });

  test('GIT_SSHD_USERS_FILE makes the users file explicit', () => {
    const { config } = loadConfig({ argv: [], env: { GIT_SSHD_USERS_FILE: '/etc/git-sshd/users.yml' }, cwd: dir });
    assert.equal(config.local.usersFile, '/etc/git-sshd/users.yml');
    assert.equal(config.local.usersFileExplicit, true);
  });
});
