import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { url } from './helpers/client.js';
import { ChrootUser } from './helpers/chroot.js';
import { sidRoot } from './helpers/peers.js';
import { TestServer } from './helpers/server.js';

const MLKEM = 'mlkem768x25519-sha256';
const PQ_WARNING = /post-quantum/;
const REPO = 'modern/app';

/** A pkt-line (git's protocol framing): 4 hex digits of length, then the data. */
function pkt(line: string): string {
  return (line.length + 4).toString(16).padStart(4, '0') + line;
}

/**
 * Today's clients, from Debian sid in a debootstrap root (scripts/sid-root.sh): OpenSSH 10.x
 * and git 2.5x, run chrooted against git-sshd on loopback.
 */
describe('OpenSSH 10 and git 2.5x from Debian sid', () => {
  let user: ChrootUser;
  let server: TestServer;
  let work: string;
  const commits: string[] = [];

  async function ok(result: Promise<{ code: number | null; stdout: string; stderr: string }>, what: string) {
    const done = await result;
    assert.equal(done.code, 0, `${what}: ${done.stderr}`);
    assert.doesNotMatch(done.stderr, PQ_WARNING, `${what} printed OpenSSH's post-quantum warning`);
    return done;
  }

  function kexCount(algorithm: string) {
    return server.metric('git_sshd_negotiated_algorithms_total', `{kind="kex",algorithm="${algorithm}"}`);
  }

  before(async () => {
    user = new ChrootUser(sidRoot());
    server = await TestServer.start({ users: [{ name: 'sid', keys: [user.key.publicLine], access: { '*': 'admin' } }] });
    // Three commits of a.txt, then a file in a directory: history for partial and shallow clones.
    work = `${user.home}/work`;
    mkdirSync(user.hostPath(work));
    await ok(user.git(server.port, ['init', '-q', work]), 'git init');
    for (const [index, text] of ['one', 'two', 'three'].entries()) {
      writeFileSync(user.hostPath(`${work}/a.txt`), `${text}\n`);
      if (index === 2) {
        mkdirSync(user.hostPath(`${work}/dir`));
        writeFileSync(user.hostPath(`${work}/dir/b.txt`), 'bee\n'.repeat(1000));
      }
      await ok(user.git(server.port, ['add', '-A'], { cwd: work }), 'git add');
      await ok(user.git(server.port, ['commit', '-q', '-m', text], { cwd: work }), 'git commit');
      commits.push((await user.git(server.port, ['rev-parse', 'HEAD'], { cwd: work })).stdout.trim());
    }
  });

  after(async () => {
    await server?.dispose();
    user?.dispose();
  });

  test('the root has OpenSSH 10 or later and git 2.5x or later', async () => {
    const ssh = await user.exec('ssh', ['-V']);
    assert.match(ssh.stderr, /^OpenSSH_(1\d|[2-9]\d)\./);
    const git = await user.exec('git', ['--version']);
    assert.match(git.stdout, /^git version 2\.(5\d|[6-9]\d)\./);
  });

  test('ssh negotiates mlkem768x25519-sha256 (ssh -v and our metrics) and prints no post-quantum warning', async () => {
    const before = (await kexCount(MLKEM)) ?? 0;
    const result = await ok(user.ssh(server.port, [], ['-v']), 'ssh');
    assert.equal(result.stdout, 'Welcome to git-sshd, @sid!\n');
    assert.match(result.stderr, /kex: algorithm: mlkem768x25519-sha256$/m);
    assert.equal(await kexCount(MLKEM), before + 1);
  });

  test('push, clone and fetch: no post-quantum warning', async () => {
    await ok(user.git(server.port, ['push', '-q', url(server.port, REPO), 'main'], { cwd: work }), 'push');
    const clone = `${user.home}/clone`;
    await ok(user.git(server.port, ['clone', '-q', url(server.port, REPO), clone]), 'clone');
    assert.equal((await user.git(server.port, ['rev-parse', 'HEAD'], { cwd: clone })).stdout.trim(), commits[2]);
    writeFileSync(user.hostPath(`${work}/c.txt`), 'four\n');
    await ok(user.git(server.port, ['add', 'c.txt'], { cwd: work }), 'git add');
    await ok(user.git(server.port, ['commit', '-q', '-m', 'four'], { cwd: work }), 'git commit');
    await ok(user.git(server.port, ['push', '-q', url(server.port, REPO), 'main'], { cwd: work }), 'second push');
    await ok(user.git(server.port, ['fetch', '-q', 'origin'], { cwd: clone }), 'fetch');
    const head = (await user.git(server.port, ['rev-parse', 'HEAD'], { cwd: work })).stdout.trim();
    assert.equal((await user.git(server.port, ['rev-parse', 'origin/main'], { cwd: clone })).stdout.trim(), head);
  });

  test('with -o KexAlgorithms=curve25519-sha256 it still connects', async () => {
    const result = await user.ssh(server.port, [], ['-v', '-o', 'KexAlgorithms=curve25519-sha256']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /kex: algorithm: curve25519-sha256$/m);
  });

  test('partial clone: --filter=blob:none, then a checkout of an old commit fetches the blobs it lacks', async () => {
    const clone = `${user.home}/blobless`;
    const cloned = await ok(user.git(server.port, ['clone', '--filter=blob:none', url(server.port, REPO), clone]), 'blobless clone');
    assert.doesNotMatch(cloned.stderr, /filtering not recognized/);
    const oldBlob = (await user.git(server.port, ['rev-parse', `${commits[0]}:a.txt`], { cwd: clone })).stdout.trim();
    const missing = await user.git(server.port, ['cat-file', '-e', oldBlob], { cwd: clone, env: { GIT_NO_LAZY_FETCH: '1' } });
    assert.notEqual(missing.code, 0, 'the first version of a.txt was not fetched by the clone');
    await ok(user.git(server.port, ['checkout', '-q', commits[0]!], { cwd: clone }), 'checkout of the first commit');
    const content = await user.exec('cat', [`${clone}/a.txt`]);
    assert.equal(content.stdout, 'one\n');
    const present = await user.git(server.port, ['cat-file', '-e', oldBlob], { cwd: clone, env: { GIT_NO_LAZY_FETCH: '1' } });
    assert.equal(present.code, 0, present.stderr);
  });

  test('partial clone on protocol v0 too: the blobs it lacks come by object id (uploadpack.allowAnySHA1InWant)', async () => {
    const clone = `${user.home}/blobless-v0`;
    const v0 = ['-c', 'protocol.version=0'];
    await ok(user.git(server.port, [...v0, 'clone', '-q', '--filter=blob:none', url(server.port, REPO), clone]), 'v0 blobless clone');
    await ok(user.git(server.port, [...v0, 'checkout', '-q', commits[1]!], { cwd: clone }), 'v0 checkout of the second commit');
    assert.equal((await user.exec('cat', [`${clone}/a.txt`])).stdout, 'two\n');
  });

  test('partial clone: --filter=tree:0, then history and an old tree on demand', async () => {
    const clone = `${user.home}/treeless`;
    const cloned = await ok(user.git(server.port, ['clone', '-q', '--filter=tree:0', url(server.port, REPO), clone]), 'treeless clone');
    assert.doesNotMatch(cloned.stderr, /filtering not recognized/);
    const log = await user.git(server.port, ['rev-list', '--count', 'HEAD'], { cwd: clone });
    assert.equal(log.stdout.trim(), '4');
    await ok(user.git(server.port, ['checkout', '-q', commits[1]!], { cwd: clone }), 'checkout of the second commit');
    assert.equal((await user.exec('cat', [`${clone}/a.txt`])).stdout, 'two\n');
  });

  test('shallow: --depth 1, then --deepen 1, then --unshallow', async () => {
    const clone = `${user.home}/shallow`;
    await ok(user.git(server.port, ['clone', '-q', '--depth', '1', url(server.port, REPO), clone]), 'shallow clone');
    const count = async () => (await user.git(server.port, ['rev-list', '--count', 'HEAD'], { cwd: clone })).stdout.trim();
    assert.equal(await count(), '1');
    assert.equal((await user.git(server.port, ['rev-parse', '--is-shallow-repository'], { cwd: clone })).stdout.trim(), 'true');
    await ok(user.git(server.port, ['fetch', '-q', '--deepen', '1'], { cwd: clone }), 'fetch --deepen');
    assert.equal(await count(), '2');
    await ok(user.git(server.port, ['fetch', '-q', '--unshallow'], { cwd: clone }), 'fetch --unshallow');
    assert.equal(await count(), '4');
    assert.equal((await user.git(server.port, ['rev-parse', '--is-shallow-repository'], { cwd: clone })).stdout.trim(), 'false');
  });

  test('protocol v2: capabilities advertised, and object-info answers an object\'s size', async () => {
    const traced = await ok(
      user.git(server.port, ['-c', 'protocol.version=2', 'ls-remote', url(server.port, REPO)], { env: { GIT_TRACE_PACKET: '1' } }),
      'ls-remote',
    );
    assert.match(traced.stderr, /< version 2$/m);
    assert.match(traced.stderr, /< object-info$/m);
    assert.match(traced.stderr, /< fetch=.*\bfilter\b/);
    assert.match(traced.stdout, /^[0-9a-f]{40}\trefs\/heads\/main$/m);

    const blob = (await user.git(server.port, ['rev-parse', `${commits[2]}:dir/b.txt`], { cwd: work })).stdout.trim();
    const request = pkt('command=object-info\n') + '0001' + pkt('size\n') + pkt(`oid ${blob}\n`) + '0000';
    const answer = await user.exec(
      'ssh',
      [...user.sshOptions(server.port, ['-o', 'SetEnv=GIT_PROTOCOL=version=2']), 'git@127.0.0.1', `git-upload-pack '${REPO}'`],
      { input: request },
    );
    // pkt-lines: "size", then "<oid> <size>" (4,000 bytes of "bee\n"), then a flush.
    assert.ok(answer.stdout.endsWith(pkt('size') + pkt(`${blob} 4000`) + '0000'), `object-info answer: ${JSON.stringify(answer.stdout)} ${answer.stderr}`);
  });
});

describe('what a server configured otherwise tells OpenSSH 10 and git 2.5x', () => {
  let user: ChrootUser;
  let server: TestServer;

  before(async () => {
    user = new ChrootUser(sidRoot());
    server = await TestServer.start({
      users: [{ name: 'sid', keys: [user.key.publicLine], access: { '*': 'admin' } }],
      config: {
        sshd: { kex_algorithms: ['curve25519-sha256'] },
        upload_pack: { allow_filter: false },
      },
    });
    const work = `${user.home}/work`;
    mkdirSync(user.hostPath(work));
    writeFileSync(user.hostPath(`${user.home}/work/a.txt`), 'one\n');
    for (const args of [['init', '-q', '.'], ['add', '-A'], ['commit', '-q', '-m', 'one'], ['push', '-q', url(server.port, REPO), 'main']]) {
      const result = await user.git(server.port, args, { cwd: work });
      assert.equal(result.code, 0, result.stderr);
    }
  });

  after(async () => {
    await server?.dispose();
    user?.dispose();
  });

  test('without ML-KEM on the server, OpenSSH 10 warns: the warning the default spares users', async () => {
    const result = await user.ssh(server.port);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /WARNING: connection is not using a post-quantum key exchange algorithm/);
  });

  test('upload_pack.allow_filter: false: git falls back to a full clone and says so', async () => {
    const clone = `${user.home}/full`;
    const result = await user.git(server.port, ['clone', '--filter=blob:none', url(server.port, REPO), clone]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /filtering not recognized by server/);
  });
});

describe('upload_pack.allow_ref_in_want, off by default', () => {
  test('on, git 2.5x shallow clones fail against git 2.39\'s upload-pack: why it is off', async () => {
    const user = new ChrootUser(sidRoot());
    const server = await TestServer.start({
      users: [{ name: 'sid', keys: [user.key.publicLine], access: { '*': 'admin' } }],
      config: { upload_pack: { allow_ref_in_want: true } },
    });
    try {
      const work = `${user.home}/work`;
      mkdirSync(user.hostPath(work));
      for (const text of ['one', 'two']) {
        writeFileSync(user.hostPath(`${work}/a.txt`), `${text}\n`);
        for (const args of [['init', '-q', '.'], ['add', '-A'], ['commit', '-q', '-m', text]]) await user.git(server.port, args, { cwd: work });
      }
      const pushed = await user.git(server.port, ['push', '-q', url(server.port, REPO), 'main'], { cwd: work });
      assert.equal(pushed.code, 0, pushed.stderr);
      const shallow = await user.git(server.port, ['clone', '-q', '--depth', '1', url(server.port, REPO), `${user.home}/shallow`]);
      const serverGit = await runLocal('git', ['--version']);
      if (/^git version 2\.39\./.test(serverGit)) {
        assert.notEqual(shallow.code, 0, 'git 2.39\'s upload-pack now serves this: allow_ref_in_want could default to true');
        assert.match(shallow.stderr, /expected 'packfile', received 'shallow-info'/);
      } else {
        assert.equal(shallow.code, 0, shallow.stderr);
      }
    } finally {
      await server.dispose();
      user.dispose();
    }
  });
});

async function runLocal(command: string, args: string[]): Promise<string> {
  const { run } = await import('./helpers/client.js');
  return (await run(command, args)).stdout;
}
