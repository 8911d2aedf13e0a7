import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { accessLevel, allows, compileGrant } from './access.js';

describe('grants and access levels', () => {
  test('"*" covers every repository, nested ones included', () => {
    const grants = [compileGrant('*', 'admin')];
    for (const repo of ['app', 'team/app', 'team/app/sub', 'a/b/c/d']) {
      assert.equal(accessLevel(grants, repo), 'admin', repo);
    }
  });

  test('"team/*" covers what is in team, however deep, and nothing else', () => {
    const grants = [compileGrant('team/*', 'write')];
    assert.equal(accessLevel(grants, 'team/app'), 'write');
    assert.equal(accessLevel(grants, 'team/app/sub'), 'write');
    assert.equal(accessLevel(grants, 'other/app'), undefined);
    assert.equal(accessLevel(grants, 'teams/app'), undefined);
  });

  test('a plain name covers that repository and what is below it, not look-alikes', () => {
    const grants = [compileGrant('docs', 'read')];
    assert.equal(accessLevel(grants, 'docs'), 'read');
    assert.equal(accessLevel(grants, 'docs/x'), 'read');
    assert.equal(accessLevel(grants, 'docs2'), undefined);
    assert.equal(accessLevel(grants, 'team/docs'), undefined);
  });

  test('a pattern written with slashes or .git means the same repository', () => {
    assert.equal(accessLevel([compileGrant('/team/app.git', 'write')], 'team/app'), 'write');
    assert.equal(accessLevel([compileGrant('team/', 'read')], 'team/app'), 'read');
  });

  test('the highest level among matching grants wins, whatever their order', () => {
    const grants = [compileGrant('team/*', 'read'), compileGrant('team/app', 'admin'), compileGrant('*', 'write')];
    assert.equal(accessLevel(grants, 'team/app'), 'admin');
    assert.equal(accessLevel(grants, 'team/other'), 'write');
    assert.equal(accessLevel([...grants].reverse(), 'team/app'), 'admin');
    assert.equal(accessLevel([compileGrant('*', 'admin'), compileGrant('team/*', 'read')], 'team/app'), 'admin');
  });

  test('no matching grant gives no level', () => {
    assert.equal(accessLevel([], 'team/app'), undefined);
    assert.equal(accessLevel([compileGrant('other/*', 'admin')], 'team/app'), undefined);
  });

  test('allows compares levels read < write < admin', () => {
    assert.equal(allows('admin', 'write'), true);
    assert.equal(allows('write', 'write'), true);
    assert.equal(allows('write', 'read'), true);
    assert.equal(allows('read', 'write'), false);
    assert.equal(allows('write', 'admin'), false);
    assert.equal(allows(undefined, 'read'), false);
  });
});
