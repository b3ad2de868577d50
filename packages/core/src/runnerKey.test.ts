import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashProperties, normalizeRepoUrl, runnerKey, type RunnerKeyInput } from './runnerKey.ts';

describe('normalizeRepoUrl', () => {
  it('maps spellings of one https repository to one URL', () => {
    const want = 'https://github.com/acme/widgets';
    for (const u of [
      'https://github.com/acme/widgets',
      'https://github.com/acme/widgets.git',
      'https://github.com/acme/widgets/',
      'https://github.com/acme/widgets.git/',
      'https://github.com/acme/widgets//',
      '  https://github.com/acme/widgets  ',
      'https://user:s3cret@github.com/acme/widgets.git',
      'https://x-access-token:ghp_abc@github.com/acme/widgets',
      'https://GitHub.COM/acme/widgets',
      'HTTPS://github.com/acme/widgets',
      'https://github.com:443/acme/widgets',
    ]) {
      assert.equal(normalizeRepoUrl(u), want, u);
    }
  });

  it('never keeps credentials', () => {
    const n = normalizeRepoUrl('https://user:p%40ss@example.com/a/b.git');
    assert.equal(n, 'https://example.com/a/b');
    assert.doesNotMatch(n, /user|p%40ss/);
  });

  it('treats scp-style ssh like ssh://, with or without a user and .git', () => {
    const want = normalizeRepoUrl('ssh://git@github.com/acme/widgets');
    assert.equal(want, 'ssh://github.com/acme/widgets');
    assert.equal(normalizeRepoUrl('git@github.com:acme/widgets.git'), want);
    assert.equal(normalizeRepoUrl('git@github.com:acme/widgets'), want);
    assert.equal(normalizeRepoUrl('git@GitHub.com:acme/widgets/'), want);
    assert.equal(normalizeRepoUrl('github.com:acme/widgets'), want);
    assert.equal(normalizeRepoUrl('ssh://git@github.com/acme/widgets.git'), want);
  });

  it('lower-cases scheme and host but keeps the path case', () => {
    assert.equal(normalizeRepoUrl('HTTPS://Git.Example.COM/Acme/Widgets.git'), 'https://git.example.com/Acme/Widgets');
    assert.equal(normalizeRepoUrl('git@Git.Example.com:Acme/Widgets'), 'ssh://git.example.com/Acme/Widgets');
    assert.notEqual(normalizeRepoUrl('https://github.com/Acme/Widgets'), normalizeRepoUrl('https://github.com/acme/widgets'));
  });

  it('drops only default ports', () => {
    assert.equal(normalizeRepoUrl('http://h:80/a'), 'http://h/a');
    assert.equal(normalizeRepoUrl('https://h:8443/a'), 'https://h:8443/a');
    assert.equal(normalizeRepoUrl('http://h:443/a'), 'http://h:443/a');
  });

  it('handles file URLs and plain paths', () => {
    assert.equal(normalizeRepoUrl('file:///tmp/repo/'), 'file:///tmp/repo');
    assert.equal(normalizeRepoUrl('file:///tmp/repo.git'), 'file:///tmp/repo');
    assert.equal(normalizeRepoUrl('/srv/git/repo.git/'), '/srv/git/repo');
  });

  it('keeps different repositories apart', () => {
    const urls = [
      'https://github.com/acme/widgets',
      'https://github.com/acme/widgets2',
      'https://github.com/acme/gadgets',
      'https://gitlab.com/acme/widgets',
      'https://github.com:8443/acme/widgets',
      'http://github.com/acme/widgets',
    ];
    assert.equal(new Set(urls.map(normalizeRepoUrl)).size, urls.length);
  });
});

describe('hashProperties', () => {
  it('ignores key order but not keys, values or how they split', () => {
    assert.equal(hashProperties({ a: '1', b: '2' }), hashProperties({ b: '2', a: '1' }));
    assert.notEqual(hashProperties({ a: '1' }), hashProperties({ a: '2' }));
    assert.notEqual(hashProperties({ a: '1' }), hashProperties({ b: '1' }));
    assert.notEqual(hashProperties({}), hashProperties({ a: '' }));
    // Length-prefixed: moving bytes between key and value changes the hash.
    assert.notEqual(hashProperties({ 'a=b': 'c' }), hashProperties({ a: 'b=c' }));
    assert.notEqual(hashProperties({ a: '1\nb=2' }), hashProperties({ a: '1', b: '2' }));
  });
});

describe('runnerKey', () => {
  const base: RunnerKeyInput = {
    repoUrl: 'https://github.com/acme/widgets.git',
    instance: '',
    platformProperties: { 'container-image': 'none', salt: 'a' },
    os: 'linux',
    arch: 'amd64',
  };

  it('golden values: changing key derivation is a deliberate, visible change (all warm runners go cold)', () => {
    assert.equal(runnerKey({ repoUrl: 'https://github.com/acme/widgets.git', platformProperties: {}, os: 'linux', arch: 'amd64' }), '7d8c162fa6bcb6b4aaf61c8887d7286f');
    assert.equal(
      runnerKey({
        repoUrl: 'git@github.com:acme/widgets',
        instance: 'Test all',
        platformProperties: { salt: 'x', 'container-image': 'none' },
        os: 'darwin',
        arch: 'arm64',
      }),
      '7ea40bed2d5084f4e201b235d4a5a127',
    );
  });

  it('is 32 lower-case hex characters', () => {
    assert.match(runnerKey(base), /^[0-9a-f]{32}$/);
  });

  it('an absent instance is the empty instance', () => {
    const { instance: _, ...rest } = base;
    assert.equal(runnerKey(rest), runnerKey(base));
  });

  it('equal for spellings of the same repository', () => {
    for (const repoUrl of ['https://github.com/acme/widgets', 'https://tok@github.com/acme/widgets/', 'https://GITHUB.com/acme/widgets.git']) {
      assert.equal(runnerKey({ ...base, repoUrl }), runnerKey(base), repoUrl);
    }
  });

  it('reordering platform properties does not change the key', () => {
    assert.equal(runnerKey({ ...base, platformProperties: { salt: 'a', 'container-image': 'none' } }), runnerKey(base));
  });

  it('every input changes the key', () => {
    const k = runnerKey(base);
    const variants: Array<[string, RunnerKeyInput]> = [
      ['repo', { ...base, repoUrl: 'https://github.com/acme/gadgets' }],
      ['repo path case', { ...base, repoUrl: 'https://github.com/Acme/widgets' }],
      ['instance', { ...base, instance: 'Test all' }],
      ['salt', { ...base, platformProperties: { ...base.platformProperties, salt: 'b' } }],
      ['salt removed', { ...base, platformProperties: { 'container-image': 'none' } }],
      ['other property value', { ...base, platformProperties: { ...base.platformProperties, 'container-image': 'docker://x' } }],
      ['added property', { ...base, platformProperties: { ...base.platformProperties, 'runner-recycling-key': 'r1' } }],
      ['empty-valued property', { ...base, platformProperties: { ...base.platformProperties, extra: '' } }],
      ['os', { ...base, os: 'darwin' }],
      ['arch', { ...base, arch: 'arm64' }],
    ];
    const seen = new Map<string, string>([[k, 'base']]);
    for (const [what, input] of variants) {
      const v = runnerKey(input);
      assert.notEqual(v, k, `changing ${what} must change the key`);
      assert.ok(!seen.has(v), `${what} collides with ${seen.get(v)}`);
      seen.set(v, what);
    }
  });
});
