import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer as readAll } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BlobTooLargeError,
  DigestMismatchError,
  EMPTY_DIGEST,
  InvalidDigestError,
  LocalDiskStore,
  digestOf,
  type Digest,
} from './index.ts';

let base: string;
before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'hearth-blobstore-'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

let n = 0;
async function openStore(opts: Partial<Parameters<typeof LocalDiskStore.open>[0]> = {}) {
  const rootDir = opts.rootDir ?? path.join(base, `s${n++}`);
  return LocalDiskStore.open({ rootDir, ...opts });
}

const tmpFiles = (store: LocalDiskStore) => readdir(path.join(store.rootDir, 'tmp'));

describe('LocalDiskStore', () => {
  test('put/get round trip, findMissing, ranged stream, stats', async () => {
    const store = await openStore();
    const a = Buffer.from('hello hearth');
    const da = digestOf(a);
    const db = digestOf(Buffer.from('not stored'));
    assert.deepEqual(await store.findMissing([da, db]), [da, db]);
    await store.put(da, a);
    assert.deepEqual(await store.get(da), a);
    assert.deepEqual(await store.findMissing([da, db, db, EMPTY_DIGEST]), [db]);
    assert.equal(await store.get(db), null);
    const s = await store.getStream(da, { offset: 6 });
    assert.ok(s);
    assert.equal((await readAll(s)).toString(), 'hearth');
    // Same hash with a wrong size is not the same blob.
    assert.equal(await store.get({ hash: da.hash, sizeBytes: 3 }), null);
    const st = await store.stats();
    assert.equal(st.blobCount, 1);
    assert.equal(st.totalBytes, a.length);
    assert.equal(st.pendingBytes, 0);
    // Files are sharded by hash prefix.
    assert.deepEqual(await readdir(path.join(store.rootDir, 'cas', da.hash.slice(0, 2))), [da.hash]);
  });

  test('large blob round trip through putStream/getStream with verify=always', async () => {
    const store = await openStore({ verify: 'always' });
    const big = randomBytes(3 * 1024 * 1024 + 17);
    const d = digestOf(big);
    const chunks = [];
    for (let i = 0; i < big.length; i += 100_000) chunks.push(big.subarray(i, i + 100_000));
    await store.putStream(d, Readable.from(chunks));
    const s = await store.getStream(d, { offset: 1_000_001 });
    assert.ok(s);
    assert.ok((await readAll(s)).equals(big.subarray(1_000_001)));
    assert.ok((await store.get(d))?.equals(big));
  });

  test('empty blob is always present and cannot be deleted', async () => {
    const store = await openStore();
    assert.deepEqual(await store.findMissing([EMPTY_DIGEST]), []);
    assert.deepEqual(await store.get(EMPTY_DIGEST), Buffer.alloc(0));
    const s = await store.getStream(EMPTY_DIGEST);
    assert.equal((await readAll(s!)).length, 0);
    await store.put(EMPTY_DIGEST, Buffer.alloc(0));
    assert.equal(await store.delete(EMPTY_DIGEST), false);
    assert.equal((await store.stats()).blobCount, 0);
  });

  test('digest mismatch is rejected and nothing is stored', async () => {
    const store = await openStore();
    const good = Buffer.from('the right bytes');
    const d = digestOf(good);
    await assert.rejects(store.put(d, Buffer.from('the wrong bytes')), DigestMismatchError);
    await assert.rejects(store.putStream(d, Readable.from([Buffer.from('the wrong bytes')])), DigestMismatchError);
    // Too many bytes fails early; too few fails at the end.
    await assert.rejects(store.putStream(d, Readable.from([good, Buffer.from('x')])), DigestMismatchError);
    await assert.rejects(store.putStream(d, Readable.from([good.subarray(0, 4)])), DigestMismatchError);
    assert.deepEqual(await store.findMissing([d]), [d]);
    assert.deepEqual(await tmpFiles(store), []);
    const st = await store.stats();
    assert.equal(st.blobCount, 0);
    assert.equal(st.totalBytes, 0);
    assert.equal(st.pendingBytes, 0);
    await assert.rejects(store.put({ hash: 'ABC', sizeBytes: 1 }, Buffer.from('a')), InvalidDigestError);
    await assert.rejects(store.get({ hash: '../../etc/passwd', sizeBytes: 1 }), InvalidDigestError);
  });

  test('a corrupt or truncated file is a miss and is deleted', async () => {
    const store = await openStore();
    const a = Buffer.from('a'.repeat(1000));
    const b = Buffer.from('b'.repeat(1000));
    const [da, db] = [digestOf(a), digestOf(b)];
    await store.put(da, a);
    await store.put(db, b);
    await writeFile(store.blobPath(da.hash), 'x'.repeat(1000)); // same size, wrong bytes
    await truncate(store.blobPath(db.hash), 10);
    assert.equal(await store.get(da), null);
    assert.equal(await store.getStream(db), null);
    assert.deepEqual(await store.findMissing([da, db]), [da, db]);
    await assert.rejects(readdir(path.join(store.rootDir, 'cas', da.hash.slice(0, 2), da.hash)));
    const st = await store.stats();
    assert.equal(st.corruptions, 2);
    assert.equal(st.totalBytes, 0);
    // It can be written again afterwards.
    await store.put(da, a);
    assert.deepEqual(await store.get(da), a);
  });

  test('a corrupt large blob fails its stream at the end (verify=always) and is removed', async () => {
    const store = await openStore({ verify: 'always', verifyMaxBytes: 1024 });
    const big = randomBytes(64 * 1024);
    const d = digestOf(big);
    await store.put(d, big);
    const bad = Buffer.from(big);
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
    await writeFile(store.blobPath(d.hash), bad);
    const s = await store.getStream(d);
    assert.ok(s);
    await assert.rejects(readAll(s), DigestMismatchError);
    assert.deepEqual(await store.findMissing([d]), [d]);
  });

  test('LRU eviction under the byte budget', async () => {
    const store = await openStore({ maxBytes: 350 });
    const blobs = ['a', 'b', 'c', 'd'].map((c) => Buffer.from(c.repeat(100)));
    const [da, db, dc, dd] = blobs.map(digestOf) as [Digest, Digest, Digest, Digest];
    await store.put(da, blobs[0]!);
    await store.put(db, blobs[1]!);
    await store.put(dc, blobs[2]!);
    assert.equal((await store.stats()).totalBytes, 300);
    // Use a, so b becomes least recently used.
    assert.ok(await store.get(da));
    await store.put(dd, blobs[3]!);
    assert.deepEqual(await store.findMissing([da, db, dc, dd]), [db]);
    // findMissing also counts as a use: touch c, then a new blob evicts a (the oldest now).
    await store.findMissing([dc]);
    const de = digestOf(Buffer.from('e'.repeat(100)));
    await store.put(de, Buffer.from('e'.repeat(100)));
    assert.deepEqual(await store.findMissing([da, dc, dd, de]), [da]);
    const st = await store.stats();
    assert.equal(st.totalBytes, 300);
    assert.equal(st.evictions, 2);
    // A blob bigger than the whole budget is refused.
    const huge = Buffer.alloc(400, 1);
    await assert.rejects(store.put(digestOf(huge), huge), BlobTooLargeError);
  });

  test('concurrent puts of the same blob store it once', async () => {
    const store = await openStore({ maxBytes: 10_000 });
    const data = randomBytes(4000);
    const d = digestOf(data);
    await Promise.all([
      ...Array.from({ length: 5 }, () => store.put(d, data)),
      ...Array.from({ length: 5 }, () => store.putStream(d, Readable.from([data.subarray(0, 1000), data.subarray(1000)]))),
    ]);
    const st = await store.stats();
    assert.equal(st.blobCount, 1);
    assert.equal(st.totalBytes, 4000);
    assert.equal(st.pendingBytes, 0);
    assert.equal(st.evictions, 0);
    assert.ok((await store.get(d))?.equals(data));
    assert.deepEqual(await tmpFiles(store), []);
    // With two of the same 4000-byte blob in flight, the reservation is counted once: a 5000-byte
    // neighbour must survive.
    const other = randomBytes(5000);
    const store2 = await openStore({ maxBytes: 10_000 });
    await store2.put(digestOf(other), other);
    await Promise.all([store2.put(d, data), store2.putStream(d, Readable.from([data]))]);
    assert.deepEqual(await store2.findMissing([digestOf(other), d]), []);
  });

  test('aborting a streaming put leaves nothing behind', async () => {
    const store = await openStore({ maxBytes: 1_000_000 });
    const data = randomBytes(300_000);
    const d = digestOf(data);
    const ac = new AbortController();
    async function* slow() {
      yield data.subarray(0, 100_000);
      await sleep(50);
      yield data.subarray(100_000, 200_000);
      await sleep(10_000, undefined, { ref: false });
      yield data.subarray(200_000);
    }
    const p = store.putStream(d, slow(), ac.signal);
    await sleep(100);
    assert.equal((await store.stats()).pendingBytes, 300_000);
    assert.equal((await tmpFiles(store)).length, 1);
    const t0 = Date.now();
    ac.abort();
    await assert.rejects(p, { name: 'AbortError' });
    assert.ok(Date.now() - t0 < 2000, 'abort is prompt even while the source is waiting');
    await assert.rejects(store.putStream(d, slow(), AbortSignal.abort()), { name: 'AbortError' });
    assert.deepEqual(await store.findMissing([d]), [d]);
    assert.deepEqual(await tmpFiles(store), []);
    assert.equal((await store.stats()).pendingBytes, 0);
  });

  test('restart rebuilds accounting and keeps LRU order; stray temp files are wiped', async () => {
    const rootDir = path.join(base, 'restart');
    const store = await openStore({ rootDir, touchIntervalMs: 0 });
    const blobs = ['a', 'b', 'c'].map((c) => Buffer.from(c.repeat(100)));
    const ds = blobs.map(digestOf);
    for (let i = 0; i < 3; i++) {
      await store.put(ds[i]!, blobs[i]!);
      await sleep(20); // distinct mtimes
    }
    await store.get(ds[0]!); // a is now the most recently used
    await sleep(50);
    await writeFile(path.join(rootDir, 'tmp', 'leftover'), 'partial');
    const reopened = await openStore({ rootDir, maxBytes: 250 }); // must evict one: b (oldest)
    const st = await reopened.stats();
    assert.equal(st.blobCount, 2);
    assert.equal(st.totalBytes, 200);
    assert.deepEqual(await reopened.findMissing(ds), [ds[1]]);
    assert.deepEqual(await tmpFiles(reopened), []);
    assert.equal(await reopened.delete(ds[0]!), true);
    assert.equal(await reopened.delete(ds[0]!), false);
    assert.equal((await reopened.stats()).totalBytes, 100);
  });
});
