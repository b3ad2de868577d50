/**
 * SnapshotIndex: snapshot key → the latest snapshot saved under it. The blobs live in a BlobStore; the
 * index only points at manifests. Two implementations: in memory (tests, single process) and a JSON file
 * (the embedded single node), written atomically (temp file → fsync → rename → fsync dir).
 */
import { randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { type Digest, isValidDigest } from '@hearth/blobstore';

export interface SnapshotRecord {
  manifestDigest: Digest;
  /** ISO 8601. */
  createdAt: string;
  /** Logical size of the tree (all file bytes). */
  sizeBytes: number;
  /** The key's instance (`<repo>#<name>`); what `invalidatePrefix` matches. */
  instance: string;
  /** The key's git ref, for display. */
  ref: string;
}

export interface SnapshotIndex {
  get(key: string, signal?: AbortSignal): Promise<SnapshotRecord | null>;
  /** Records (or replaces) the snapshot under `key`. */
  put(key: string, record: SnapshotRecord, signal?: AbortSignal): Promise<void>;
  /**
   * Removes `key`. With `ifManifest`, only if the key still points at that manifest (so dropping a broken
   * snapshot cannot remove a good one saved concurrently). Returns whether something was removed.
   */
  delete(key: string, ifManifest?: Digest, signal?: AbortSignal): Promise<boolean>;
  /**
   * Removes every snapshot whose instance starts with `instancePrefix` ("invalidate all snapshots of this
   * repo": pass `repoInstancePrefix(repoUrl)` from @hearth/core). Returns how many were removed.
   */
  invalidatePrefix(instancePrefix: string, signal?: AbortSignal): Promise<number>;
  /** All records, sorted by key. */
  list(signal?: AbortSignal): Promise<(SnapshotRecord & { key: string })[]>;
}

export class MemorySnapshotIndex implements SnapshotIndex {
  protected readonly records = new Map<string, SnapshotRecord>();

  async get(key: string): Promise<SnapshotRecord | null> {
    const r = this.records.get(key);
    return r ? cloneRecord(r) : null;
  }

  async put(key: string, record: SnapshotRecord): Promise<void> {
    checkRecord(record);
    this.records.set(key, cloneRecord(record));
  }

  async delete(key: string, ifManifest?: Digest): Promise<boolean> {
    return this.deleteSync(key, ifManifest);
  }

  async invalidatePrefix(instancePrefix: string): Promise<number> {
    return this.invalidateSync(instancePrefix);
  }

  async list(): Promise<(SnapshotRecord & { key: string })[]> {
    return [...this.records.keys()].sort().map((key) => ({ key, ...cloneRecord(this.records.get(key)!) }));
  }

  protected deleteSync(key: string, ifManifest?: Digest): boolean {
    const r = this.records.get(key);
    if (!r) return false;
    if (ifManifest && (r.manifestDigest.hash !== ifManifest.hash || r.manifestDigest.sizeBytes !== ifManifest.sizeBytes)) {
      return false;
    }
    return this.records.delete(key);
  }

  protected invalidateSync(instancePrefix: string): number {
    let n = 0;
    for (const [key, r] of this.records) {
      if (r.instance.startsWith(instancePrefix)) {
        this.records.delete(key);
        n++;
      }
    }
    return n;
  }
}

/**
 * A SnapshotIndex persisted as one JSON file. Reads are served from memory; each change rewrites the file
 * atomically, so a crash leaves either the old or the new index. One process owns a file at a time.
 */
export class JsonFileSnapshotIndex extends MemorySnapshotIndex {
  /** Serializes writes, so the file always reflects the latest change. */
  private queue: Promise<void> = Promise.resolve();

  private constructor(readonly file: string) {
    super();
  }

  static async open(file: string): Promise<JsonFileSnapshotIndex> {
    const index = new JsonFileSnapshotIndex(path.resolve(file));
    let text: string | null = null;
    try {
      text = await fsp.readFile(index.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== null) {
      const doc = JSON.parse(text) as { version?: unknown; snapshots?: Record<string, SnapshotRecord> };
      if (doc.version !== 1 || typeof doc.snapshots !== 'object' || doc.snapshots === null) {
        throw new Error(`${index.file} is not a hearth snapshot index (version 1)`);
      }
      for (const [key, r] of Object.entries(doc.snapshots)) {
        checkRecord(r);
        index.records.set(key, cloneRecord(r));
      }
    }
    return index;
  }

  override async put(key: string, record: SnapshotRecord, signal?: AbortSignal): Promise<void> {
    await super.put(key, record);
    await this.persist(signal);
  }

  override async delete(key: string, ifManifest?: Digest, signal?: AbortSignal): Promise<boolean> {
    const removed = this.deleteSync(key, ifManifest);
    if (removed) await this.persist(signal);
    return removed;
  }

  override async invalidatePrefix(instancePrefix: string, signal?: AbortSignal): Promise<number> {
    const n = this.invalidateSync(instancePrefix);
    if (n > 0) await this.persist(signal);
    return n;
  }

  private persist(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const p = this.queue.then(() => this.writeFile());
    this.queue = p.catch(() => {});
    return p;
  }

  private async writeFile(): Promise<void> {
    const snapshots: Record<string, SnapshotRecord> = {};
    for (const key of [...this.records.keys()].sort()) snapshots[key] = this.records.get(key)!;
    const text = `${JSON.stringify({ version: 1, snapshots }, null, 1)}\n`;
    const dir = path.dirname(this.file);
    await fsp.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.${path.basename(this.file)}.${randomUUID().slice(0, 8)}.tmp`);
    try {
      const fh = await fsp.open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, this.file);
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
    const dh = await fsp.open(dir, 'r');
    try {
      await dh.sync();
    } catch {
      // Some file systems cannot fsync a directory; the rename is still atomic.
    } finally {
      await dh.close();
    }
  }
}

function checkRecord(r: SnapshotRecord): void {
  if (
    !r ||
    !isValidDigest(r.manifestDigest) ||
    typeof r.createdAt !== 'string' ||
    Number.isNaN(Date.parse(r.createdAt)) ||
    !Number.isSafeInteger(r.sizeBytes) ||
    typeof r.instance !== 'string' ||
    typeof r.ref !== 'string'
  ) {
    throw new TypeError(`invalid snapshot record ${JSON.stringify(r)}`);
  }
}

function cloneRecord(r: SnapshotRecord): SnapshotRecord {
  return {
    manifestDigest: { hash: r.manifestDigest.hash, sizeBytes: r.manifestDigest.sizeBytes },
    createdAt: r.createdAt,
    sizeBytes: r.sizeBytes,
    instance: r.instance,
    ref: r.ref,
  };
}
