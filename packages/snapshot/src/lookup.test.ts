import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalDiskStore } from '@hearth/blobstore';
import { lookupKeys, runnerConfigHash, shouldSave, snapshotInstance, writeKeyFor } from '@hearth/core';
import { recordSnapshot, restoreFirstAvailable } from './lookup.ts';
import { decodeManifest } from './manifest.ts';
import { saveSnapshot } from './snapshot.ts';
import { MemorySnapshotIndex } from './snapshotIndex.ts';

let dir: string;
before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-snapshot-lookup-'));
});
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const instance = snapshotInstance('https://github.com/acme/widgets', 'Test all');
const base = { instance, platformProperties: { os: 'linux' }, runnerConfigHash: runnerConfigHash({ isolation: 'sandbox' }) };

async function tree(name: string, content: string): Promise<string> {
  const d = path.join(dir, name);
  await fsp.mkdir(d, { recursive: true });
  await fsp.writeFile(path.join(d, 'which'), content);
  return d;
}

describe('restoreFirstAvailable', () => {
  it('falls back branch → base → default, skipping missing and broken snapshots, and says why', async () => {
    const store = await LocalDiskStore.open({ rootDir: path.join(dir, 'store') });
    const index = new MemorySnapshotIndex();
    // The default branch (main) and the PR base (release) each saved a snapshot; the PR branch has none.
    for (const ref of ['main', 'release']) {
      const saved = await saveSnapshot(await tree(`src-${ref}`, ref), store);
      await recordSnapshot(index, writeKeyFor(base, ref)!, { instance, ref }, saved);
    }
    // The release snapshot lost a chunk (evicted).
    const release = (await index.get(writeKeyFor(base, 'release')!))!;
    const m = decodeManifest((await store.get(release.manifestDigest))!);
    const f = m.entries.find((e) => e.type === 'file');
    assert.ok(f?.type === 'file', 'manifest has a file');
    await store.delete({ hash: f.chunks[0]!.hash!, sizeBytes: f.chunks[0]!.sizeBytes });

    const candidates = lookupKeys(base, { branch: 'feat', prBaseBranch: 'release', defaultBranch: 'main' });
    const dest = path.join(dir, 'runner1');
    const r = await restoreFirstAvailable({ candidates, index, store, destDir: dest });
    assert.equal(r.matched?.level, 'default');
    assert.equal(r.matched?.ref, 'main');
    assert.equal(await fsp.readFile(path.join(dest, 'which'), 'utf8'), 'main');
    assert.deepEqual(
      r.attempts.map((a) => [a.level, a.outcome]),
      [
        ['branch', 'not_found'],
        ['base', 'unavailable'],
        ['default', 'restored'],
      ],
    );
    assert.match(r.attempts[1]!.reason!, /^chunk_missing: /);
    // The broken snapshot was dropped from the index so later runs don't trip on it.
    assert.equal(await index.get(writeKeyFor(base, 'release')!), null);

    // The run succeeds; under the default policy it saves to its own branch only.
    const decision = shouldSave('first-non-default-ref', {
      trusted: true, status: 'succeeded', branch: 'feat', defaultBranch: 'main', matchedLevel: r.matched!.level,
    });
    assert.equal(decision.save, true);
    await fsp.writeFile(path.join(dest, 'which'), 'feat');
    const saved = await saveSnapshot(dest, store);
    await recordSnapshot(index, writeKeyFor(base, 'feat')!, { instance, ref: 'feat' }, saved);
    const again = await restoreFirstAvailable({ candidates, index, store, destDir: path.join(dir, 'runner2') });
    assert.equal(again.matched?.level, 'branch');
    assert.equal(await fsp.readFile(path.join(dir, 'runner2', 'which'), 'utf8'), 'feat');
  });

  it('skips stale fallbacks (never the branch itself) and returns null when nothing fits', async () => {
    const store = await LocalDiskStore.open({ rootDir: path.join(dir, 'store2') });
    const index = new MemorySnapshotIndex();
    for (const ref of ['feat', 'main']) {
      const saved = await saveSnapshot(await tree(`src2-${ref}`, ref), store);
      const rec = await recordSnapshot(index, writeKeyFor(base, ref)!, { instance, ref }, saved);
      await index.put(writeKeyFor(base, ref)!, { ...rec, createdAt: '2024-01-01T00:00:00.000Z' });
    }
    const now = () => Date.parse('2024-01-03T00:00:00.000Z');
    const onlyDefault = lookupKeys(base, { branch: 'other', defaultBranch: 'main' });
    const r = await restoreFirstAvailable({
      candidates: onlyDefault, index, store, destDir: path.join(dir, 'r3'), maxFallbackAgeMs: 86_400_000, now,
    });
    assert.equal(r.matched, null);
    assert.deepEqual(r.attempts.map((a) => a.outcome), ['not_found', 'stale']);
    assert.equal(await fsp.stat(path.join(dir, 'r3')).catch(() => null), null);
    const own = await restoreFirstAvailable({
      candidates: lookupKeys(base, { branch: 'feat', defaultBranch: 'main' }), index, store,
      destDir: path.join(dir, 'r4'), maxFallbackAgeMs: 86_400_000, now,
    });
    assert.equal(own.matched?.level, 'branch');
  });
});
