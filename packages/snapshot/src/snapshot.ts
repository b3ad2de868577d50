/**
 * Save and restore a directory tree as a content-addressed snapshot in a BlobStore.
 *
 * Save: walk the tree (lstat, symlinks are not followed; sockets, fifos and devices are skipped), split
 * each regular file with FastCDC, ask the store which chunks it lacks (`findMissing`, in batches), upload
 * only those, then store the manifest. Re-saving a tree that changed a little uploads little.
 *
 * Restore: fetch and verify the manifest, check that every chunk is present, rebuild the tree in a temp
 * directory next to the destination (verifying every chunk's SHA-256 ourselves, whatever the backend
 * does), set modes and mtimes, then rename it into place. Any missing or corrupt manifest or chunk (or a
 * failing store) throws `SnapshotUnavailableError` — the caller falls back to the next key — and leaves
 * the destination exactly as it was.
 */
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { constants as fsc, promises as fsp } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import {
  type BlobStore,
  type Digest,
  DigestMismatchError,
  digestKey,
  digestOf,
  verifyBuffer,
} from '@hearth/blobstore';
import { type FastCdcOptions, chunkStream, fastCdcParams } from './fastcdc.ts';
import {
  type ChunkRef,
  type DirEntry,
  type FileEntry,
  type Manifest,
  type ManifestEntry,
  ManifestError,
  decodeManifest,
  encodeManifest,
  manifestStats,
  uniqueChunkDigests,
} from './manifest.ts';

// ---------------------------------------------------------------------------------------------
// Errors

export type SnapshotUnavailableReason =
  | 'manifest_missing'
  | 'manifest_corrupt'
  | 'manifest_invalid'
  | 'chunk_missing'
  | 'chunk_corrupt'
  | 'store_error';

/** The snapshot cannot be restored (the caller should try the next key, or start cold). */
export class SnapshotUnavailableError extends Error {
  constructor(
    readonly reason: SnapshotUnavailableReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SnapshotUnavailableError';
  }
}

/** The tree could not be captured consistently (something wrote to it during the save). */
export class SnapshotSaveError extends Error {
  constructor(
    readonly code: 'not_a_directory' | 'file_changed',
    message: string,
  ) {
    super(message);
    this.name = 'SnapshotSaveError';
  }
}

// ---------------------------------------------------------------------------------------------
// Save

export interface SaveOptions {
  /** Paths (relative, `/`-separated) to leave out; excluding a directory leaves out its subtree. */
  exclude?: (relPath: string) => boolean;
  signal?: AbortSignal;
  chunking?: FastCdcOptions;
  /** Concurrent chunk uploads. Default 8. */
  uploadConcurrency?: number;
  /** Files read and chunked concurrently (overlaps their I/O; the manifest order does not change). Default 4. */
  fileConcurrency?: number;
  /** A findMissing batch is sent when it holds this many chunks… Default 512. */
  batchMaxChunks?: number;
  /** …or this many bytes. Default 32 MiB. At most two batches are held in memory. */
  batchMaxBytes?: number;
}

export interface SaveStats {
  files: number;
  dirs: number;
  symlinks: number;
  /** Sockets, fifos, devices, and names or symlink targets that are not valid UTF-8. */
  skipped: number;
  excluded: number;
  /** Logical bytes of all regular files. bytes = bytesUploaded + bytesReused + zeroBytes. */
  bytes: number;
  /** Chunk references in the manifest (zero chunks included). */
  chunks: number;
  /** Bytes in all-zero chunks: neither hashed into the store nor uploaded. */
  zeroBytes: number;
  chunksUploaded: number;
  bytesUploaded: number;
  /** Bytes not uploaded because the store (or an earlier chunk of this save) already had them. */
  bytesReused: number;
  manifestBytes: number;
  durationMs: number;
}

export interface SaveResult {
  manifestDigest: Digest;
  stats: SaveStats;
}

const READ_BYTES = 1024 * 1024;

export async function saveSnapshot(dir: string, store: BlobStore, options: SaveOptions = {}): Promise<SaveResult> {
  const t0 = performance.now();
  const { signal, exclude } = options;
  signal?.throwIfAborted();
  const params = fastCdcParams(options.chunking);
  const zeros = Buffer.alloc(params.maxSizeBytes);
  const stats: SaveStats = {
    files: 0, dirs: 0, symlinks: 0, skipped: 0, excluded: 0, bytes: 0, chunks: 0, zeroBytes: 0,
    chunksUploaded: 0, bytesUploaded: 0, bytesReused: 0, manifestBytes: 0, durationMs: 0,
  };
  const uploader = new ChunkUploader(store, stats, {
    signal,
    concurrency: options.uploadConcurrency ?? 8,
    batchMaxChunks: options.batchMaxChunks ?? 512,
    batchMaxBytes: options.batchMaxBytes ?? 32 * 1024 * 1024,
  });

  const root = path.resolve(dir);
  const rootSt = await fsp.stat(root, { bigint: true });
  if (!rootSt.isDirectory()) throw new SnapshotSaveError('not_a_directory', `${root} is not a directory`);
  /** In walk order; a file's slot is filled in when its chunking finishes (null if it vanished). */
  const entries: (ManifestEntry | null)[] = [dirEntry('', rootSt)];
  const files = new Limiter(Math.max(1, options.fileConcurrency ?? 4));

  const saveFile = async (abs: string, rel: string, st: BigIntStats): Promise<FileEntry | null> => {
    let fh: FileHandle;
    try {
      // O_NONBLOCK: if the file was swapped for a fifo since lstat, don't hang opening it.
      fh = await fsp.open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
    try {
      const before = await fh.stat({ bigint: true });
      if (!before.isFile() || before.ino !== st.ino) {
        throw new SnapshotSaveError('file_changed', `${rel} was replaced while saving`);
      }
      const chunks: ChunkRef[] = [];
      let size = 0;
      for await (const c of chunkStream(readFile(fh, Number(before.size), signal), params, signal)) {
        const n = c.data.length;
        size += n;
        if (isAllZero(c.data, zeros)) {
          stats.zeroBytes += n;
          chunks.push({ hash: null, sizeBytes: n });
        } else {
          const d = digestOf(c.data);
          chunks.push(d);
          await uploader.add(d, c.data);
        }
      }
      const after = await fh.stat({ bigint: true });
      if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || BigInt(size) !== before.size) {
        throw new SnapshotSaveError(
          'file_changed',
          `${rel} changed while saving (stop every writer, e.g. the Bazel server, before taking a snapshot)`,
        );
      }
      stats.files++;
      stats.bytes += size;
      stats.chunks += chunks.length;
      return { type: 'file', path: rel, mode: Number(before.mode) & 0o777, mtimeNs: before.mtimeNs, sizeBytes: size, chunks };
    } finally {
      await fh.close();
    }
  };

  const walk = async (abs: string, rel: string): Promise<void> => {
    signal?.throwIfAborted();
    const names = (await fsp.readdir(abs, { encoding: 'buffer' })).sort(Buffer.compare);
    for (const raw of names) {
      signal?.throwIfAborted();
      if (!isUtf8(raw)) {
        stats.skipped++;
        continue;
      }
      const name = raw.toString('utf8');
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (exclude?.(childRel)) {
        stats.excluded++;
        continue;
      }
      const childAbs = path.join(abs, name);
      let st: BigIntStats;
      try {
        st = await fsp.lstat(childAbs, { bigint: true });
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      if (st.isDirectory()) {
        stats.dirs++;
        entries.push(dirEntry(childRel, st));
        await walk(childAbs, childRel);
      } else if (st.isSymbolicLink()) {
        const target = await fsp.readlink(childAbs, { encoding: 'buffer' });
        if (!isUtf8(target) || target.length === 0) {
          stats.skipped++;
          continue;
        }
        stats.symlinks++;
        entries.push({ type: 'symlink', path: childRel, target: target.toString('utf8'), mtimeNs: st.mtimeNs });
      } else if (st.isFile()) {
        const slot = entries.push(null) - 1;
        await files.run(async () => {
          entries[slot] = await saveFile(childAbs, childRel, st);
        });
      } else {
        stats.skipped++;
      }
    }
  };

  try {
    await walk(root, '');
    await files.drain();
    await uploader.finish();
  } catch (err) {
    await files.settle();
    await uploader.abandon();
    throw err;
  }
  signal?.throwIfAborted();
  const manifest = encodeManifest({ chunking: params, entries: entries.filter((e) => e !== null) });
  const manifestDigest = digestOf(manifest);
  await store.put(manifestDigest, manifest, signal);
  stats.manifestBytes = manifest.length;
  stats.durationMs = performance.now() - t0;
  return { manifestDigest, stats };
}

function dirEntry(rel: string, st: BigIntStats): DirEntry {
  return { type: 'dir', path: rel, mode: Number(st.mode) & 0o777, mtimeNs: st.mtimeNs };
}

/** Reads a file in buffers sized to what is left (so small files don't pin 1 MiB buffers). */
async function* readFile(fh: FileHandle, expectedSize: number, signal?: AbortSignal): AsyncGenerator<Buffer> {
  let pos = 0;
  for (;;) {
    signal?.throwIfAborted();
    // One byte more than expected so a file that grew is noticed (and reported as changed).
    const want = Math.max(1, Math.min(READ_BYTES, expectedSize - pos + 1));
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(buf, 0, want, null);
    if (bytesRead === 0) return;
    pos += bytesRead;
    yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
  }
}

function isAllZero(data: Buffer, zeros: Buffer): boolean {
  return data[0] === 0 && data[data.length - 1] === 0 && data.equals(zeros.subarray(0, data.length));
}

/**
 * Batches chunks, asks the store which are missing, uploads those. One batch uploads while the next one
 * fills; chunks already seen in this save are counted as reused without asking again.
 */
class ChunkUploader {
  private readonly seen = new Set<string>();
  private batch: { digest: Digest; data: Buffer }[] = [];
  private batchBytes = 0;
  /** The chain of batch uploads, in order; rejects once any batch has failed. */
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: BlobStore,
    private readonly stats: SaveStats,
    private readonly opts: { signal?: AbortSignal; concurrency: number; batchMaxChunks: number; batchMaxBytes: number },
  ) {}

  async add(digest: Digest, data: Buffer): Promise<void> {
    const k = digestKey(digest);
    if (this.seen.has(k)) {
      this.stats.bytesReused += digest.sizeBytes;
      return;
    }
    this.seen.add(k);
    // Don't let a small view pin a large read buffer while it waits in the batch.
    if (data.buffer.byteLength > 2 * data.length + 4096) data = Buffer.from(data);
    this.batch.push({ digest, data });
    this.batchBytes += digest.sizeBytes;
    if (this.batch.length >= this.opts.batchMaxChunks || this.batchBytes >= this.opts.batchMaxBytes) await this.flush();
  }

  /** Uploads what is left and waits for every batch; throws the first failure. */
  async finish(): Promise<void> {
    await this.flush();
    await this.tail;
  }

  /** After a failure: wait for the uploads in flight to settle, so none outlives the save. */
  async abandon(): Promise<void> {
    await this.tail.catch(() => {});
  }

  /**
   * Queues the current batch behind the previous ones (synchronously, so concurrent callers keep their
   * order and none is lost), then waits for the previous batch: one batch uploads while the next fills.
   */
  private async flush(): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    if (batch.length === 0) return;
    const prev = this.tail;
    const p = prev.then(() => this.upload(batch));
    p.catch(() => {}); // observed by finish() / abandon() / the next flush
    this.tail = p;
    await prev;
  }

  private async upload(batch: { digest: Digest; data: Buffer }[]): Promise<void> {
    const { signal } = this.opts;
    const missing = new Set((await this.store.findMissing(batch.map((b) => b.digest), signal)).map(digestKey));
    const todo: typeof batch = [];
    for (const b of batch) {
      if (missing.has(digestKey(b.digest))) todo.push(b);
      else this.stats.bytesReused += b.digest.sizeBytes;
    }
    await runPool(todo, this.opts.concurrency, async (b) => {
      await this.store.put(b.digest, b.data, signal);
      this.stats.chunksUploaded++;
      this.stats.bytesUploaded += b.digest.sizeBytes;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Restore

export interface RestoreOptions {
  signal?: AbortSignal;
  /**
   * If destDir exists and is not empty: false (default) refuses with an error; true replaces it, but
   * only once the new tree is complete (on failure the old tree is left as it was).
   */
  replace?: boolean;
  /** Files restored concurrently. Default 8. */
  concurrency?: number;
  /** Chunks of one file fetched ahead of the one being written. Default 4. */
  prefetchChunks?: number;
}

export interface RestoreStats {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  chunks: number;
  zeroBytes: number;
  chunksFetched: number;
  bytesFetched: number;
  manifestBytes: number;
  durationMs: number;
}

/** Fetches, verifies and parses a manifest; throws SnapshotUnavailableError if it can't. */
export async function loadManifest(
  store: BlobStore,
  manifestDigest: Digest,
  signal?: AbortSignal,
): Promise<{ manifest: Manifest; sizeBytes: number }> {
  let data: Buffer | null;
  try {
    data = await store.get(manifestDigest, signal);
  } catch (err) {
    throw storeFailure(err, signal, `reading manifest ${digestKey(manifestDigest)}`);
  }
  if (!data) {
    throw new SnapshotUnavailableError('manifest_missing', `snapshot manifest ${digestKey(manifestDigest)} is not in the store`);
  }
  try {
    verifyBuffer(manifestDigest, data);
  } catch (err) {
    throw new SnapshotUnavailableError('manifest_corrupt', `snapshot manifest is corrupt: ${(err as Error).message}`, { cause: err });
  }
  try {
    return { manifest: decodeManifest(data), sizeBytes: data.length };
  } catch (err) {
    if (err instanceof ManifestError) {
      throw new SnapshotUnavailableError('manifest_invalid', `snapshot manifest ${digestKey(manifestDigest)} is invalid: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

export async function restoreSnapshot(
  manifestDigest: Digest,
  store: BlobStore,
  destDir: string,
  options: RestoreOptions = {},
): Promise<RestoreStats> {
  const t0 = performance.now();
  const { signal } = options;
  signal?.throwIfAborted();
  const dest = path.resolve(destDir);
  const destState = await directoryState(dest);
  if (destState === 'nonempty' && !options.replace) {
    throw new Error(`restore destination ${dest} exists and is not empty (pass replace: true to replace it)`);
  }
  if (destState === 'other') throw new Error(`restore destination ${dest} exists and is not a directory`);

  const { manifest, sizeBytes: manifestBytes } = await loadManifest(store, manifestDigest, signal);
  const ms = manifestStats(manifest);
  const stats: RestoreStats = {
    files: ms.files, dirs: ms.dirs - 1, symlinks: ms.symlinks, bytes: ms.sizeBytes, chunks: ms.chunks,
    zeroBytes: ms.zeroBytes, chunksFetched: 0, bytesFetched: 0, manifestBytes, durationMs: 0,
  };

  // Fail fast, before touching the disk, if the store already knows chunks are gone.
  const all = uniqueChunkDigests(manifest);
  for (let i = 0; i < all.length; i += 10_000) {
    let missing: Digest[];
    try {
      missing = await store.findMissing(all.slice(i, i + 10_000), signal);
    } catch (err) {
      throw storeFailure(err, signal, 'checking snapshot chunks');
    }
    if (missing.length > 0) {
      throw new SnapshotUnavailableError(
        'chunk_missing',
        `snapshot ${digestKey(manifestDigest)} lacks ${missing.length}+ of its ${all.length} chunks (e.g. ${digestKey(missing[0]!)}), probably evicted`,
      );
    }
  }

  const parent = path.dirname(dest);
  await fsp.mkdir(parent, { recursive: true });
  const tmp = path.join(parent, `.${path.basename(dest)}.restore-${randomUUID().slice(0, 8)}`);
  await fsp.mkdir(tmp, { mode: 0o700 });
  try {
    const fetchChunk = async (c: ChunkRef, rel: string): Promise<Buffer> => {
      const d: Digest = { hash: c.hash!, sizeBytes: c.sizeBytes };
      let data: Buffer | null;
      try {
        data = await store.get(d, signal);
      } catch (err) {
        throw storeFailure(err, signal, `reading chunk ${digestKey(d)} of ${rel}`);
      }
      if (!data) {
        throw new SnapshotUnavailableError(
          'chunk_missing',
          `chunk ${digestKey(d)} of ${rel} is missing from the store (evicted, or found corrupt and dropped)`,
        );
      }
      try {
        verifyBuffer(d, data);
      } catch (err) {
        throw new SnapshotUnavailableError('chunk_corrupt', `chunk ${digestKey(d)} of ${rel} is corrupt: ${(err as Error).message}`, { cause: err });
      }
      stats.chunksFetched++;
      stats.bytesFetched += d.sizeBytes;
      return data;
    };

    const prefetch = Math.max(1, options.prefetchChunks ?? 4);
    const restoreFile = async (e: FileEntry, abs: string): Promise<void> => {
      const fh = await fsp.open(abs, 'wx', 0o600);
      try {
        // Fetch up to `prefetch` chunks ahead; write each at its offset (zero chunks stay holes).
        const stored = e.chunks.map((c, i) => ({ c, i })).filter((x) => x.c.hash !== null);
        const offsets: number[] = [];
        let off = 0;
        for (const c of e.chunks) {
          offsets.push(off);
          off += c.sizeBytes;
        }
        const pending: Promise<Buffer>[] = [];
        let next = 0;
        const fill = () => {
          while (next < stored.length && pending.length < prefetch) {
            const p = fetchChunk(stored[next++]!.c, e.path);
            p.catch(() => {});
            pending.push(p);
          }
        };
        try {
          for (const { i } of stored) {
            fill();
            const data = await pending.shift()!;
            signal?.throwIfAborted();
            await writeAll(fh, data, offsets[i]!);
          }
        } finally {
          await Promise.allSettled(pending);
        }
        const last = e.chunks[e.chunks.length - 1];
        if (last && last.hash === null) await fh.truncate(e.sizeBytes);
        await fh.chmod(e.mode);
        const t = nsToSeconds(e.mtimeNs);
        await fh.utimes(t, t);
      } finally {
        await fh.close();
      }
    };

    const dirs: DirEntry[] = [];
    const leaves: ManifestEntry[] = [];
    for (const e of manifest.entries) {
      if (e.type === 'dir') dirs.push(e);
      else leaves.push(e);
    }
    for (const d of dirs) {
      if (d.path !== '') await fsp.mkdir(path.join(tmp, d.path), { mode: 0o700 });
    }
    signal?.throwIfAborted();
    await runPool(leaves, options.concurrency ?? 8, async (e) => {
      signal?.throwIfAborted();
      const abs = path.join(tmp, e.path);
      if (e.type === 'file') await restoreFile(e, abs);
      else if (e.type === 'symlink') {
        await fsp.symlink(e.target, abs);
        const t = nsToSeconds(e.mtimeNs);
        await fsp.lutimes(abs, t, t);
      }
    });
    // Directories last, deepest first: creating their children changed their mtimes.
    for (let i = dirs.length - 1; i >= 0; i--) {
      const d = dirs[i]!;
      const abs = path.join(tmp, d.path);
      await fsp.chmod(abs, d.mode);
      const t = nsToSeconds(d.mtimeNs);
      await fsp.utimes(abs, t, t);
    }
    signal?.throwIfAborted();

    if (destState === 'nonempty') {
      const aside = path.join(parent, `.${path.basename(dest)}.old-${randomUUID().slice(0, 8)}`);
      await fsp.rename(dest, aside);
      try {
        await fsp.rename(tmp, dest);
      } catch (err) {
        await fsp.rename(aside, dest).catch(() => {});
        throw err;
      }
      await removeTree(aside);
    } else {
      // Replaces an empty directory atomically, or creates dest.
      await fsp.rename(tmp, dest);
    }
  } catch (err) {
    await removeTree(tmp);
    throw err;
  }
  const root = manifest.entries[0]!;
  const t = nsToSeconds(root.mtimeNs);
  await fsp.utimes(dest, t, t).catch(() => {});
  stats.durationMs = performance.now() - t0;
  return stats;
}

async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, position + off);
    off += bytesWritten;
  }
}

/**
 * Seconds as a float, which is what utimes takes. libuv truncates to whole microseconds, so aim at the
 * middle of the nearest microsecond: float rounding then cannot tip it into the previous one, and the
 * restored time is within 0.5 µs of the recorded one.
 */
function nsToSeconds(ns: bigint): number {
  const NS = 1_000_000_000n;
  const sec = ns >= 0n ? ns / NS : -((-ns + NS - 1n) / NS);
  const us = (ns - sec * NS + 500n) / 1000n;
  return Number(sec) + (Number(us) * 1000 + 500) / 1e9;
}

async function directoryState(p: string): Promise<'absent' | 'empty' | 'nonempty' | 'other'> {
  let st;
  try {
    st = await fsp.lstat(p);
  } catch (err) {
    if (isNotFound(err)) return 'absent';
    throw err;
  }
  if (!st.isDirectory()) return 'other';
  return (await fsp.readdir(p)).length === 0 ? 'empty' : 'nonempty';
}

/** rm -rf that also copes with read-only directories (Bazel makes many) when not running as root. */
export async function removeTree(p: string): Promise<void> {
  try {
    await fsp.rm(p, { recursive: true, force: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
    await makeWritable(p);
    await fsp.rm(p, { recursive: true, force: true });
  }
}

async function makeWritable(p: string): Promise<void> {
  const st = await fsp.lstat(p).catch(() => null);
  if (!st?.isDirectory()) return;
  await fsp.chmod(p, 0o700).catch(() => {});
  for (const name of await fsp.readdir(p).catch(() => [] as string[])) await makeWritable(path.join(p, name));
}

function storeFailure(err: unknown, signal: AbortSignal | undefined, what: string): unknown {
  if (signal?.aborted) return signal.reason;
  if (err instanceof SnapshotUnavailableError) return err;
  if (err instanceof Error && err.name === 'AbortError') return err;
  if (err instanceof DigestMismatchError) {
    return new SnapshotUnavailableError('chunk_corrupt', `${what}: ${err.message}`, { cause: err });
  }
  return new SnapshotUnavailableError('store_error', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

/**
 * Runs tasks with at most `limit` in flight: `run` waits for a free slot, then starts the task without
 * waiting for it. The first failure is rethrown by the next `run` or by `drain`; `settle` waits for
 * everything in flight, ignoring failures.
 */
class Limiter {
  private readonly inflight = new Set<Promise<void>>();
  private failure: { err: unknown } | null = null;

  constructor(private readonly limit: number) {}

  async run(task: () => Promise<void>): Promise<void> {
    while (this.inflight.size >= this.limit) await Promise.race(this.inflight);
    this.throwIfFailed();
    const p: Promise<void> = task()
      .catch((err) => {
        this.failure ??= { err };
      })
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  async drain(): Promise<void> {
    await this.settle();
    this.throwIfFailed();
  }

  async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all(this.inflight);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.err;
  }
}

/**
 * Runs `fn` over `items` with at most `concurrency` at a time. On the first failure no new items start;
 * it waits for the running ones to settle (so nothing outlives the call), then throws that failure.
 */
async function runPool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | null = null;
  const worker = async () => {
    while (failure === null && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  if (failure) throw (failure as { err: unknown }).err;
}
