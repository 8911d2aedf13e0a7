import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveLogFormat } from './logger.js';
import { textLine } from './textLine.js';

describe('log format', () => {
  test('auto is text on a terminal and JSON on a pipe or in a file; json and text are forced', () => {
    assert.equal(resolveLogFormat({ logFormat: 'auto', logFile: '' }, true), 'text');
    assert.equal(resolveLogFormat({ logFormat: 'auto', logFile: '/dev/stdout' }, true), 'text');
    assert.equal(resolveLogFormat({ logFormat: 'auto', logFile: '' }, false), 'json');
    assert.equal(resolveLogFormat({ logFormat: 'auto', logFile: '/var/log/git-sshd.log' }, true), 'json');
    assert.equal(resolveLogFormat({ logFormat: 'json', logFile: '' }, true), 'json');
    assert.equal(resolveLogFormat({ logFormat: 'text', logFile: '' }, false), 'text');
  });

  test('a text line is the message, then key=value, with values that hold spaces quoted whole', () => {
    const line = textLine(
      { level: 30, time: 1, service: 'git-sshd', msg: 'host key', type: 'ED25519', known_hosts: '[localhost]:2222 ssh-ed25519 AAAA/x+y=' },
      'msg',
    );
    assert.equal(line, 'host key type=ED25519 known_hosts="[localhost]:2222 ssh-ed25519 AAAA/x+y="');
  });

  test('objects are JSON, errors their message with the stack below', () => {
    const err = new Error('boom');
    const line = textLine({ msg: 'command failed', sessions: [{ repo: 'a' }], err: { message: err.message, stack: err.stack } }, 'msg');
    assert.match(line, /^command failed sessions=\[\{"repo":"a"\}\] err=boom\nError: boom\n/);
  });
});
