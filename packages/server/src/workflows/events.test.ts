import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeTrigger, parseWebhook } from './events.ts';

const SHA = 'a'.repeat(40);
const repo = (id: number, fullName: string) => ({
  id,
  full_name: fullName,
  clone_url: `https://github.com/${fullName}.git`,
  html_url: `https://github.com/${fullName}`,
  default_branch: 'main',
});

const push = (ref: string, after: string, extra: Record<string, unknown> = {}) => ({ ref, after, before: SHA, deleted: false, repository: repo(1, 'acme/app'), ...extra });

const pr = (action: string, o: { headRepo?: unknown; changes?: unknown } = {}) => ({
  action,
  number: 7,
  ...(o.changes ? { changes: o.changes } : {}),
  pull_request: {
    number: 7,
    head: { ref: 'feature', sha: 'B'.repeat(40), repo: o.headRepo === undefined ? repo(1, 'acme/app') : o.headRepo },
    base: { ref: 'main', sha: SHA, repo: repo(1, 'acme/app') },
  },
  repository: repo(1, 'acme/app'),
});

describe('parseWebhook', () => {
  test('a branch push becomes a push trigger on that branch at `after`', () => {
    const r = parseWebhook('push', push('refs/heads/release/1.10', 'C'.repeat(40)));
    assert.deepEqual(r, {
      trigger: {
        kind: 'push',
        repository: {
          clone_url: 'https://github.com/acme/app.git',
          html_url: 'https://github.com/acme/app',
          ssh_url: null,
          full_name: 'acme/app',
          default_branch: 'main',
        },
        sha: 'c'.repeat(40),
        branch: 'release/1.10',
        tag: null,
      },
    });
  });

  test('a tag push becomes a push trigger with the tag and no branch', () => {
    const r = parseWebhook('push', push('refs/tags/v1.2', SHA));
    assert.ok('trigger' in r && r.trigger.kind === 'push');
    assert.equal(r.trigger.tag, 'v1.2');
    assert.equal(r.trigger.branch, null);
  });

  test('branch and tag deletions start nothing (all-zero after, or deleted: true)', () => {
    assert.deepEqual(parseWebhook('push', push('refs/heads/gone', '0'.repeat(40), { deleted: true })), { ignored: 'refs/heads/gone was deleted' });
    assert.deepEqual(parseWebhook('push', push('refs/tags/v0', '0'.repeat(40))), { ignored: 'refs/tags/v0 was deleted' });
  });

  test('a push to another kind of ref is ignored; a push without a valid sha is malformed', () => {
    assert.ok('ignored' in parseWebhook('push', push('refs/notes/commits', SHA)));
    assert.throws(() => parseWebhook('push', push('refs/heads/main', 'nope')), /no valid "after"/);
    assert.throws(() => parseWebhook('push', { ref: 'refs/heads/main', after: SHA }), /no repository/);
  });

  test('events other than push and pull_request start nothing', () => {
    assert.deepEqual(parseWebhook('issues', { repository: repo(1, 'acme/app') }), {
      ignored: 'event "issues" does not start workflows (only push and pull_request do)',
    });
  });

  test('a same-repo pull request is trusted: head branch, head sha, base branch', () => {
    const r = parseWebhook('pull_request', pr('opened'));
    assert.ok('trigger' in r && r.trigger.kind === 'pull_request');
    assert.equal(r.trigger.sameRepo, true);
    assert.equal(r.trigger.headSha, 'b'.repeat(40));
    assert.equal(r.trigger.headBranch, 'feature');
    assert.equal(r.trigger.baseBranch, 'main');
    assert.equal(r.trigger.number, 7);
    assert.equal(r.trigger.action, 'opened');
    assert.equal(describeTrigger(r.trigger), `pull request #7 opened: feature → main (${'b'.repeat(12)})`);
  });

  test('a pull request from a fork is not the same repo; a deleted fork neither', () => {
    const fork = parseWebhook('pull_request', pr('synchronize', { headRepo: repo(2, 'mallory/app') }));
    assert.ok('trigger' in fork && fork.trigger.kind === 'pull_request');
    assert.equal(fork.trigger.sameRepo, false);
    assert.equal(fork.trigger.headRepoUrl, 'https://github.com/mallory/app.git');
    assert.equal(fork.trigger.headFullName, 'mallory/app');
    const gone = parseWebhook('pull_request', pr('synchronize', { headRepo: null }));
    assert.ok('trigger' in gone && gone.trigger.kind === 'pull_request');
    assert.equal(gone.trigger.sameRepo, false);
    assert.equal(gone.trigger.headRepoUrl, null);
  });

  test('`edited` counts only when the base branch changed', () => {
    assert.deepEqual(parseWebhook('pull_request', pr('edited', { changes: { title: { from: 'x' } } })), {
      ignored: 'pull request #7 was edited but its base branch did not change',
    });
    const r = parseWebhook('pull_request', pr('edited', { changes: { base: { ref: { from: 'dev' } } } }));
    assert.ok('trigger' in r && r.trigger.kind === 'pull_request' && r.trigger.action === 'edited');
  });

  test('other pull request actions pass through (the config decides with `types`)', () => {
    const r = parseWebhook('pull_request', pr('ready_for_review'));
    assert.ok('trigger' in r && r.trigger.kind === 'pull_request' && r.trigger.action === 'ready_for_review');
  });
});
