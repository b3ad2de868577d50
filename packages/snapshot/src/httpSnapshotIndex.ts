import type { Digest } from '@hearth/blobstore';
import type { SnapshotIndex, SnapshotRecord } from './snapshotIndex.ts';

interface WireRecord {
  key?: string;
  manifest_digest: { hash: string; size_bytes: number };
  created_at: string;
  size_bytes: number;
  instance: string;
  ref: string;
}

/** The server's snapshot index, as executors see it (routes in packages/server/src/routes/snapshotApi.ts). */
export class HttpSnapshotIndex implements SnapshotIndex {
  private readonly base: string;
  constructor(serverUrl: string, private readonly headers: Record<string, string> = {}) {
    this.base = `${serverUrl.replace(/\/+$/, '')}/internal/v1/snapshots`;
  }

  private async call<T>(method: string, body: unknown, signal?: AbortSignal): Promise<T> {
    const res = await fetch(`${this.base}/${method}`, {
      method: 'POST',
      headers: { ...this.headers, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });
    if (!res.ok) throw new Error(`snapshot index ${method} failed: HTTP ${res.status} ${await res.text().catch(() => '')}`);
    return (await res.json()) as T;
  }

  async get(key: string, signal?: AbortSignal): Promise<SnapshotRecord | null> {
    const { record } = await this.call<{ record: WireRecord | null }>('Get', { key }, signal);
    return record ? fromWire(record) : null;
  }

  async put(key: string, record: SnapshotRecord, signal?: AbortSignal): Promise<void> {
    await this.call('Put', {
      key,
      record: {
        manifest_digest: { hash: record.manifestDigest.hash, size_bytes: record.manifestDigest.sizeBytes },
        created_at: record.createdAt,
        size_bytes: record.sizeBytes,
        instance: record.instance,
        ref: record.ref,
      },
    }, signal);
  }

  async delete(key: string, ifManifest?: Digest, signal?: AbortSignal): Promise<boolean> {
    const r = await this.call<{ deleted: boolean }>('Delete', { key, ...(ifManifest ? { if_manifest_hash: ifManifest.hash } : {}) }, signal);
    return r.deleted;
  }

  async invalidatePrefix(): Promise<number> {
    throw new Error('invalidate snapshots through the public API (POST /api/v1/InvalidateSnapshots)');
  }

  async list(signal?: AbortSignal): Promise<(SnapshotRecord & { key: string })[]> {
    const { records } = await this.call<{ records: WireRecord[] }>('List', {}, signal);
    return records.map((r) => ({ ...fromWire(r), key: r.key! }));
  }
}

function fromWire(r: WireRecord): SnapshotRecord {
  return {
    manifestDigest: { hash: r.manifest_digest.hash, sizeBytes: r.manifest_digest.size_bytes },
    createdAt: r.created_at,
    sizeBytes: r.size_bytes,
    instance: r.instance,
    ref: r.ref,
  };
}
