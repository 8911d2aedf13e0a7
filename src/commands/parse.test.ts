import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ERR_BAD_COMMAND, ERR_UNKNOWN_COMMAND, GitSshdError } from '../errors.js';
import { parseCommand, unknownCommand } from './parse.js';

/** Asserts a policy error with `code` whose message contains every fragment. */
function assertRefused(text: string, code: string, ...fragments: string[]): void {
  assert.throws(
    () => parseCommand(text),
    (err: unknown) => {
      assert.ok(err instanceof GitSshdError, String(err));
      assert.equal(err.code, code);
      assert.equal(err.errorClass, 'policy');
      for (const fragment of fragments) {
        assert.ok(err.message.includes(fragment), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(fragment)}`);
      }
      return true;
    },
    JSON.stringify(text.slice(0, 80)),
  );
}

describe('parseCommand', () => {
  test('an empty command is the welcome message', () => {
    assert.deepEqual(parseCommand(''), { kind: 'welcome' });
    assert.deepEqual(parseCommand('   '), { kind: 'welcome' });
  });

  test('git-upload-pack with a quoted repository is a git command', () => {
    assert.deepEqual(parseCommand("git-upload-pack 'team/app.git'"), { kind: 'git', service: 'git-upload-pack', repo: 'team/app.git' });
  });

  test('"git upload-pack" is the same as git-upload-pack', () => {
    assert.deepEqual(parseCommand('git upload-pack team/app'), { kind: 'git', service: 'git-upload-pack', repo: 'team/app' });
  });

  test('receive-pack and upload-archive are git commands too', () => {
    assert.deepEqual(parseCommand("git-receive-pack '/team/app.git'"), { kind: 'git', service: 'git-receive-pack', repo: '/team/app.git' });
    assert.deepEqual(parseCommand("git-upload-archive 'app'"), { kind: 'git', service: 'git-upload-archive', repo: 'app' });
  });

  test('a quoted word with a space stays one word', () => {
    assert.deepEqual(parseCommand('git-receive-pack "a b"'), { kind: 'git', service: 'git-receive-pack', repo: 'a b' });
  });

  test('a git command needs exactly one non-empty repository', () => {
    assertRefused('git-upload-pack', ERR_BAD_COMMAND, 'git-upload-pack', 'exactly one repository');
    assertRefused('git-upload-pack a b', ERR_BAD_COMMAND, 'exactly one repository');
    assertRefused("git-upload-pack ''", ERR_BAD_COMMAND, 'exactly one repository');
    assertRefused('git upload-pack', ERR_BAD_COMMAND, 'git-upload-pack');
  });

  test('an unknown command is named', () => {
    assertRefused('foo', ERR_UNKNOWN_COMMAND);
    assert.throws(() => parseCommand('foo --bar'), { message: 'Unknown command: foo' });
    assertRefused('git', ERR_UNKNOWN_COMMAND, 'Unknown command: git');
    assertRefused('git frobnicate x', ERR_UNKNOWN_COMMAND, 'git-frobnicate');
  });

  test('an unknown command is shown with only printable characters', () => {
    assertRefused('"\x1b[31mred"', ERR_UNKNOWN_COMMAND, 'Unknown command: ?[31mred');
  });

  test('GitLab-only commands are parsed as backend commands with their arguments', () => {
    assert.deepEqual(parseCommand('git-lfs-authenticate team/app download'), { kind: 'backend', name: 'git-lfs-authenticate', args: ['team/app', 'download'] });
    assert.deepEqual(parseCommand('2fa_verify'), { kind: 'backend', name: '2fa_verify', args: [] });
    assert.deepEqual(parseCommand("personal_access_token ci 'read_api,read_repository' 7"), { kind: 'backend', name: 'personal_access_token', args: ['ci', 'read_api,read_repository', '7'] });
    assert.match(unknownCommand('2fa_verify', true).message, /Unknown command: 2fa_verify \(it needs the GitLab backend\)/);
  });

  test('unbalanced quotes are a bad command', () => {
    assertRefused("git-upload-pack 'team/app", ERR_BAD_COMMAND, 'unbalanced');
    assertRefused('git-upload-pack "team/app', ERR_BAD_COMMAND, 'unbalanced');
  });

  test('a NUL byte is a bad command', () => {
    assertRefused("git-upload-pack 'team/app\0'", ERR_BAD_COMMAND, 'NUL');
  });

  test('a command longer than 4096 characters is a bad command', () => {
    assertRefused(`git-upload-pack '${'a'.repeat(4096)}'`, ERR_BAD_COMMAND, 'too long');
    assert.equal(parseCommand(`git-upload-pack ${'a'.repeat(4096 - 'git-upload-pack '.length)}`).kind, 'git');
  });
});
