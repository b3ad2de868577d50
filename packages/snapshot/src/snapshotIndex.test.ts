import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoInstancePrefix, snapshotInstance } from '@hearth/core';
import { JsonFileSnapshotIndex, MemorySnapshotIndex, type SnapshotIndex, type SnapshotRecord } from './snapshotIndex.ts';

let dir: string;
before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-snapshot-index-'));
});
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const rec = (n: number, instance: string, ref = 'main'): SnapshotRecord => ({
  manifestDigest: { hash: n.toString(16).padStart(64, '0'), sizeBytes: 100 + n },
  createdAt: new Date(1_700_000_000_000 + n * 1000).toISOString(),
  sizeBytes: 1000 * n,
  instance,
  ref,
});

const WIDGETS_CI = snapshotInstance('https://github.com/acme/widgets', 'CI');
const WIDGETS_REMOTE = snapshotInstance('git@github.com:acme/widgets.git', 'remote');
const WIDGETS2_CI = snapshotInstance('https://github.com/acme/widgets-2', 'CI');

async function exercise(index: SnapshotIndex): Promise<void> {
  assert.equal(await index.get('k1'), null);
  await index.put('k1', rec(1, WIDGETS_CI));
  await index.put('k2', rec(2, WIDGETS_REMOTE, 'feat'));
  await index.put('k3', rec(3, WIDGETS2_CI));
  assert.deepEqual(await index.get('k1'), rec(1, WIDGETS_CI));
  // Replacing a key keeps only the newest record.
  await index.put('k1', rec(4, WIDGETS_CI));
  assert.deepEqual(await index.get('k1'), rec(4, WIDGETS_CI));
  // Returned records are copies.
  (await index.get('k1'))!.manifestDigest.sizeBytes = 0;
  assert.equal((await index.get('k1'))!.manifestDigest.sizeBytes, 104);
  // Compare-and-delete: only if the key still points at that manifest.
  assert.equal(await index.delete('k1', rec(1, WIDGETS_CI).manifestDigest), false);
  assert.ok(await index.get('k1'), 'k1 kept');
  assert.deepEqual((await index.list()).map((r) => r.key), ['k1', 'k2', 'k3']);
  // Invalidate one repository: both its instances go, the look-alike repo stays.
  assert.equal(await index.invalidatePrefix(repoInstancePrefix('https://github.com/acme/widgets.git')), 2);
  assert.deepEqual((await index.list()).map((r) => r.key), ['k3']);
  assert.equal(await index.delete('k3'), true);
  assert.equal(await index.delete('k3'), false);
  await assert.rejects(index.put('bad', { ...rec(5, 'x'), manifestDigest: { hash: 'nope', sizeBytes: 1 } }), TypeError);
}

describe('SnapshotIndex', () => {
  it('in memory', async () => {
    await exercise(new MemorySnapshotIndex());
  });

  it('JSON file: same behaviour, persisted atomically', async () => {
    const file = path.join(dir, 'sub/index.json');
    await exercise(await JsonFileSnapshotIndex.open(file));
    const index = await JsonFileSnapshotIndex.open(file);
    assert.deepEqual(await index.list(), []);
    // Concurrent writes all land, and the file on disk reflects the last state.
    await Promise.all([1, 2, 3, 4, 5].map((n) => index.put(`key${n}`, rec(n, WIDGETS_CI, `b${n}`))));
    const reopened = await JsonFileSnapshotIndex.open(file);
    assert.deepEqual(await reopened.list(), await index.list());
    assert.equal((await reopened.list()).length, 5);
    assert.deepEqual(await reopened.get('key3'), rec(3, WIDGETS_CI, 'b3'));
    // No temp files left behind.
    assert.deepEqual(await fsp.readdir(path.dirname(file)), ['index.json']);
    const doc = JSON.parse(await fsp.readFile(file, 'utf8'));
    assert.equal(doc.version, 1);
  });

  it('JSON file: refuses a file that is not an index', async () => {
    const file = path.join(dir, 'other.json');
    await fsp.writeFile(file, '{"hello": 1}');
    await assert.rejects(JsonFileSnapshotIndex.open(file), /not a hearth snapshot index/);
  });
});
