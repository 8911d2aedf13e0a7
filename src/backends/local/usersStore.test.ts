import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { bigUsersFile } from '../../../bench/lib/usersFile.js';
import { memoryLogger } from '../../../test/helpers/memoryLogger.js';
import { ERR_USERS_FILE, isCode } from '../../errors.js';
import { UsersStore } from './usersStore.js';


const base = mkdtempSync(join(tmpdir(), 'git-sshd-store-'));
after(() => rmSync(base, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (): string => join(base, `case-${++dirCount}`);

/** A store on a fresh users file (created from the template), closed after `fn`. */
async function withStore(fn: (context: { file: string; store: UsersStore; lines: ReturnType<typeof memoryLogger>['lines'] }) => Promise<void>): Promise<void> {
  const file = join(freshDir(), 'users.yml');
  const { log, lines } = memoryLogger();
  const store = await UsersStore.open({ file, createIfMissing: true, log });
  try {
    await fn({ file, store, lines });
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
  test('a missing file is created from the template when allowed', async () => {
    const file = join(freshDir(), 'nested', 'users.yml');
    const { log, lines } = memoryLogger();
    const store = await UsersStore.open({ file, createIfMissing: true, log });
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

  test('a missing file is an error when it must not be created', async () => {
    const file = join(freshDir(), 'users.yml');
    const { log } = memoryLogger();
    await assert.rejects(UsersStore.open({ file, createIfMissing: false, log }), (err: unknown) => isCode(err, ERR_USERS_FILE));
    assert.equal(existsSync(file), false);
  });

  test('an invalid file at start is an error', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    const file = join(dir, 'users.yml');
    for (const text of ['groups: []\n', '']) {
      writeFileSync(file, text);
      const { log } = memoryLogger();
      await assert.rejects(UsersStore.open({ file, createIfMissing: true, log }), (err: unknown) => isCode(err, ERR_USERS_FILE));
    }
  });

  test('reload takes a valid change and reports whether anything changed', async () => {
    await withStore(async ({ file, store, lines }) => {
        writeFileSync(file, usersText('alice'));
        assert.equal(await store.reload(), true);
        assert.deepEqual(userNames(store), ['alice']);
        assert.ok(lines.some((line) => line.msg === 'reloaded users file' && line.users === 1));
        assert.equal(await store.reload(), false, 'the same content is not taken twice');
    });
  });

  test('reload keeps the last good file when the change is invalid, and logs an error', async () => {
    await withStore(async ({ file, store, lines }) => {
        writeFileSync(file, usersText('alice'));
        assert.equal(await store.reload(), true);
        const good = store.current;

        writeFileSync(file, 'users:\n  - name: alice\n    keys: [unclosed\n');
        assert.equal(await store.reload(), false);
        assert.equal(store.current, good);
        const errors = lines.filter((line) => line.level === 50);
        assert.equal(errors.length, 1);
        assert.equal(errors[0]?.file, file);

        writeFileSync(file, usersText('alice', 'bob'));
        assert.equal(await store.reload(), true, 'a later valid change is taken again');
        assert.deepEqual(userNames(store), ['alice', 'bob']);
    });
  });

  test('reload keeps the last good file when the file disappears', async () => {
    await withStore(async ({ file, store, lines }) => {
        rmSync(file);
        assert.equal(await store.reload(), false);
        assert.equal(store.current.users.size, 0);
        assert.ok(lines.some((line) => line.level === 50 && line.reason === 'ENOENT'));
    });
  });

  test('watch sees a file replaced by an atomic rename', async () => {
    const dir = freshDir();
    const file = join(dir, 'users.yml');
    const { log } = memoryLogger();
    const store = await UsersStore.open({ file, createIfMissing: true, log, debounceMs: 10 });
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

  test('an empty file (a write caught halfway) is not taken as "no users": the last good file stays', async () => {
    await withStore(async ({ file, store, lines }) => {
      writeFileSync(file, usersText('alice'));
      assert.equal(await store.reload(), true);
      writeFileSync(file, '');
      assert.equal(await store.reload(), false);
      assert.deepEqual(userNames(store), ['alice']);
      assert.ok(lines.some((line) => line.level === 50 && /empty/.test(String(line.error))));
      writeFileSync(file, 'users: []\n');
      assert.equal(await store.reload(), true, 'removing every user is said with "users: []"');
      assert.equal(store.current.users.size, 0);
    });
  });

  test('a file still being written when read is never taken half-written: it is read again once quiet', async () => {
    const dir = freshDir();
    const file = join(dir, 'users.yml');
    const { log } = memoryLogger();
    const store = await UsersStore.open({ file, createIfMissing: true, log, debounceMs: 20, settleMs: 500 });
    try {
      writeFileSync(file, usersText('alice', 'bob'));
      assert.equal(await store.reload(), true, 'the worker is up and has the file');
      // The first part of a write is valid YAML with fewer users: taken, it would drop bob.
      let droppedBob = false;
      const watcher = setInterval(() => (droppedBob ||= !store.current.users.has('bob')), 2);
      writeFileSync(file, usersText('alice'));
      const reloading = store.reload();
      await delay(30);
      writeFileSync(file, usersText('alice', 'bob', 'carol'));
      await reloading;
      await waitFor(() => store.current.users.has('carol'), 10_000);
      clearInterval(watcher);
      assert.equal(droppedBob, false, 'the half-written file was taken');
      assert.deepEqual(userNames(store), ['alice', 'bob', 'carol']);
    } finally {
      store.close();
    }
  });
});

describe('UsersStore with a big file', () => {
  test('the event loop keeps running while a big file is reloaded: its longest stall is a small part of the reload', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    const file = join(dir, 'users.yml');
    const text = bigUsersFile(3000);
    writeFileSync(file, text);
    const { log, lines } = memoryLogger();
    const store = await UsersStore.open({ file, createIfMissing: false, log, settleMs: 0 });
    try {
      assert.equal(store.current.users.size, 3000);
      // One user changed, one added: a typical edit.
      writeFileSync(file, text.replace('team1/*', 'team1/app').replace(/\n$/, '\n  - name: newcomer\n'));
      // The event loop is sampled every 10 ms; a stall shows as a long gap between ticks.
      const histogram = monitorEventLoopDelay({ resolution: 10 });
      let ticks = 0;
      const ticker = setInterval(() => (ticks += 1), 5);
      histogram.enable();
      const started = performance.now();
      assert.equal(await store.reload(), true);
      const reloadMs = performance.now() - started;
      histogram.disable();
      clearInterval(ticker);
      assert.ok(store.current.users.has('newcomer'));
      const reloaded = lines.find((line) => line.msg === 'reloaded users file');
      assert.equal(reloaded?.changed, 2, 'only the changed and the new user were handed over');
      const maxStallMs = histogram.max / 1e6;
      // A reload done on the event loop stalls it for the whole reload (the ratio is ~1); off
      // it, what remains is applying the difference, plus whatever a busy machine adds.
      assert.ok(maxStallMs < reloadMs / 2, `longest stall ${maxStallMs.toFixed(1)} ms of a ${reloadMs.toFixed(1)} ms reload`);
      assert.ok(ticks > 0, 'timers ran during the reload');
    } finally {
      store.close();
    }
  });
});

