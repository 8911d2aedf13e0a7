import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { git, gitLocal, makeKey, makeWorkTree, run, ssh, sshArgs, temporaryDir, url, type ClientKey } from './helpers/client.js';
import { allowedReply, GitlabApiFixture } from './helpers/gitlabApi.js';
import { startHaproxy, type LoadBalancer } from './helpers/loadBalancers.js';
import { killGroup, spawnGroup } from './helpers/processes.js';
import { TestServer } from './helpers/server.js';
import { waitUntil, within } from './helpers/wait.js';

const SECRET = 'default-secret-content\n';
const RELATIVE = '@hashed/6b/86/6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b.git';

/** The key blob as GitLab's authorized_keys endpoint receives it (unpadded base64). */
function blobOf(key: ClientKey): string {
  return key.publicLine.split(' ')[1]!.replace(/=+$/, '');
}

/**
 * The project's repository where GitLab keeps it (a hashed path in a storage), owned by
 * another user as in a GitLab installation: git must not refuse it as "dubious ownership".
 */
function makeStorageRepository(storage: string): void {
  mkdirSync(join(storage, '@hashed/6b/86'), { recursive: true });
  gitLocal(['clone', '-q', '--bare', makeWorkTree(), join(storage, RELATIVE)]);
  execFileSync('chown', ['-R', '12345:12345', join(storage, '@hashed')]);
}

describe('backend gitlab with git on a local volume (git_transport: local), against a GitLab internal API fixture, with OpenSSH and git', () => {
  const api = new GitlabApiFixture(SECRET);
  const alice = makeKey();
  const stranger = makeKey();
  const storage = temporaryDir('git-sshd-storage-');
  const hookLog = join(temporaryDir('git-sshd-hook-'), 'env.txt');
  let server: TestServer;

  before(async () => {
    await api.start();
    api.users.set(blobOf(alice), { keyId: 11, userId: 1, username: 'alice' });
    makeStorageRepository(storage);
    // GitLab's hooks read GL_*: a pre-receive hook records what git-sshd gave it.
    const hook = join(storage, RELATIVE, 'hooks', 'pre-receive');
    writeFileSync(hook, `#!/bin/sh\nenv | grep -E '^(GL_|GIT_CONFIG_)' | sort > ${hookLog}\ncat >/dev/null\n`);
    chmodSync(hook, 0o755);
    server = await TestServer.start({
      config: {
        backend: 'gitlab',
        gitlab_url: api.url,
        secret: SECRET,
        // The push test below needs it; its own default (off) is tested further down.
        gitlab: { git_transport: 'local', storages: { default: storage }, key_cache_ttl: '30s', local_push: true },
      },
    });
  });
  after(async () => {
    await server.dispose();
    await api.stop();
  });
  beforeEach(() => {
    api.requests.length = 0;
    api.handlers['/api/v4/internal/allowed'] = () => allowedReply({ relativePath: RELATIVE, projectPath: 'group/project', userId: 1, username: 'alice' });
  });

  test('welcome: a known key is greeted by its user name, with every request carrying a valid JWT and the correlation id', async () => {
    const mark = server.mark();
    const welcome = await ssh(alice, server.port);
    assert.equal(welcome.code, 0, welcome.stderr);
    assert.equal(welcome.stdout, 'Welcome to GitLab, @alice!\n');
    const summary = await server.waitForLogSince(mark, (line) => line.msg === 'connection closed');
    const discover = api.to('/discover');
    assert.equal(discover.length, 1);
    assert.equal(discover[0]!.query.key_id, '11');
    for (const req of api.requests) {
      assert.equal(req.jwtError, undefined, `${req.path}: ${req.jwtError}`);
      assert.equal(req.claims?.iss, 'gitlab-shell');
      assert.equal(req.requestId, summary.correlation_id, `${req.path}: X-Request-Id is the connection's correlation id`);
    }
  });

  test('welcome: a key GitLab knows but no user owns (a deploy key) is greeted as Anonymous', async () => {
    const deploy = makeKey();
    api.users.set(blobOf(deploy), { keyId: 99, userId: 0, username: '' });
    api.handlers['/api/v4/internal/discover'] = () => ({ status: 200, body: { id: null } });
    try {
      const welcome = await ssh(deploy, server.port);
      assert.equal(welcome.stdout, 'Welcome to GitLab, Anonymous!\n');
    } finally {
      api.handlers['/api/v4/internal/discover'] = (req) => ({ status: 200, body: { id: 1, username: 'alice', name: 'Alice', _q: req.query } });
    }
  });

  test('a key GitLab does not know is refused at authentication', async () => {
    const result = await ssh(stranger, server.port, ['git-upload-pack', 'group/project.git']);
    assert.equal(result.code, 255);
    assert.match(result.stderr, /Permission denied \(publickey\)/);
    assert.ok(api.to('/authorized_keys').length >= 1);
  });

  test('clone: /allowed names the repository; check_ip is the client address; console messages show as remote: lines', async () => {
    api.handlers['/api/v4/internal/allowed'] = () =>
      allowedReply({ relativePath: RELATIVE, projectPath: 'group/project', userId: 1, username: 'alice', consoleMessages: ['Welcome to the project', 'Mind the gap'] });
    const dest = join(temporaryDir('git-sshd-clone-'), 'project');
    const clone = await git(alice, server.port, ['clone', url(server.port, 'group/project.git'), dest]);
    assert.equal(clone.code, 0, clone.stderr);
    assert.match(clone.stderr, /remote: Welcome to the project\nremote: Mind the gap\n/);
    assert.equal(readFileSync(join(dest, 'README.md'), 'utf8'), 'hello\n');
    const [allowed] = api.to('/allowed');
    assert.deepEqual(allowed!.body, {
      action: 'git-upload-pack',
      project: '/group/project.git',
      changes: '_any',
      protocol: 'ssh',
      key_id: '11',
      check_ip: '127.0.0.1',
    });
  });

  test('push: allowed, with the environment GitLab hooks expect', async () => {
    const work = makeWorkTree({ 'CHANGE.md': 'pushed\n' });
    const push = await git(alice, server.port, ['push', url(server.port, 'group/project.git'), 'HEAD:refs/heads/feature'], work);
    assert.equal(push.code, 0, push.stderr);
    const env = readFileSync(hookLog, 'utf8');
    for (const expected of ['GL_ID=user-1', 'GL_PROJECT_PATH=group/project', 'GL_PROTOCOL=ssh', 'GL_REPOSITORY=project-26', 'GL_USERNAME=alice', 'GIT_CONFIG_KEY_1=receive.MaxInputSize']) {
      assert.ok(env.includes(expected), `${expected} in\n${env}`);
    }
    assert.equal(api.to('/allowed')[0]!.body.action, 'git-receive-pack');
  });

  test('push denied: the API message reaches the user, boxed as gitlab-sshd boxes it, with exit status 1', async () => {
    api.handlers['/api/v4/internal/allowed'] = () => ({ status: 403, body: { status: false, message: 'You are not allowed to push code to this project.' } });
    const result = await ssh(alice, server.port, ['git-receive-pack', 'group/project.git']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /remote: ERROR: You are not allowed to push code to this project\.\n/);
    assert.match(result.stderr, /remote: ={72}\n/);
    const pushed = await git(alice, server.port, ['push', url(server.port, 'group/project.git'), 'HEAD:refs/heads/denied'], makeWorkTree());
    assert.notEqual(pushed.code, 0);
    assert.match(pushed.stderr, /You are not allowed to push code to this project\./);
  });

  test('a 503 from the API is retried (visible in the fixture log) and the clone still works', async () => {
    api.queued.set('/api/v4/internal/allowed', [{ status: 503, body: { message: 'try later' } }]);
    const clone = await git(alice, server.port, ['clone', '-q', url(server.port, 'group/project.git'), join(temporaryDir('git-sshd-clone-'), 'p')]);
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(api.to('/allowed').length, 2);
  });

  test('an API that keeps failing is a system error: gitlab-shell\'s short message with the correlation id, counted, exit status 1', async () => {
    api.handlers['/api/v4/internal/allowed'] = () => ({ status: 500, body: { message: 'secret stack trace' } });
    const before = (await server.metric('gitlab_shell_http_requests_total', '{code="500",method="POST"}')) ?? 0;
    const result = await ssh(alice, server.port, ['git-upload-pack', 'group/project.git']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /remote: ERROR: Internal API unreachable \(correlation id [0-9a-f-]{36}\)/);
    assert.doesNotMatch(result.stderr, /secret stack trace/);
    assert.equal(api.to('/allowed').length, 3, 'three attempts');
    assert.equal(await server.metric('gitlab_shell_http_requests_total', '{code="500",method="POST"}'), before + 3);
  });

  test('a second connection with the same key is served from the key cache', async () => {
    await ssh(alice, server.port);
    api.requests.length = 0;
    await ssh(alice, server.port);
    await ssh(alice, server.port);
    assert.equal(api.to('/authorized_keys').length, 0, 'the key is cached for 30 s');
    assert.equal(api.to('/discover').length, 2);
  });

  test('a DSA key is refused before GitLab is asked, as gitlab-sshd does', async () => {
    const dir = temporaryDir('git-sshd-dsa-');
    await run('ssh-keygen', ['-q', '-t', 'dsa', '-N', '', '-f', join(dir, 'id_dsa')]);
    const dsa = { path: join(dir, 'id_dsa'), publicLine: readFileSync(join(dir, 'id_dsa.pub'), 'utf8').trim() };
    api.users.set(blobOf(dsa), { keyId: 55, userId: 5, username: 'dave' });
    const result = await ssh(dsa, server.port, [], ['-o', 'PubkeyAcceptedAlgorithms=+ssh-dss']);
    assert.equal(result.code, 255);
    assert.equal(api.to('/authorized_keys').length, 0);
  });

  test('console messages come before a denial too', async () => {
    api.handlers['/api/v4/internal/allowed'] = () => ({ status: 200, body: { status: false, message: 'Project is archived', gl_console_messages: ['Read the notice'] } });
    const result = await ssh(alice, server.port, ['git-upload-pack', 'group/project.git']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^remote: \nremote: Read the notice\nremote: \n[^]*remote: ERROR: Project is archived/);
  });

  test('git-lfs-authenticate prints the JSON the git-lfs client reads, after checking access like a fetch', async () => {
    const result = await ssh(alice, server.port, ['git-lfs-authenticate', 'group/project.git', 'download']);
    assert.equal(result.code, 0, result.stderr);
    const answer = JSON.parse(result.stdout) as { header: { Authorization: string }; href: string; expires_in: number };
    assert.deepEqual(Object.keys(answer), ['header', 'href', 'expires_in']);
    assert.equal(answer.header.Authorization, `Basic ${Buffer.from('alice:lfs-token-1').toString('base64')}`);
    assert.equal(answer.href, 'http://gitlab.example/group/project.git/info/lfs');
    assert.equal(answer.expires_in, 7200);
    assert.equal(api.to('/allowed')[0]!.body.action, 'git-upload-pack');
    assert.deepEqual(api.to('/lfs_authenticate')[0]!.body, { operation: 'download', project: 'group/project.git', key_id: '11' });
    const bad = await ssh(alice, server.port, ['git-lfs-authenticate', 'group/project.git', 'steal']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /ERROR: Disallowed command/);
  });

  test('2fa_recovery_codes asks yes/no on the channel; yes shows the codes, anything else keeps the old ones', async () => {
    const yes = await run('ssh', [...sshArgs(alice, server.port), 'git@127.0.0.1', '2fa_recovery_codes'], { input: 'yes\n' });
    assert.equal(yes.code, 0, yes.stderr);
    assert.match(yes.stdout, /^Are you sure you want to generate new two-factor recovery codes\?\nAny existing recovery codes you saved will be invalidated\. \(yes\/no\)\n/);
    assert.match(yes.stdout, /Your two-factor authentication recovery codes are:\n\n1\n2\n3\n\nDuring sign in/);
    assert.deepEqual(api.to('/two_factor_recovery_codes')[0]!.body, { key_id: '11' });
    const no = await run('ssh', [...sshArgs(alice, server.port), 'git@127.0.0.1', '2fa_recovery_codes'], { input: 'no\n' });
    assert.match(no.stdout, /New recovery codes have \*not\* been generated\. Existing codes will remain valid\.\n$/);
    assert.equal(api.to('/two_factor_recovery_codes').length, 1);
  });

  test('2fa_verify reads the OTP from the channel and reports the check', async () => {
    const ok = await run('ssh', [...sshArgs(alice, server.port), 'git@127.0.0.1', '2fa_verify'], { input: '123456\n' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'OTP: \nOTP validation successful. Git operations are now allowed.\n');
    assert.deepEqual(api.to('/two_factor_manual_otp_check')[0]!.body, { key_id: '11', otp_attempt: '123456' });
    const wrong = await run('ssh', [...sshArgs(alice, server.port), 'git@127.0.0.1', '2fa_verify'], { input: '000000\n' });
    assert.equal(wrong.stdout, 'OTP: \nOTP validation failed: Invalid OTP\n');
  });

  test('2fa_verify: an approved push notification wins without an OTP', async () => {
    api.handlers['/api/v4/internal/two_factor_push_otp_check'] = () => ({ status: 200, body: { success: true } });
    // stdin stays open (no input, no EOF) as a user who only taps the phone, until ssh ends.
    const child = spawnGroup('ssh', [...sshArgs(alice, server.port), 'git@127.0.0.1', '2fa_verify'], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      let stdout = '';
      child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr!.resume();
      await within('ssh 2fa_verify to end', once(child, 'close'));
      assert.equal(stdout, 'OTP: \nOTP has been validated by Push Authentication. Git operations are now allowed.\n');
    } finally {
      await killGroup(child);
      api.handlers['/api/v4/internal/two_factor_push_otp_check'] = () => ({ status: 200, body: { success: false, message: 'no push' } });
    }
  });

  test('personal_access_token creates a token; usage and ttl errors are the user\'s to read', async () => {
    const result = await ssh(alice, server.port, ['personal_access_token', 'ci-token', 'read_api,read_repository', '7']);
    assert.equal(result.code, 0, result.stderr);
    const [request] = api.to('/personal_access_token');
    assert.equal(request!.body.name, 'ci-token');
    assert.deepEqual(request!.body.scopes, ['read_api', 'read_repository']);
    assert.match(String(request!.body.expires_at), /^\d{4}-\d{2}-\d{2}$/);
    assert.match(result.stdout, /^Token:   glpat-fixture\nScopes:  read_api,read_repository\nExpires: \d{4}-\d{2}-\d{2}\n$/);
    const usage = await ssh(alice, server.port, ['personal_access_token', 'only-name']);
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /ERROR: Usage: personal_access_token <name> <scope1\[,scope2,\.\.\.\]> \[ttl_days\]/);
    const ttl = await ssh(alice, server.port, ['personal_access_token', 'n', 'api', 'soon']);
    assert.match(ttl.stderr, /ERROR: Invalid value for days_ttl: 'soon'/);
  });

  test('an unknown command exits 128', async () => {
    const result = await ssh(alice, server.port, ['rm', '-rf', '/']);
    assert.equal(result.code, 128);
    assert.match(result.stderr, /ERROR: Unknown command: rm/);
  });
});

describe('backend gitlab when the API is down', () => {
  test('a client is told its key could not be checked (not "Permission denied"), within the login deadline, and the log names the API', async () => {
    const key = makeKey();
    const server = await TestServer.start({
      config: { backend: 'gitlab', gitlab_url: 'http://127.0.0.1:9', secret: SECRET, sshd: { login_grace_time: '20s' } },
    });
    try {
      const result = await ssh(key, server.port, ['git-upload-pack', 'group/project.git']);
      assert.equal(result.code, 255);
      assert.match(result.stderr, /Received disconnect from 127\.0\.0\.1 port \d+:\d+: git-sshd: your key could not be checked: the server's access backend \(GitLab's internal API\) is unreachable or failing; please try again later or contact your administrator \(correlation id [0-9a-f-]{36}\)/);
      assert.doesNotMatch(result.stderr, /Permission denied/);
      const failure = await server.waitForLog((line) => line.level === 'warn' && line.msg === 'internal API request failed; retrying');
      assert.equal(failure.path, '/authorized_keys');
      assert.equal(await server.metric('git_sshd_connections_dropped_total', '{reason="backend_error"}'), 1);
    } finally {
      await server.dispose();
    }
  });

  test('a key looked up before GitLab went down gets gitlab-shell\'s "Internal API unreachable" with the correlation id', async () => {
    const api = new GitlabApiFixture(SECRET);
    await api.start();
    const key = makeKey();
    api.users.set(blobOf(key), { keyId: 1, userId: 1, username: 'alice' });
    api.handlers['/api/v4/internal/allowed'] = () => allowedReply({ relativePath: RELATIVE, projectPath: 'group/project', userId: 1, username: 'alice' });
    const server = await TestServer.start({ config: { backend: 'gitlab', gitlab_url: api.url, secret: SECRET, gitlab: { key_cache_ttl: '10m' } } });
    try {
      assert.equal((await ssh(key, server.port)).code, 0, 'the key is known, and now cached');
      await api.stop();
      const result = await ssh(key, server.port, ['git-upload-pack', 'group/project.git']);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /remote: ERROR: Internal API unreachable \(correlation id [0-9a-f-]{36}\)/);
    } finally {
      await server.dispose();
      await api.stop();
    }
  });

  test('a wrong shared secret (401 from GitLab) is an error in the log, not every key being unknown', async () => {
    const api = new GitlabApiFixture('the real secret');
    await api.start();
    const key = makeKey();
    api.users.set(blobOf(key), { keyId: 1, userId: 1, username: 'alice' });
    const server = await TestServer.start({ config: { backend: 'gitlab', gitlab_url: api.url, secret: 'a stale secret' } });
    try {
      const result = await ssh(key, server.port);
      assert.equal(result.code, 255);
      assert.match(result.stderr, /git-sshd: your key could not be checked/);
      const failure = await server.waitForLog((line) => line.level === 'error' && line.msg === 'key lookup failed');
      assert.match(JSON.stringify(failure.err), /401|Unauthorized/);
      assert.match(api.requests[0]!.jwtError ?? '', /signature/);
    } finally {
      await server.dispose();
      await api.stop();
    }
  });
});

describe('a gitlab-shell config.yml', () => {
  test('in the shape of upstream config.yml.example starts the server unchanged', async () => {
    const dir = temporaryDir('git-sshd-gitlab-config-');
    writeFileSync(join(dir, '.gitlab_shell_secret'), SECRET);
    const config = `# GitLab user. git by default
user: git

# URL to GitLab instance, used for API calls. Default: http://localhost:8080.
gitlab_url: "http+unix://%2Fhome%2Fgit%2Fgitlab%2Ftmp%2Fsockets%2Fgitlab-workhorse.socket"

# See installation.md#using-https for additional HTTPS configuration details.
http_settings:
#  read_timeout: 300
#  user: someone
#  password: somepass
#  ca_file: /etc/ssl/cert.pem
#  ca_path: /etc/pki/tls/certs

# File used as authorized_keys for gitlab user
auth_file: "/home/git/.ssh/authorized_keys"

# Log file.
log_file: "${dir}/gitlab-shell.log"
log_level: INFO
log_format: json

# Audit usernames.
audit_usernames: false

# Distributed Tracing.
# gitlab_tracing: opentracing://driver

sshd:
  listen: "127.0.0.1:0"
  proxy_protocol: false
  proxy_policy: "use"
  web_listen: "127.0.0.1:0"
  concurrent_sessions_limit: 10
  client_alive_interval: 15
  grace_period: 10
  login_grace_time: 60
  proxy_header_timeout: 500ms
  readiness_probe: "/start"
  liveness_probe: "/health"
  host_key_files:
    - ${dir}/ssh_host_ed25519_key
  host_key_certs: []

lfs:
  pure_ssh_protocol: false

pat:
  enabled: true
`;
    writeFileSync(join(dir, 'config.yml'), config);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'ssh_host_ed25519_key')]);
    // backend gitlab is git-sshd's one addition; everything else is upstream's file as is.
    const child = spawnGroup(process.execPath, [join(import.meta.dirname, '..', 'dist', 'main.js'), '--config', join(dir, 'config.yml')], {
      env: { PATH: process.env.PATH ?? '', GIT_SSHD_BACKEND: 'gitlab' },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const log = join(dir, 'gitlab-shell.log');
      const listeningLine = (): Record<string, unknown> | undefined =>
        (existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(0, -1) : []) // the last part may be a line still being written
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .find((line) => line.msg === 'listening');
      await waitUntil('a "listening" line in gitlab-shell.log', () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${existsSync(log) ? readFileSync(log, 'utf8') : 'no log'}`);
        return listeningLine() !== undefined;
      }, undefined, 50);
      assert.equal(listeningLine()!.backend, 'gitlab');
      child.kill('SIGTERM');
      assert.equal(await within('exit on SIGTERM', exited), 0);
    } finally {
      await killGroup(child);
    }
  });
});

describe('backend gitlab behind a load balancer, with a short key cache', () => {
  const api = new GitlabApiFixture(SECRET);
  const key = makeKey();
  const storage = temporaryDir('git-sshd-storage-');
  let server: TestServer;
  let lb: LoadBalancer;

  before(async () => {
    await api.start();
    api.users.set(blobOf(key), { keyId: 21, userId: 2, username: 'bob' });
    makeStorageRepository(storage);
    api.handlers['/api/v4/internal/allowed'] = () => allowedReply({ relativePath: RELATIVE, projectPath: 'group/project', userId: 2, username: 'bob' });
    server = await TestServer.start({
      config: {
        backend: 'gitlab',
        gitlab_url: api.url,
        secret: SECRET,
        gitlab: { git_transport: 'local', storages: { default: storage }, key_cache_ttl: '1s' },
        sshd: { proxy_protocol: true, proxy_allowed: ['127.0.0.3/32'] },
      },
    });
    lb = await startHaproxy(server.port, '127.0.0.3', [{ name: 'v2', sendProxy: 'send-proxy-v2' }]);
  });
  after(async () => {
    await lb.stop();
    await server.dispose();
    await api.stop();
  });

  test('check_ip is the client address from the PROXY header, not the load balancer', async () => {
    const port = lb.ports.v2!;
    const result = await run('ssh', [...sshArgs(key, port, ['-b', '127.0.0.5']), 'git@127.0.0.1', 'git-upload-pack', 'group/project.git'], { input: '0000' });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(api.to('/allowed')[0]!.body.check_ip, '127.0.0.5');
  });

  test('with git on a local volume, pushes are refused by default: GitLab\'s push checks run in Gitaly, which a local git does not run', async () => {
    const result = await ssh(key, server.port, ['git-receive-pack', 'group/project.git']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /ERROR: pushes are not served by this server yet/);
  });

  test('a key revoked in GitLab stops working once the cache TTL has passed', async () => {
    api.requests.length = 0;
    assert.equal((await ssh(key, server.port)).code, 0);
    api.users.delete(blobOf(key));
    const asked = api.to('/authorized_keys').length;
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const refused = await ssh(key, server.port);
    assert.equal(refused.code, 255);
    assert.match(refused.stderr, /Permission denied/);
    assert.equal(api.to('/authorized_keys').length, asked + 1, 'asked again once the TTL had passed');
  });
});
