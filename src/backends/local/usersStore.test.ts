import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { memoryLogger } from '../../../test/helpers/memoryLogger.js';
import { ERR_USERS_FILE, isCode } from '../../errors.js';
import { UsersStore } from './usersStore.js';


const base = mkdtempSync(join(tmpdir(), 'git-sshd-store-'));
after(() => rmSync(base, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (): string => join(base, `case-${++dirCount}`);

/** A store on a fresh users file (created from the template), closed after `fn`. */
function withStore(fn: (context: { file: string; store: UsersStore; lines: ReturnType<typeof memoryLogger>['lines'] }) => void): void {
  const file = join(freshDir(), 'users.yml');
  const { log, lines } = memoryLogger();
  const store = new UsersStore({ file, createIfMissing: true, log });
  try {
    fn({ file, store, lines });
  } finally {
    store.close();
  }
}

const usersText = (...names: string[]): string => `users:\n${names.map((name) => `  - name: ${name}\n`).join('')}`;
const userNames = (store: UsersStore): string[] => [...store.current.users.keys()];

async function waitFor(condition: () => boolean, timeoutMs = 60_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await delay(intervalMs);
  }
}

describe('UsersStore', () => {
  test('a missing file is created from the template when allowed', () => {
    const file = join(freshDir(), 'nested', 'users.yml');
    const { log, lines } = memoryLogger();
    const store = new UsersStore({ file, createIfMissing: true, log });
    try {
      assert.ok(existsSync(file));
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.match(readFileSync(file, 'utf8'), /^users: \[\]$/m);
      assert.equal(store.current.users.size, 0);
      assert.ok(lines.some((line) => line.level === 40 && line.file === file), 'a warning names the created file');
    } finally {
      store.close();
    }
  });

  test('a missing file is an error when it must not be created', () => {
    const file = join(freshDir(), 'users.yml');
    const { log } = memoryLogger();
    assert.throws(() => new UsersStore({ file, createIfMissing: false, log }), (err: unknown) => isCode(err, ERR_USERS_FILE));
    assert.equal(existsSync(file), false);
  });

  test('an invalid file at start is an error', () => {
    const dir = freshDir();
    mkdirSync(dir);
    const file = join(dir, 'users.yml');
    writeFileSync(file, 'groups: []\n');
    const { log } = memoryLogger();
    assert.throws(() => new UsersStore({ file, createIfMissing: true, log }), (err: unknown) => isCode(err, ERR_USERS_FILE));
  });

  test('reload takes a valid change and reports whether anything changed', () => {
    withStore(({ file, store, lines }) => {
        writeFileSync(file, usersText('alice'));
        assert.equal(store.reload(), true);
        assert.deepEqual(userNames(store), ['alice']);
        assert.ok(lines.some((line) => line.msg === 'reloaded users file' && line.users === 1));
        assert.equal(store.reload(), false, 'the same content is not taken twice');
    });
  });

  test('reload keeps the last good file when the change is invalid, and logs an error', () => {
    withStore(({ file, store, lines }) => {
        writeFileSync(file, usersText('alice'));
        assert.equal(store.reload(), true);
        const good = store.current;

        writeFileSync(file, 'users:\n  - name: alice\n    keys: [unclosed\n');
        assert.equal(store.reload(), false);
        assert.equal(store.current, good);
        const errors = lines.filter((line) => line.level === 50);
        assert.equal(errors.length, 1);
        assert.equal(errors[0]?.file, file);

        writeFileSync(file, usersText('alice', 'bob'));
        assert.equal(store.reload(), true, 'a later valid change is taken again');
        assert.deepEqual(userNames(store), ['alice', 'bob']);
    });
  });

  test('reload keeps the last good file when the file disappears', () => {
    withStore(({ file, store, lines }) => {
        rmSync(file);
        assert.equal(store.reload(), false);
        assert.equal(store.current.users.size, 0);
        assert.ok(lines.some((line) => line.level === 50 && line.reason === 'ENOENT'));
    });
  });

  test('watch sees a file replaced by an atomic rename', async () => {
    const dir = freshDir();
    const file = join(dir, 'users.yml');
    const { log } = memoryLogger();
    const store = new UsersStore({ file, createIfMissing: true, log, debounceMs: 10 });
    try {
      store.watch();
      const temp = join(dir, '.users.yml.tmp');
      writeFileSync(temp, usersText('alice'));
      renameSync(temp, file);
      await waitFor(() => store.current.users.has('alice'));
      assert.deepEqual(userNames(store), ['alice']);
    } finally {
      store.close();
    }
  });
});
