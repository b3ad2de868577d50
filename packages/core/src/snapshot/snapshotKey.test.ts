import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  lookupKeys,
  lookupOrder,
  repoInstancePrefix,
  runnerConfigHash,
  snapshotInstance,
  snapshotKey,
  writeKeyFor,
  type SnapshotKeyInput,
} from './snapshotKey.ts';

const CFG = { isolation: 'sandbox', os: 'linux', arch: 'amd64', bazelVersion: '7.4.1', cpus: 4 };
const INSTANCE = 'github.com/acme/widgets#Test all';

function base(): SnapshotKeyInput {
  return {
    instance: INSTANCE,
    platformProperties: { 'container-image': 'none', salt: '' },
    runnerConfigHash: runnerConfigHash(CFG),
    gitRef: 'main',
  };
}

describe('snapshotKey golden values', () => {
  // Hard-coded on purpose: if any of these change, every existing snapshot becomes unreachable. Change
  // them only together with a deliberate format change (bump SNAPSHOT_FORMAT_VERSION).
  it('runnerConfigHash', () => {
    assert.equal(runnerConfigHash(CFG), '90e303c06cbbefe4a56a28009b401079c73cc2e87b79073f977d57571930dce3');
  });
  it('snapshotInstance normalizes the repository URL', () => {
    assert.equal(snapshotInstance('git@github.com:acme/widgets.git', 'Test all'), INSTANCE);
    assert.equal(snapshotInstance('ssh://git@github.com/acme/widgets', 'Test all'), INSTANCE);
    assert.equal(snapshotInstance('https://x-access-token:t@GitHub.com/acme/widgets/', 'Test all'), INSTANCE);
  });
  it('snapshotKey', () => {
    assert.equal(snapshotKey(base()), 'cd2de0a739af931979ffcbcba049cfc9a77480691e83877c10d5b80e5c64b999');
    assert.equal(
      snapshotKey({ ...base(), platformProperties: {}, gitRef: 'feature/x' }),
      '37ac0e43dc4e6145b697a21d6afe50032e575a8f5d8ea8f912ea239a9e922545',
    );
  });
});

describe('snapshotKey', () => {
  it('is 64 lowercase hex', () => {
    assert.match(snapshotKey(base()), /^[0-9a-f]{64}$/);
  });

  it('does not depend on platform property order', () => {
    const a = snapshotKey({ ...base(), platformProperties: { a: '1', b: '2', salt: 'x' } });
    const b = snapshotKey({ ...base(), platformProperties: { salt: 'x', b: '2', a: '1' } });
    assert.equal(a, b);
  });

  it('changes when any input changes', () => {
    const variants: SnapshotKeyInput[] = [
      { ...base(), instance: INSTANCE + ' ' },
      { ...base(), instance: 'github.com/acme/widgets#Build' },
      { ...base(), platformProperties: { 'container-image': 'none', salt: '1' } },
      { ...base(), platformProperties: { 'container-image': 'none' } },
      { ...base(), platformProperties: { 'container-image': 'none', salt: '', 'runner-recycling-key': 'k' } },
      { ...base(), runnerConfigHash: runnerConfigHash({ ...CFG, cpus: 8 }) },
      { ...base(), runnerConfigHash: runnerConfigHash({ ...CFG, bazelVersion: '8.0.0' }) },
      { ...base(), gitRef: 'master' },
      { ...base(), gitRef: '' },
    ];
    const keys = new Set([snapshotKey(base()), ...variants.map(snapshotKey)]);
    assert.equal(keys.size, variants.length + 1);
  });

  it('cannot be forged by moving text between fields', () => {
    const a = snapshotKey({ ...base(), instance: 'x', gitRef: 'y\nref=z' });
    const b = snapshotKey({ ...base(), instance: 'x\nref=y', gitRef: 'z' });
    assert.notEqual(a, b);
    const c = snapshotKey({ ...base(), platformProperties: { a: 'b=c' } });
    const d = snapshotKey({ ...base(), platformProperties: { 'a=b': 'c' } });
    assert.notEqual(c, d);
  });

  it('runnerConfigHash ignores key order and includes every value', () => {
    assert.equal(runnerConfigHash({ a: 1, b: true }), runnerConfigHash({ b: true, a: 1 }));
    assert.notEqual(runnerConfigHash({ a: 1, b: true }), runnerConfigHash({ a: 1, b: false }));
    assert.notEqual(runnerConfigHash({}), runnerConfigHash({ a: '' }));
  });
});

describe('repoInstancePrefix', () => {
  it('is a prefix of every instance of the repo and of no other repo', () => {
    const p = repoInstancePrefix('https://github.com/acme/widgets.git');
    assert.equal(p, 'github.com/acme/widgets#');
    for (const url of ['https://github.com/acme/widgets', 'https://user:tok@GitHub.com/acme/widgets/', 'git@github.com:acme/widgets']) {
      assert.equal(snapshotInstance(url, 'Build').startsWith(p), true, url);
    }
    assert.equal(snapshotInstance('https://github.com/acme/widgets-2', 'Build').startsWith(p), false);
  });
});

describe('lookupOrder', () => {
  it('branch, then PR base, then default', () => {
    assert.deepEqual(lookupOrder({ branch: 'feat', prBaseBranch: 'release/1.10', defaultBranch: 'main' }), [
      { level: 'branch', ref: 'feat' },
      { level: 'base', ref: 'release/1.10' },
      { level: 'default', ref: 'main' },
    ]);
  });

  it('push to a feature branch: branch then default', () => {
    assert.deepEqual(lookupOrder({ branch: 'feat', defaultBranch: 'main' }), [
      { level: 'branch', ref: 'feat' },
      { level: 'default', ref: 'main' },
    ]);
  });

  it('de-duplicates, keeping the best level', () => {
    assert.deepEqual(lookupOrder({ branch: 'feat', prBaseBranch: 'main', defaultBranch: 'main' }), [
      { level: 'branch', ref: 'feat' },
      { level: 'base', ref: 'main' },
    ]);
    assert.deepEqual(lookupOrder({ branch: 'main', prBaseBranch: null, defaultBranch: 'main' }), [
      { level: 'branch', ref: 'main' },
    ]);
    assert.deepEqual(lookupOrder({ branch: 'main', prBaseBranch: 'main', defaultBranch: 'main' }), [
      { level: 'branch', ref: 'main' },
    ]);
  });

  it('skips empty refs; an empty branch still reads the fallbacks', () => {
    assert.deepEqual(lookupOrder({ branch: '', prBaseBranch: '', defaultBranch: 'main' }), [
      { level: 'default', ref: 'main' },
    ]);
    assert.deepEqual(lookupOrder({ branch: '', defaultBranch: '' }), []);
  });

  it('lookupKeys attaches the key of each ref; writeKeyFor is the branch key only', () => {
    const { gitRef: _ref, ...b } = base();
    const keys = lookupKeys(b, { branch: 'feat', prBaseBranch: 'dev', defaultBranch: 'main' });
    assert.deepEqual(
      keys.map((k) => [k.level, k.ref]),
      [
        ['branch', 'feat'],
        ['base', 'dev'],
        ['default', 'main'],
      ],
    );
    for (const k of keys) assert.equal(k.key, snapshotKey({ ...b, gitRef: k.ref }));
    assert.equal(writeKeyFor(b, 'feat'), keys[0]!.key);
    assert.equal(writeKeyFor(b, ''), null);
  });
});
