import { Readable } from 'node:stream';
import {
  type BlobStore,
  type BlobStoreStats,
  type Digest,
  type GetStreamOptions,
  assertValidDigest,
  DigestMismatchError,
  isEmptyDigest,
  verifyBuffer,
} from './blobStore.ts';

/**
 * A BlobStore on the other side of HTTP: how executors reach the server's store (snapshot chunks,
 * manifests) without ever touching its disk. Reads are verified here too, so a corrupted transfer
 * is a miss, never bad bytes. Routes: see packages/server/src/routes/blobApi.ts.
 */
export class HttpBlobStore implements BlobStore {
  private readonly base: string;
  constructor(
    baseUrl: string,
    private readonly headers: Record<string, string> = {},
  ) {
    this.base = `${baseUrl.replace(/\/+$/, '')}/internal/v1/blobs`;
  }

  private url(d: Digest): string {
    assertValidDigest(d);
    return `${this.base}/${d.hash}/${d.sizeBytes}`;
  }

  async findMissing(digests: readonly Digest[], signal?: AbortSignal): Promise<Digest[]> {
    const missing: Digest[] = [];
    // Batches keep request bodies small for trees of many thousands of chunks.
    for (let i = 0; i < digests.length; i += 5000) {
      const batch = digests.slice(i, i + 5000);
      const res = await fetch(`${this.base}/FindMissing`, {
        method: 'POST',
        headers: { ...this.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ digests: batch.map((d) => ({ hash: d.hash, size_bytes: d.sizeBytes })) }),
        signal,
      });
      await ensureOk(res, 'FindMissing');
      const body = (await res.json()) as { missing: { hash: string; size_bytes: number }[] };
      for (const m of body.missing) missing.push({ hash: m.hash, sizeBytes: m.size_bytes });
    }
    return missing;
  }

  async get(digest: Digest, signal?: AbortSignal): Promise<Buffer | null> {
    if (isEmptyDigest(digest)) return Buffer.alloc(0);
    const res = await fetch(this.url(digest), { headers: this.headers, signal });
    if (res.status === 404) return null;
    await ensureOk(res, 'get');
    const data = Buffer.from(await res.arrayBuffer());
    try {
      verifyBuffer(digest, data);
    } catch (err) {
      if (err instanceof DigestMismatchError) return null;
      throw err;
    }
    return data;
  }

  async getStream(digest: Digest, options: GetStreamOptions = {}): Promise<Readable | null> {
    const offset = options.offset ?? 0;
    const res = await fetch(this.url(digest), {
      headers: { ...this.headers, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
      signal: options.signal,
    });
    if (res.status === 404) return null;
    await ensureOk(res, 'getStream');
    return Readable.fromWeb(res.body as never);
  }

  async put(digest: Digest, data: Buffer, signal?: AbortSignal): Promise<void> {
    verifyBuffer(digest, data);
    const res = await fetch(this.url(digest), {
      method: 'PUT',
      headers: { ...this.headers, 'content-type': 'application/octet-stream' },
      body: data,
      signal,
    });
    await ensureOk(res, 'put');
  }

  async putStream(digest: Digest, source: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<void> {
    const res = await fetch(this.url(digest), {
      method: 'PUT',
      headers: { ...this.headers, 'content-type': 'application/octet-stream' },
      body: Readable.toWeb(Readable.from(source)) as never,
      signal,
      // Node's fetch needs half-duplex for streamed request bodies.
      duplex: 'half',
    } as RequestInit);
    await ensureOk(res, 'putStream');
  }

  /** Executors never delete from the shared store; eviction is the server's business. */
  async delete(): Promise<boolean> {
    return false;
  }

  async stats(): Promise<BlobStoreStats> {
    const res = await fetch(`${this.base}/Stats`, { headers: this.headers });
    await ensureOk(res, 'stats');
    return (await res.json()) as BlobStoreStats;
  }
}

async function ensureOk(res: Response, what: string): Promise<void> {
  if (res.ok) return;
  const text = await res.text().catch(() => '');
  let message = text;
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? text;
  } catch {}
  if (res.status === 400 && /does not match its digest/.test(message)) {
    throw new Error(`blob ${what} rejected: ${message}`);
  }
  throw new Error(`blob store ${what} failed: HTTP ${res.status} ${message}`);
}

/**
 * A local cache in front of a remote store: reads are served locally when the chunk is here and
 * fetched once otherwise; writes go to the remote (the shared truth) and are kept locally too.
 * `lastFetch` counts bytes fetched vs reused, for run provenance.
 */
export class CachingBlobStore implements BlobStore {
  bytesFetched = 0;
  bytesReused = 0;

  constructor(
    readonly local: BlobStore,
    readonly remote: BlobStore,
  ) {}

  findMissing(digests: readonly Digest[], signal?: AbortSignal): Promise<Digest[]> {
    return this.remote.findMissing(digests, signal);
  }

  async get(digest: Digest, signal?: AbortSignal): Promise<Buffer | null> {
    const here = await this.local.get(digest, signal);
    if (here) {
      this.bytesReused += here.length;
      return here;
    }
    const there = await this.remote.get(digest, signal);
    if (there) {
      this.bytesFetched += there.length;
      await this.local.put(digest, there, signal).catch(() => {});
    }
    return there;
  }

  async getStream(digest: Digest, options?: GetStreamOptions): Promise<Readable | null> {
    return (await this.local.getStream(digest, options)) ?? this.remote.getStream(digest, options);
  }

  async put(digest: Digest, data: Buffer, signal?: AbortSignal): Promise<void> {
    await this.remote.put(digest, data, signal);
    await this.local.put(digest, data, signal).catch(() => {});
  }

  async putStream(digest: Digest, source: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<void> {
    await this.remote.putStream(digest, source, signal);
  }

  delete(digest: Digest, signal?: AbortSignal): Promise<boolean> {
    return this.local.delete(digest, signal);
  }

  stats(): Promise<BlobStoreStats> {
    return this.local.stats();
  }
}
