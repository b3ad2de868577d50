import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SAVE_POLICY, SAVE_POLICIES, isSavePolicy, shouldSave, type SaveContext } from './savePolicy.ts';

const ok = (over: Partial<SaveContext> = {}): SaveContext => ({
  trusted: true,
  status: 'succeeded',
  branch: 'feat',
  defaultBranch: 'main',
  matchedLevel: null,
  ...over,
});

describe('shouldSave', () => {
  it('default policy is first-non-default-ref', () => {
    assert.equal(DEFAULT_SAVE_POLICY, 'first-non-default-ref');
    assert.equal(isSavePolicy('none-available'), true);
    assert.equal(isSavePolicy('sometimes'), false);
  });

  it('never saves after a failed, cancelled, timed-out or unfinished run, under any policy', () => {
    for (const policy of SAVE_POLICIES) {
      for (const status of ['failed', 'cancelled', 'timed_out', 'running', 'queued'] as const) {
        for (const branch of ['main', 'feat']) {
          const d = shouldSave(policy, ok({ status, branch }));
          assert.equal(d.save, false, `${policy} ${status} ${branch}`);
          assert.match(d.why, /never save/);
        }
      }
    }
  });

  it('never saves from an untrusted run, under any policy', () => {
    for (const policy of SAVE_POLICIES) {
      for (const branch of ['main', 'feat']) {
        for (const matchedLevel of [null, 'branch', 'default'] as const) {
          const d = shouldSave(policy, ok({ trusted: false, branch, matchedLevel }));
          assert.equal(d.save, false);
          assert.match(d.why, /untrusted/);
        }
      }
    }
  });

  it('never saves without a branch', () => {
    for (const policy of SAVE_POLICIES) assert.equal(shouldSave(policy, ok({ branch: '' })).save, false);
  });

  it('always: every eligible run saves', () => {
    for (const matchedLevel of [null, 'branch', 'base', 'default'] as const) {
      assert.equal(shouldSave('always', ok({ matchedLevel })).save, true);
      assert.equal(shouldSave('always', ok({ branch: 'main', matchedLevel })).save, true);
    }
  });

  it('first-non-default-ref: default branch always; other branches only until they have their own', () => {
    const p = 'first-non-default-ref';
    assert.equal(shouldSave(p, ok({ branch: 'main', matchedLevel: 'branch' })).save, true);
    assert.equal(shouldSave(p, ok({ matchedLevel: null })).save, true);
    assert.equal(shouldSave(p, ok({ matchedLevel: 'base' })).save, true);
    assert.equal(shouldSave(p, ok({ matchedLevel: 'default' })).save, true);
    const d = shouldSave(p, ok({ matchedLevel: 'branch' }));
    assert.equal(d.save, false);
    assert.match(d.why, /already has a snapshot/);
  });

  it('none-available: default branch always; other branches only when they started cold', () => {
    const p = 'none-available';
    assert.equal(shouldSave(p, ok({ branch: 'main', matchedLevel: 'branch' })).save, true);
    assert.equal(shouldSave(p, ok({ matchedLevel: null })).save, true);
    for (const matchedLevel of ['branch', 'base', 'default'] as const) {
      assert.equal(shouldSave(p, ok({ matchedLevel })).save, false, matchedLevel);
    }
  });
});
