/**
 * LocalDiskStore: a BlobStore on the local file system.
 *
 * Layout under `rootDir`:
 *   cas/<first two hex chars>/<sha256 hex>   complete, verified blobs (file size = blob size)
 *   tmp/<uuid>                               writes in progress; wiped at startup
 *
 * - Writes are atomic: temp file → fsync → rename into place. A blob is visible only once complete and
 *   verified; an aborted or mismatching write removes its temp file.
 * - Reads are verified: the size is always checked; the SHA-256 is checked for blobs up to
 *   `verifyMaxBytes` (default 1 MiB), or for all blobs with `verify: 'always'`. A corrupt blob is deleted
 *   and reported as missing.
 * - LRU eviction under `maxBytes`: the in-memory index is kept in least-recently-used order (a Map in
 *   insertion order, re-inserted on access). Writes in progress reserve their size once per hash, so two
 *   concurrent writes of the same blob are not counted twice. Recency survives restarts through file
 *   mtimes (touched at most once per `touchIntervalMs` per blob).
 * - Startup scans `cas/` to rebuild the index and the byte accounting.
 *
 * One process owns a root directory at a time.
 */
import { randomUUID, createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import {
  type BlobStore,
  type BlobStoreStats,
  type Digest,
  type GetStreamOptions,
  BlobTooLargeError,
  DigestMismatchError,
  OffsetOutOfRangeError,
  assertValidDigest,
  digestKey,
  isEmptyDigest,
  verifyBuffer,
} from './blobStore.ts';

export type VerifyPolicy = 'always' | 'small' | 'never';

export interface LocalDiskStoreOptions {
  rootDir: string;
  /** Byte budget for complete blobs plus writes in progress; null/undefined = unbounded. */
  maxBytes?: number | null;
  /**
   * Hash check on read: 'small' (default) verifies blobs up to `verifyMaxBytes`; 'always' verifies every
   * read (streams fail at their end on mismatch); 'never' checks sizes only.
   */
  verify?: VerifyPolicy;
  /** Threshold for verify: 'small'. Default 1 MiB. */
  verifyMaxBytes?: number;
  /** Minimum interval between mtime updates of one blob, to persist LRU order. Default 60 s. */
  touchIntervalMs?: number;
}

interface Entry {
  sizeBytes: number;
  /** Last time we wrote the file's mtime (epoch ms). */
  diskTouchMs: number;
}

const HASH_FILE_RE = /^[0-9a-f]{64}$/;
const READ_CHUNK_BYTES = 256 * 1024;

export class LocalDiskStore implements BlobStore {
  readonly rootDir: string;
  readonly maxBytes: number | null;
  private readonly casDir: string;
  private readonly tmpDir: string;
  private readonly verifyPolicy: VerifyPolicy;
  private readonly verifyMaxBytes: number;
  private readonly touchIntervalMs: number;

  /** hash → entry, least recently used first. */
  private readonly index = new Map<string, Entry>();
  private totalBytes = 0;
  /**
   * hash → writes in progress. The size is reserved once per hash, and not at all once the blob is
   * complete (a second writer of a blob that already exists holds no extra space).
   */
  private readonly reservations = new Map<string, { count: number; sizeBytes: number; counted: boolean }>();
  private pendingBytes = 0;
  /** hash → in-flight buffer put, to coalesce concurrent puts of the same blob. */
  private readonly inflightPuts = new Map<string, Promise<void>>();
  /** hash → unlink in progress; a commit of the same hash waits for it. */
  private readonly unlinking = new Map<string, Promise<void>>();

  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private corruptions = 0;

  private constructor(options: LocalDiskStoreOptions) {
    this.rootDir = path.resolve(options.rootDir);
    this.casDir = path.join(this.rootDir, 'cas');
    this.tmpDir = path.join(this.rootDir, 'tmp');
    this.maxBytes = options.maxBytes ?? null;
    this.verifyPolicy = options.verify ?? 'small';
    this.verifyMaxBytes = options.verifyMaxBytes ?? 1024 * 1024;
    this.touchIntervalMs = options.touchIntervalMs ?? 60_000;
    if (this.maxBytes !== null && !(Number.isSafeInteger(this.maxBytes) && this.maxBytes > 0)) {
      throw new RangeError(`maxBytes must be a positive integer, got ${this.maxBytes}`);
    }
  }

  /** Opens (creating if needed) a store and rebuilds its index from disk. */
  static async open(options: LocalDiskStoreOptions, signal?: AbortSignal): Promise<LocalDiskStore> {
    const store = new LocalDiskStore(options);
    await store.init(signal);
    return store;
  }

  private async init(signal?: AbortSignal): Promise<void> {
    await fsp.rm(this.tmpDir, { recursive: true, force: true });
    await fsp.mkdir(this.tmpDir, { recursive: true });
    await fsp.mkdir(this.casDir, { recursive: true });
    const found: { hash: string; sizeBytes: number; mtimeMs: number }[] = [];
    for (let i = 0; i < 256; i++) {
      signal?.throwIfAborted();
      const shard = i.toString(16).padStart(2, '0');
      const dir = path.join(this.casDir, shard);
      await fsp.mkdir(dir, { recursive: true });
      const names = (await fsp.readdir(dir)).filter((n) => HASH_FILE_RE.test(n) && n.startsWith(shard));
      const stats = await Promise.all(
        names.map(async (name) => {
          try {
            const st = await fsp.stat(path.join(dir, name));
            return st.isFile() ? { hash: name, sizeBytes: st.size, mtimeMs: st.mtimeMs } : null;
          } catch {
            return null;
          }
        }),
      );
      for (const s of stats) if (s) found.push(s);
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) {
      this.index.set(f.hash, { sizeBytes: f.sizeBytes, diskTouchMs: f.mtimeMs });
      this.totalBytes += f.sizeBytes;
    }
    await this.evictUntilFits();
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  async findMissing(digests: readonly Digest[], signal?: AbortSignal): Promise<Digest[]> {
    signal?.throwIfAborted();
    const missing: Digest[] = [];
    const seen = new Set<string>();
    for (const d of digests) {
      assertValidDigest(d);
      const key = digestKey(d);
      if (seen.has(key)) continue;
      seen.add(key);
      if (isEmptyDigest(d)) continue;
      const entry = this.index.get(d.hash);
      if (entry && entry.sizeBytes === d.sizeBytes) this.touch(d.hash, entry);
      else missing.push({ hash: d.hash, sizeBytes: d.sizeBytes });
    }
    return missing;
  }

  async get(digest: Digest, signal?: AbortSignal): Promise<Buffer | null> {
    assertValidDigest(digest);
    signal?.throwIfAborted();
    if (isEmptyDigest(digest)) return Buffer.alloc(0);
    const entry = this.lookup(digest);
    if (!entry) return null;
    let data: Buffer;
    try {
      data = await fsp.readFile(this.blobPath(digest.hash), { signal });
    } catch (err) {
      if (isNotFound(err)) return this.vanished(digest.hash);
      throw err;
    }
    if (data.byteLength !== digest.sizeBytes || (this.shouldVerify(digest.sizeBytes) && !hashMatches(digest, data))) {
      await this.corrupt(digest.hash);
      return null;
    }
    this.hits++;
    this.touch(digest.hash, entry);
    return data;
  }

  async getStream(digest: Digest, options: GetStreamOptions = {}): Promise<Readable | null> {
    assertValidDigest(digest);
    const { signal } = options;
    const offset = options.offset ?? 0;
    signal?.throwIfAborted();
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > digest.sizeBytes) {
      throw new OffsetOutOfRangeError(digest, offset);
    }
    if (isEmptyDigest(digest)) return Readable.from([], { objectMode: false });
    // Small blobs: read whole (verified by get) and serve from memory.
    if (digest.sizeBytes <= this.verifyMaxBytes && this.verifyPolicy !== 'never') {
      const data = await this.get(digest, signal);
      if (!data) return null;
      return withSignal(Readable.from([data.subarray(offset)], { objectMode: false }), signal);
    }
    const entry = this.lookup(digest);
    if (!entry) return null;
    let fh: FileHandle;
    try {
      fh = await fsp.open(this.blobPath(digest.hash), 'r');
    } catch (err) {
      if (isNotFound(err)) return this.vanished(digest.hash);
      throw err;
    }
    try {
      const st = await fh.stat();
      if (st.size !== digest.sizeBytes) {
        await fh.close();
        await this.corrupt(digest.hash);
        return null;
      }
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
    this.hits++;
    this.touch(digest.hash, entry);
    if (this.verifyPolicy !== 'always') {
      const stream = fh.createReadStream({ start: offset, highWaterMark: READ_CHUNK_BYTES, autoClose: true });
      return withSignal(stream, signal);
    }
    return withSignal(Readable.from(this.verifyingRead(fh, digest, offset), { objectMode: false }), signal);
  }

  /** Reads the whole file (hashing it) and yields bytes from `offset`; throws at the end on mismatch. */
  private async *verifyingRead(fh: FileHandle, digest: Digest, offset: number): AsyncGenerator<Buffer> {
    const h = createHash('sha256');
    let pos = 0;
    const stream = fh.createReadStream({ highWaterMark: READ_CHUNK_BYTES, autoClose: true });
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        h.update(chunk);
        const end = pos + chunk.byteLength;
        if (end > offset) yield pos >= offset ? chunk : chunk.subarray(offset - pos);
        pos = end;
      }
    } finally {
      stream.destroy();
    }
    const actual = h.digest('hex');
    if (pos !== digest.sizeBytes || actual !== digest.hash) {
      await this.corrupt(digest.hash);
      throw new DigestMismatchError(digest, { hash: actual, sizeBytes: pos });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Writes

  async put(digest: Digest, data: Buffer, signal?: AbortSignal): Promise<void> {
    assertValidDigest(digest);
    signal?.throwIfAborted();
    verifyBuffer(digest, data);
    if (isEmptyDigest(digest)) return;
    for (;;) {
      const entry = this.index.get(digest.hash);
      if (entry) {
        this.touch(digest.hash, entry);
        return;
      }
      const inflight = this.inflightPuts.get(digest.hash);
      if (!inflight) break;
      // Someone else is writing the same bytes: wait for them; if they fail, try ourselves.
      await inflight.catch(() => {});
      signal?.throwIfAborted();
    }
    const p = this.writeBlob(
      digest,
      async (fh) => {
        await fh.writeFile(data, { signal });
      },
      signal,
    );
    this.inflightPuts.set(digest.hash, p);
    try {
      await p;
    } finally {
      if (this.inflightPuts.get(digest.hash) === p) this.inflightPuts.delete(digest.hash);
    }
  }

  async putStream(digest: Digest, source: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<void> {
    assertValidDigest(digest);
    signal?.throwIfAborted();
    const existing = this.index.get(digest.hash);
    if (isEmptyDigest(digest) || (existing && existing.sizeBytes === digest.sizeBytes)) {
      // Already present: still consume and verify the caller's bytes, but write nothing.
      await consumeVerified(digest, source, signal, async () => {});
      if (existing) this.touch(digest.hash, existing);
      return;
    }
    await this.writeBlob(
      digest,
      async (fh) => {
        await consumeVerified(digest, source, signal, async (chunk) => {
          let off = 0;
          while (off < chunk.byteLength) {
            const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
            off += bytesWritten;
          }
        });
      },
      signal,
    );
  }

  /**
   * Reserves space, writes a temp file with `produce`, fsyncs and renames it into place. `produce` must
   * verify the content (throwing on mismatch). On any failure the temp file is removed.
   */
  private async writeBlob(
    digest: Digest,
    produce: (fh: FileHandle) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<void> {
    if (this.maxBytes !== null && digest.sizeBytes > this.maxBytes) {
      throw new BlobTooLargeError(digest, this.maxBytes);
    }
    this.reserve(digest);
    const tmp = path.join(this.tmpDir, `${digest.hash}.${randomUUID()}`);
    let fh: FileHandle | undefined;
    try {
      await this.evictUntilFits();
      fh = await fsp.open(tmp, 'wx');
      await produce(fh);
      signal?.throwIfAborted();
      await fh.sync();
      await fh.close();
      fh = undefined;
      await this.unlinking.get(digest.hash);
      if (this.index.has(digest.hash)) {
        await fsp.rm(tmp, { force: true });
      } else {
        await fsp.rename(tmp, this.blobPath(digest.hash));
      }
    } catch (err) {
      await fh?.close().catch(() => {});
      await fsp.rm(tmp, { force: true }).catch(() => {});
      this.release(digest);
      throw err;
    }
    const entry = this.index.get(digest.hash);
    if (entry) this.touch(digest.hash, entry);
    else {
      this.index.set(digest.hash, { sizeBytes: digest.sizeBytes, diskTouchMs: Date.now() });
      this.totalBytes += digest.sizeBytes;
    }
    // The blob now counts in totalBytes; other writers of the same hash must not count it again.
    const r = this.reservations.get(digest.hash);
    if (r?.counted) {
      r.counted = false;
      this.pendingBytes -= r.sizeBytes;
    }
    this.release(digest);
    await this.evictUntilFits();
  }

  async delete(digest: Digest, signal?: AbortSignal): Promise<boolean> {
    assertValidDigest(digest);
    signal?.throwIfAborted();
    if (isEmptyDigest(digest)) return false;
    const entry = this.index.get(digest.hash);
    if (!entry || entry.sizeBytes !== digest.sizeBytes) return false;
    await this.remove(digest.hash);
    return true;
  }

  async stats(): Promise<BlobStoreStats> {
    return {
      blobCount: this.index.size,
      totalBytes: this.totalBytes,
      maxBytes: this.maxBytes,
      pendingBytes: this.pendingBytes,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      corruptions: this.corruptions,
    };
  }

  /** The file path of a blob (exposed for tests and tooling; do not write to it). */
  blobPath(hash: string): string {
    return path.join(this.casDir, hash.slice(0, 2), hash);
  }

  // -------------------------------------------------------------------------------------------
  // Index bookkeeping

  private lookup(digest: Digest): Entry | null {
    const entry = this.index.get(digest.hash);
    if (!entry || entry.sizeBytes !== digest.sizeBytes) {
      this.misses++;
      return null;
    }
    return entry;
  }

  private shouldVerify(sizeBytes: number): boolean {
    return this.verifyPolicy === 'always' || (this.verifyPolicy === 'small' && sizeBytes <= this.verifyMaxBytes);
  }

  private touch(hash: string, entry: Entry): void {
    this.index.delete(hash);
    this.index.set(hash, entry);
    const now = Date.now();
    if (now - entry.diskTouchMs >= this.touchIntervalMs) {
      entry.diskTouchMs = now;
      const t = new Date(now);
      fsp.utimes(this.blobPath(hash), t, t).catch(() => {});
    }
  }

  private reserve(digest: Digest): void {
    const r = this.reservations.get(digest.hash);
    if (r) r.count++;
    else {
      const counted = !this.index.has(digest.hash);
      this.reservations.set(digest.hash, { count: 1, sizeBytes: digest.sizeBytes, counted });
      if (counted) this.pendingBytes += digest.sizeBytes;
    }
  }

  private release(digest: Digest): void {
    const r = this.reservations.get(digest.hash);
    if (!r) return;
    if (--r.count === 0) {
      this.reservations.delete(digest.hash);
      if (r.counted) this.pendingBytes -= r.sizeBytes;
    }
  }

  private async evictUntilFits(): Promise<void> {
    if (this.maxBytes === null) return;
    while (this.totalBytes + this.pendingBytes > this.maxBytes) {
      const oldest = this.index.keys().next();
      if (oldest.done) return;
      this.evictions++;
      await this.remove(oldest.value);
    }
  }

  /** Drops a blob from the index now and unlinks its file; a later commit of the hash waits for this. */
  private remove(hash: string): Promise<void> {
    const entry = this.index.get(hash);
    if (entry) {
      this.index.delete(hash);
      this.totalBytes -= entry.sizeBytes;
    }
    const prev = this.unlinking.get(hash) ?? Promise.resolve();
    const p = prev.then(() => fsp.rm(this.blobPath(hash), { force: true })).catch(() => {});
    this.unlinking.set(hash, p);
    void p.then(() => {
      if (this.unlinking.get(hash) === p) this.unlinking.delete(hash);
    });
    return p;
  }

  private async corrupt(hash: string): Promise<void> {
    this.corruptions++;
    this.misses++;
    await this.remove(hash);
  }

  /** The index said present but the file is gone (deleted behind our back): forget it. */
  private vanished(hash: string): null {
    this.misses++;
    const entry = this.index.get(hash);
    if (entry) {
      this.index.delete(hash);
      this.totalBytes -= entry.sizeBytes;
    }
    return null;
  }
}

// ---------------------------------------------------------------------------------------------

function hashMatches(digest: Digest, data: Uint8Array): boolean {
  return createHash('sha256').update(data).digest('hex') === digest.hash;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

function withSignal<T extends Readable>(stream: T, signal: AbortSignal | undefined): T {
  return signal ? addAbortSignal(signal, stream) : stream;
}

/**
 * Iterates `source`, hashing and passing each chunk to `sink`; fails early once more bytes than
 * expected arrive and at the end on any size/hash mismatch.
 */
async function consumeVerified(
  digest: Digest,
  source: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
  sink: (chunk: Uint8Array) => Promise<void>,
): Promise<void> {
  const h = createHash('sha256');
  let received = 0;
  for await (const chunk of abortable(source, signal)) {
    h.update(chunk);
    received += chunk.byteLength;
    if (received > digest.sizeBytes) {
      throw new DigestMismatchError(digest, { hash: h.digest('hex'), sizeBytes: received });
    }
    await sink(chunk);
  }
  signal?.throwIfAborted();
  const actual = h.digest('hex');
  if (received !== digest.sizeBytes || actual !== digest.hash) {
    throw new DigestMismatchError(digest, { hash: actual, sizeBytes: received });
  }
}

/**
 * Iterates `source` but rejects as soon as `signal` aborts, even while the source is stuck waiting for
 * its next chunk; the source is then closed (Readable streams are destroyed).
 */
async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  if (!signal) {
    yield* source;
    return;
  }
  signal.throwIfAborted();
  const it = source[Symbol.asyncIterator]();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  let done = false;
  try {
    for (;;) {
      const r = await Promise.race([it.next(), aborted]);
      if (r.done) {
        done = true;
        return;
      }
      yield r.value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (!done) {
      if (source instanceof Readable) source.destroy();
      // Don't await: a generator stuck in an await only returns once that settles.
      void it.return?.()?.catch?.(() => {});
    }
  }
}
