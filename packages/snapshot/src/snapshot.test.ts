import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type BlobStore, type Digest, LocalDiskStore, digestKey } from '@hearth/blobstore';
import { decodeManifest, uniqueChunkDigests } from './manifest.ts';
import { SnapshotUnavailableError, restoreSnapshot, saveSnapshot } from './snapshot.ts';

// ---------------------------------------------------------------------------------------------
// Helpers

function prng(seed: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n + 4);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    b.writeUInt32LE(s, i);
  }
  return b.subarray(0, n);
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Node {
  type: string;
  mode: number;
  mtimeNs: bigint;
  size?: number;
  sha?: string;
  target?: string;
}

/** Every entry under `root` (root itself as ""), with what a snapshot must preserve. */
async function listing(root: string): Promise<Map<string, Node>> {
  const out = new Map<string, Node>();
  const walk = async (abs: string, rel: string) => {
    const st = await fsp.lstat(abs, { bigint: true });
    const mode = Number(st.mode) & 0o777;
    if (st.isDirectory()) {
      out.set(rel, { type: 'dir', mode, mtimeNs: st.mtimeNs });
      for (const name of (await fsp.readdir(abs)).sort()) await walk(path.join(abs, name), rel ? `${rel}/${name}` : name);
    } else if (st.isSymbolicLink()) {
      out.set(rel, { type: 'symlink', mode: 0, mtimeNs: st.mtimeNs, target: await fsp.readlink(abs) });
    } else if (st.isFile()) {
      out.set(rel, { type: 'file', mode, mtimeNs: st.mtimeNs, size: Number(st.size), sha: sha(await fsp.readFile(abs)) });
    } else {
      out.set(rel, { type: 'other', mode, mtimeNs: st.mtimeNs });
    }
  };
  await walk(root, '');
  return out;
}

/** Same entries, contents, modes, targets; mtimes to the nearest microsecond (libuv utimes resolution). */
function assertSameTree(got: Map<string, Node>, want: Map<string, Node>): void {
  assert.deepEqual([...got.keys()], [...want.keys()]);
  for (const [p, w] of want) {
    const g = got.get(p)!;
    const { mtimeNs: gm, ...gr } = g;
    const { mtimeNs: wm, ...wr } = w;
    assert.deepEqual(gr, wr, p);
    const diff = gm > wm ? gm - wm : wm - gm;
    assert.ok(diff <= 500n, `${p}: mtime ${gm} vs ${wm}`);
  }
}

async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(
    () => true,
    () => false,
  );
}

let tmpRoot: string;
before(async () => {
  tmpRoot = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-snapshot-test-'));
});
after(async () => {
  await fsp.rm(tmpRoot, { recursive: true, force: true });
});

let seq = 0;
async function freshDir(name: string): Promise<string> {
  const d = path.join(tmpRoot, `${name}-${seq++}`);
  await fsp.mkdir(d, { recursive: true });
  return d;
}

async function openStore(name: string, opts: Partial<Parameters<typeof LocalDiskStore.open>[0]> = {}): Promise<LocalDiskStore> {
  return LocalDiskStore.open({ rootDir: await freshDir(name), ...opts });
}

const T = (sec: number) => sec; // readability: utimes takes seconds

/** A tree with everything a Bazel output base has: nesting, exec bits, symlinks, empty/large/duplicate files. */
async function buildSampleTree(root: string): Promise<void> {
  await fsp.mkdir(path.join(root, 'a/b/c'), { recursive: true });
  await fsp.mkdir(path.join(root, 'empty-dir'));
  await fsp.mkdir(path.join(root, 'ro'));
  await fsp.writeFile(path.join(root, 'a/b/c/deep.txt'), 'deep\n');
  await fsp.writeFile(path.join(root, 'a/tool.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  await fsp.chmod(path.join(root, 'a/tool.sh'), 0o755);
  await fsp.writeFile(path.join(root, 'a/private'), 'secret-ish', { mode: 0o600 });
  await fsp.chmod(path.join(root, 'a/private'), 0o600);
  await fsp.writeFile(path.join(root, 'empty'), '');
  const big = prng(5, 5 * 1024 * 1024);
  await fsp.writeFile(path.join(root, 'big.bin'), big);
  await fsp.writeFile(path.join(root, 'big-copy.bin'), big);
  await fsp.writeFile(path.join(root, 'a/b/big-copy2.bin'), big);
  // Zero runs in the middle and at the end: restored as holes.
  await fsp.writeFile(path.join(root, 'sparse.img'), Buffer.concat([prng(6, 100_000), Buffer.alloc(3 * 1024 * 1024), prng(7, 5), Buffer.alloc(2 * 1024 * 1024)]));
  await fsp.symlink('/nonexistent/absolute/target', path.join(root, 'abs-link'));
  await fsp.symlink(path.join(root, 'big.bin'), path.join(root, 'abs-link-in-tree'));
  await fsp.symlink('b/c/deep.txt', path.join(root, 'a/rel-link'));
  await fsp.symlink('../a', path.join(root, 'empty-dir/dir-link'));
  await fsp.writeFile(path.join(root, 'ro/readonly.txt'), 'ro', { mode: 0o444 });
  await fsp.chmod(path.join(root, 'ro/readonly.txt'), 0o444);
  await fsp.writeFile(path.join(root, 'unicodé ☃.txt'), 'snow');
  // Distinct mtimes with sub-millisecond parts, set bottom-up so later writes don't disturb them.
  let t = 1_600_000_000.123456;
  for (const p of ['a/b/c/deep.txt', 'a/tool.sh', 'a/private', 'empty', 'big.bin', 'sparse.img', 'ro/readonly.txt', 'unicodé ☃.txt']) {
    await fsp.utimes(path.join(root, p), T(t), T(t));
    t += 1000.5;
  }
  for (const p of ['abs-link', 'a/rel-link', 'empty-dir/dir-link']) {
    await fsp.lutimes(path.join(root, p), T(t), T(t));
    t += 7.25;
  }
  await fsp.chmod(path.join(root, 'ro'), 0o555);
  for (const p of ['a/b/c', 'a/b', 'a', 'empty-dir', 'ro', '']) {
    await fsp.utimes(path.join(root, p), T(t), T(t));
    t += 3.000001;
  }
}

// ---------------------------------------------------------------------------------------------

describe('saveSnapshot / restoreSnapshot', () => {
  it('round-trips a tree: nesting, exec bits, symlinks, empty, large, duplicate and sparse files, mtimes', async () => {
    const src = await freshDir('src');
    await buildSampleTree(src);
    // Things a snapshot skips: a fifo and a socket.
    execFileSync('mkfifo', [path.join(src, 'a/fifo')]);
    const sock = path.join(src, 'a/sock');
    const server = net.createServer().listen(sock);
    await new Promise((r) => server.once('listening', r));
    try {
      await fsp.utimes(path.join(src, 'a'), T(1_650_000_000.5), T(1_650_000_000.5));
      const want = await listing(src);
      want.delete('a/fifo');
      want.delete('a/sock');

      const store = await openStore('store');
      const { manifestDigest, stats } = await saveSnapshot(src, store);
      assert.equal(stats.skipped, 2);
      assert.equal(stats.files, 10);
      assert.equal(stats.symlinks, 4);
      assert.equal(stats.dirs, 5);
      assert.equal(stats.bytes, 3 * 5 * 1024 * 1024 + 100_000 + 3 * 1024 * 1024 + 5 + 2 * 1024 * 1024 + 5 + 18 + 10 + 2 + 4);
      assert.equal(stats.bytes, stats.bytesUploaded + stats.bytesReused + stats.zeroBytes);
      // The three copies of big.bin are stored once; all-zero chunks are not stored at all (a zero run
      // that shares a chunk with data is stored as part of that chunk).
      assert.ok(stats.zeroBytes >= 3 * 1024 * 1024, `zeroBytes ${stats.zeroBytes}`);
      assert.ok(stats.bytesReused >= 2 * 5 * 1024 * 1024, `bytesReused ${stats.bytesReused}`);
      assert.ok(stats.bytesUploaded <= 7 * 1024 * 1024 + 100, `bytesUploaded ${stats.bytesUploaded}`);

      const manifest = decodeManifest((await store.get(manifestDigest))!);
      const empty = manifest.entries.find((e) => e.path === 'empty');
      assert.deepEqual(empty?.type === 'file' && empty.chunks, []);
      const link = manifest.entries.find((e) => e.path === 'abs-link');
      assert.equal(link?.type === 'symlink' && link.target, '/nonexistent/absolute/target');

      const dest = path.join(await freshDir('dest'), 'restored');
      const rs = await restoreSnapshot(manifestDigest, store, dest);
      assert.equal(rs.files, 10);
      assert.equal(rs.bytes, stats.bytes);
      assert.equal(rs.zeroBytes, stats.zeroBytes);
      const uniqueBytes = uniqueChunkDigests(manifest).reduce((n, d) => n + d.sizeBytes, 0);
      assert.equal(uniqueBytes, stats.bytesUploaded);
      assert.equal(rs.bytesFetched, stats.bytes - stats.zeroBytes); // every stored chunk reference, verified
      assertSameTree(await listing(dest), want);
      // Absolute symlinks are kept verbatim, even when they point into the original tree.
      assert.equal(await fsp.readlink(path.join(dest, 'abs-link-in-tree')), path.join(src, 'big.bin'));
      // Zero runs are holes.
      const sparse = await fsp.stat(path.join(dest, 'sparse.img'));
      assert.ok(sparse.blocks * 512 < sparse.size, `sparse.img uses ${sparse.blocks * 512} bytes on disk for ${sparse.size}`);
      // Nothing left next to the destination.
      assert.deepEqual(await fsp.readdir(path.dirname(dest)), ['restored']);
    } finally {
      server.close();
    }
  });

  it('saving the same tree twice gives the same manifest and uploads nothing', async () => {
    const src = await freshDir('src');
    await buildSampleTree(src);
    const store = await openStore('store');
    const first = await saveSnapshot(src, store);
    const second = await saveSnapshot(src, store);
    assert.deepEqual(second.manifestDigest, first.manifestDigest);
    assert.equal(second.stats.bytesUploaded, 0);
    assert.equal(second.stats.chunksUploaded, 0);
    assert.equal(second.stats.bytesReused + second.stats.zeroBytes, second.stats.bytes);
  });

  it('exclude leaves out paths and whole subtrees', async () => {
    const src = await freshDir('src');
    await buildSampleTree(src);
    const store = await openStore('store');
    const { manifestDigest, stats } = await saveSnapshot(src, store, {
      exclude: (p) => p === 'a/b' || p.endsWith('.bin'),
    });
    assert.equal(stats.excluded, 3);
    const paths = decodeManifest((await store.get(manifestDigest))!).entries.map((e) => e.path);
    assert.ok(paths.includes('a/tool.sh'), 'a/tool.sh kept');
    assert.deepEqual(paths.filter((p) => p.startsWith('a/b') || p.endsWith('.bin')), []);
  });

  it('restores into an existing empty directory, refuses a non-empty one unless replace', async () => {
    const src = await freshDir('src');
    await fsp.writeFile(path.join(src, 'f'), 'new');
    const store = await openStore('store');
    const { manifestDigest } = await saveSnapshot(src, store);
    const emptyDest = await freshDir('dest');
    await restoreSnapshot(manifestDigest, store, emptyDest);
    assert.equal(await fsp.readFile(path.join(emptyDest, 'f'), 'utf8'), 'new');

    const full = await freshDir('dest');
    await fsp.writeFile(path.join(full, 'old'), 'old');
    await assert.rejects(restoreSnapshot(manifestDigest, store, full), /not empty/);
    assert.deepEqual(await fsp.readdir(full), ['old']);
    await restoreSnapshot(manifestDigest, store, full, { replace: true });
    assert.deepEqual(await fsp.readdir(full), ['f']);
    assert.deepEqual((await fsp.readdir(path.dirname(full))).filter((n) => n.startsWith('.')), []);
  });
});

describe('restore failures leave the destination untouched', () => {
  async function setup(storeOpts: Partial<Parameters<typeof LocalDiskStore.open>[0]> = {}) {
    const src = await freshDir('src');
    await buildSampleTree(src);
    const store = await openStore('store', storeOpts);
    const { manifestDigest } = await saveSnapshot(src, store);
    const manifest = decodeManifest((await store.get(manifestDigest))!);
    const bigEntry = manifest.entries.find((e) => e.path === 'big.bin');
    assert.ok(bigEntry?.type === 'file', 'big.bin is in the manifest');
    const victim = bigEntry.chunks[2]!;
    const parent = await freshDir('dest');
    return { store, manifestDigest, victim: { hash: victim.hash!, sizeBytes: victim.sizeBytes }, parent };
  }

  async function corrupt(store: LocalDiskStore, d: Digest): Promise<void> {
    const file = store.blobPath(d.hash);
    const data = await fsp.readFile(file);
    data[Math.floor(data.length / 2)]! ^= 0xff;
    await fsp.writeFile(file, data);
  }

  async function assertRejectsUnavailable(p: Promise<unknown>, reason: RegExp): Promise<SnapshotUnavailableError> {
    let caught: unknown;
    await p.catch((err) => (caught = err));
    assert.ok(caught instanceof SnapshotUnavailableError, `expected SnapshotUnavailableError, got ${String(caught)}`);
    assert.match(caught.reason, reason);
    return caught;
  }

  it('a corrupt chunk on disk (store verifies reads): throws, dest absent, no temp dirs left', async () => {
    const { store, manifestDigest, victim, parent } = await setup();
    await corrupt(store, victim);
    const dest = path.join(parent, 'runner');
    const err = await assertRejectsUnavailable(restoreSnapshot(manifestDigest, store, dest), /^chunk_(missing|corrupt)$/);
    assert.match(err.message, new RegExp(victim.hash));
    assert.deepEqual(await fsp.readdir(parent), []);
  });

  it('a corrupt chunk the store does not notice (verify: never): our own check throws chunk_corrupt', async () => {
    const { store, manifestDigest, victim, parent } = await setup({ verify: 'never' });
    await corrupt(store, victim);
    const dest = path.join(parent, 'runner');
    await fsp.mkdir(dest);
    await fsp.writeFile(path.join(dest, 'previous-state'), 'keep me');
    await assertRejectsUnavailable(restoreSnapshot(manifestDigest, store, dest, { replace: true }), /^chunk_corrupt$/);
    assert.deepEqual(await fsp.readdir(parent), ['runner']);
    assert.deepEqual(await fsp.readdir(dest), ['previous-state']);
    assert.equal(await fsp.readFile(path.join(dest, 'previous-state'), 'utf8'), 'keep me');
  });

  it('a missing (evicted) chunk: chunk_missing before anything is written', async () => {
    const { store, manifestDigest, victim, parent } = await setup();
    assert.equal(await store.delete(victim), true);
    await assertRejectsUnavailable(restoreSnapshot(manifestDigest, store, path.join(parent, 'r')), /^chunk_missing$/);
    assert.deepEqual(await fsp.readdir(parent), []);
  });

  it('a missing, corrupt or invalid manifest', async () => {
    const { store, manifestDigest, parent } = await setup({ verify: 'never' });
    const dest = path.join(parent, 'r');
    await assertRejectsUnavailable(restoreSnapshot({ hash: 'c'.repeat(64), sizeBytes: 10 }, store, dest), /^manifest_missing$/);
    const junk = Buffer.from('{"format":"hearth-snapshot-manifest","version":99}');
    const junkDigest = { hash: sha(junk), sizeBytes: junk.length };
    await store.put(junkDigest, junk);
    await assertRejectsUnavailable(restoreSnapshot(junkDigest, store, dest), /^manifest_invalid$/);
    await corrupt(store, manifestDigest);
    await assertRejectsUnavailable(restoreSnapshot(manifestDigest, store, dest), /^manifest_corrupt$/);
    assert.deepEqual(await fsp.readdir(parent), []);
  });

  it('a failing store is reported as store_error', async () => {
    const { store, manifestDigest, parent } = await setup();
    const flaky: BlobStore = Object.create(store, {
      get: { value: async (d: Digest) => (d.hash === manifestDigest.hash ? store.get(d) : Promise.reject(new Error('connection reset'))) },
    });
    const err = await assertRejectsUnavailable(restoreSnapshot(manifestDigest, flaky, path.join(parent, 'r')), /^store_error$/);
    assert.match(err.message, /connection reset/);
    assert.deepEqual(await fsp.readdir(parent), []);
  });

  it('an aborted restore throws the abort reason and leaves nothing behind', async () => {
    const { store, manifestDigest, parent } = await setup();
    const ac = new AbortController();
    let gets = 0;
    const slow: BlobStore = Object.create(store, {
      get: {
        value: async (d: Digest, signal?: AbortSignal) => {
          if (++gets === 5) ac.abort(new Error('user cancelled'));
          return store.get(d, signal);
        },
      },
    });
    await assert.rejects(restoreSnapshot(manifestDigest, slow, path.join(parent, 'r'), { signal: ac.signal }), /user cancelled/);
    assert.deepEqual(await fsp.readdir(parent), []);
  });
});

describe('incremental saves', () => {
  it('after a one-file change in a ~50 MiB tree, re-saving uploads < 5% of the bytes', async () => {
    const src = await freshDir('src');
    // ~50 MiB: 400 files of mixed sizes (1 KiB … 1 MiB) in 20 directories, plus three 5 MiB archives.
    const sizes = prng(99, 4 * 400);
    let total = 0;
    for (let i = 0; i < 400; i++) {
      const r = sizes.readUInt32LE(i * 4);
      const size = i % 10 === 0 ? 256 * 1024 + (r % (768 * 1024)) : 1024 + (r % (48 * 1024));
      const dir = path.join(src, `pkg${i % 20}`, i % 3 === 0 ? 'sub' : '');
      await fsp.mkdir(dir, { recursive: true });
      await fsp.writeFile(path.join(dir, `f${i}.o`), prng(1000 + i, size));
      total += size;
    }
    for (let i = 0; i < 3; i++) {
      await fsp.writeFile(path.join(src, `lib${i}.a`), prng(5000 + i, 5 * 1024 * 1024));
      total += 5 * 1024 * 1024;
    }
    assert.ok(total > 45 * 1024 * 1024 && total < 60 * 1024 * 1024, `tree is ${total} bytes`);

    const store = await openStore('store');
    const first = await saveSnapshot(src, store);
    assert.equal(first.stats.bytes, total);
    assert.equal(first.stats.bytesUploaded, total);

    // One file changes: a few bytes overwritten in the middle of a 5 MiB archive, and it grows a little.
    const changed = path.join(src, 'lib1.a');
    const data = await fsp.readFile(changed);
    data.write('changed!', 2_500_000);
    await fsp.writeFile(changed, Buffer.concat([data, Buffer.from('appended symbol table')]));

    const second = await saveSnapshot(src, store);
    const ratio = second.stats.bytesUploaded / second.stats.bytes;
    console.log(
      `# one-file change: uploaded ${second.stats.bytesUploaded} of ${second.stats.bytes} bytes ` +
        `(${(ratio * 100).toFixed(2)}%, ${second.stats.chunksUploaded} of ${second.stats.chunks} chunks); ` +
        `first save ${(total / 1e6 / (first.stats.durationMs / 1000)).toFixed(0)} MB/s, ` +
        `re-save ${(total / 1e6 / (second.stats.durationMs / 1000)).toFixed(0)} MB/s`,
    );
    assert.ok(ratio < 0.05, `uploaded ${(ratio * 100).toFixed(2)}% of the bytes`);
    assert.ok(second.stats.chunksUploaded <= 3, `${second.stats.chunksUploaded} chunks uploaded`);
    assert.notDeepEqual(second.manifestDigest, first.manifestDigest);

    const dest = path.join(await freshDir('dest'), 'r');
    const t0 = performance.now();
    await restoreSnapshot(second.manifestDigest, store, dest);
    const ms = performance.now() - t0;
    console.log(`# restore of ${second.stats.bytes} bytes: ${(second.stats.bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`);
    assertSameTree(await listing(dest), await listing(src));
  });

  it('an abort signal stops a save and no manifest is stored', async () => {
    const src = await freshDir('src');
    // Files below the minimum chunk size: one chunk each, whose digest is the file's.
    for (let i = 0; i < 40; i++) await fsp.writeFile(path.join(src, `f${i}`), prng(i + 1, 60_000));
    const store = await openStore('store');
    const ac = new AbortController();
    const puts: string[] = [];
    const watched: BlobStore = Object.create(store, {
      put: {
        value: async (d: Digest, data: Buffer, signal?: AbortSignal) => {
          puts.push(digestKey(d));
          if (puts.length === 3) ac.abort(new Error('run cancelled'));
          return store.put(d, data, signal);
        },
      },
    });
    await assert.rejects(saveSnapshot(src, watched, { signal: ac.signal, batchMaxChunks: 4 }), /run cancelled/);
    const stats = await store.stats();
    assert.ok(stats.blobCount < 40, `stopped early: ${stats.blobCount} blobs stored`);
    // Every stored blob is a chunk of some file: none is a manifest.
    const chunkHashes = new Set<string>();
    for (let i = 0; i < 40; i++) chunkHashes.add(sha(prng(i + 1, 60_000)));
    for (const k of puts) assert.ok(chunkHashes.has(k.split('/')[0]!), `unexpected blob ${k}`);
    // An already-aborted signal does nothing at all.
    await assert.rejects(saveSnapshot(src, store, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  });

  it('a file that changes while it is being saved fails the save', async () => {
    const src = await freshDir('src');
    await fsp.writeFile(path.join(src, 'growing.log'), prng(3, 3 * 1024 * 1024));
    const store = await openStore('store');
    const writer: BlobStore = Object.create(store, {
      findMissing: {
        value: async (ds: Digest[], signal?: AbortSignal) => {
          await fsp.appendFile(path.join(src, 'growing.log'), 'more');
          return store.findMissing(ds, signal);
        },
      },
    });
    await assert.rejects(saveSnapshot(src, writer, { batchMaxChunks: 1 }), { name: 'SnapshotSaveError', code: 'file_changed' });
  });
});
