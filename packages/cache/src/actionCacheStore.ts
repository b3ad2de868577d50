/**
 * Storage for Action Cache entries. Unlike CAS blobs these are mutable and not addressed by their own
 * content: the key is derived from (instance name, action digest) by `actionCacheKey`, and the value
 * is an encoded ActionResult. Entries are small (hundreds of bytes), so both backends are simple.
 */
import { createHash, randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Digest } from '@hearth/blobstore';

export interface ActionCacheStore {
  get(key: string, signal?: AbortSignal): Promise<Buffer | null>;
  put(key: string, value: Buffer, signal?: AbortSignal): Promise<void>;
  delete(key: string, signal?: AbortSignal): Promise<boolean>;
}

/**
 * The AC key: sha256 hex of instance name + action digest, so each instance has its own namespace
 * and any instance string (slashes, dots) is safe as a file name.
 */
export function actionCacheKey(instanceName: string, actionDigest: Digest): string {
  return createHash('sha256')
    .update(`ac\0${instanceName}\0${actionDigest.hash}/${actionDigest.sizeBytes}`)
    .digest('hex');
}

/** In-memory AC with LRU eviction by total bytes (default 64 MiB). Lost on restart. */
export class MemoryActionCacheStore implements ActionCacheStore {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  async get(key: string): Promise<Buffer | null> {
    const v = this.entries.get(key);
    if (!v) return null;
    this.entries.delete(key);
    this.entries.set(key, v);
    return v;
  }

  async put(key: string, value: Buffer): Promise<void> {
    await this.delete(key);
    this.entries.set(key, Buffer.from(value));
    this.bytes += value.byteLength;
    while (this.bytes > this.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      await this.delete(oldest.value);
    }
  }

  async delete(key: string): Promise<boolean> {
    const v = this.entries.get(key);
    if (!v) return false;
    this.entries.delete(key);
    this.bytes -= v.byteLength;
    return true;
  }
}

const KEY_RE = /^[0-9a-f]{64}$/;

/**
 * AC entries as files `<rootDir>/<key[0:2]>/<key>`, written atomically (temp + fsync + rename).
 * No eviction: entries are tiny, and GetActionResult already treats entries whose outputs were evicted
 * from the CAS as misses.
 */
export class FileActionCacheStore implements ActionCacheStore {
  constructor(readonly rootDir: string) {}

  private file(key: string): string {
    if (!KEY_RE.test(key)) throw new Error(`invalid action cache key ${JSON.stringify(key)}`);
    return path.join(this.rootDir, key.slice(0, 2), key);
  }

  async get(key: string, signal?: AbortSignal): Promise<Buffer | null> {
    try {
      return await fsp.readFile(this.file(key), { signal });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async put(key: string, value: Buffer, signal?: AbortSignal): Promise<void> {
    const file = this.file(key);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomUUID()}.tmp`;
    const fh = await fsp.open(tmp, 'wx');
    try {
      await fh.writeFile(value, { signal });
      await fh.sync();
      await fh.close();
      await fsp.rename(tmp, file);
    } catch (err) {
      await fh.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      await fsp.unlink(this.file(key));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }
}
