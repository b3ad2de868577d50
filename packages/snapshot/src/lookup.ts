/**
 * Putting keys, index and restore together: try each candidate key in lookup order and restore the
 * first usable snapshot, recording why every other candidate was passed over (for the run's provenance:
 * "restored from the default branch because the branch had none and the base snapshot was evicted").
 */
import type { BlobStore } from '@hearth/blobstore';
import type { SnapshotLevel } from '@hearth/core';
import { type RestoreStats, type SaveResult, SnapshotUnavailableError, restoreSnapshot } from './snapshot.ts';
import type { SnapshotIndex, SnapshotRecord } from './snapshotIndex.ts';

export interface LookupCandidate {
  level: SnapshotLevel;
  ref: string;
  key: string;
}

export interface RestoreAttempt extends LookupCandidate {
  outcome: 'restored' | 'not_found' | 'stale' | 'unavailable';
  /** Why the candidate was skipped (absent when restored). */
  reason?: string;
  durationMs: number;
}

export interface RestoreFirstAvailableOptions {
  /** In lookup order, e.g. `lookupKeys(...)` from @hearth/core. */
  candidates: readonly LookupCandidate[];
  index: SnapshotIndex;
  store: BlobStore;
  destDir: string;
  signal?: AbortSignal;
  replace?: boolean;
  /** Fallback snapshots (base/default level) older than this are not used. Default: no limit. */
  maxFallbackAgeMs?: number;
  /**
   * Remove an index entry whose snapshot turned out to be missing or corrupt (not on a transient store
   * error), so later runs don't try it again. Default true.
   */
  dropUnavailable?: boolean;
  now?: () => number;
}

export interface RestoreFirstAvailableResult {
  /** The snapshot restored, or null: start cold. */
  matched: (LookupCandidate & { record: SnapshotRecord; stats: RestoreStats }) | null;
  attempts: RestoreAttempt[];
}

export async function restoreFirstAvailable(opts: RestoreFirstAvailableOptions): Promise<RestoreFirstAvailableResult> {
  const now = opts.now ?? Date.now;
  const attempts: RestoreAttempt[] = [];
  for (const c of opts.candidates) {
    opts.signal?.throwIfAborted();
    const t0 = performance.now();
    const done = (outcome: RestoreAttempt['outcome'], reason?: string) =>
      attempts.push({ ...c, outcome, ...(reason === undefined ? {} : { reason }), durationMs: performance.now() - t0 });
    const record = await opts.index.get(c.key, opts.signal);
    if (!record) {
      done('not_found', `no snapshot for ${c.level} ref ${c.ref}`);
      continue;
    }
    if (c.level !== 'branch' && opts.maxFallbackAgeMs !== undefined) {
      const ageMs = now() - Date.parse(record.createdAt);
      if (ageMs > opts.maxFallbackAgeMs) {
        done('stale', `${c.level} snapshot of ${c.ref} is ${Math.round(ageMs / 1000)} s old (limit ${Math.round(opts.maxFallbackAgeMs / 1000)} s)`);
        continue;
      }
    }
    try {
      const stats = await restoreSnapshot(record.manifestDigest, opts.store, opts.destDir, {
        signal: opts.signal,
        replace: opts.replace,
      });
      done('restored');
      return { matched: { ...c, record, stats }, attempts };
    } catch (err) {
      if (!(err instanceof SnapshotUnavailableError)) throw err;
      done('unavailable', `${err.reason}: ${err.message}`);
      if ((opts.dropUnavailable ?? true) && err.reason !== 'store_error') {
        await opts.index.delete(c.key, record.manifestDigest, opts.signal);
      }
    }
  }
  return { matched: null, attempts };
}

/** Records a saved snapshot under its write key. */
export async function recordSnapshot(
  index: SnapshotIndex,
  key: string,
  what: { instance: string; ref: string },
  saved: SaveResult,
  signal?: AbortSignal,
): Promise<SnapshotRecord> {
  const record: SnapshotRecord = {
    manifestDigest: saved.manifestDigest,
    createdAt: new Date().toISOString(),
    sizeBytes: saved.stats.bytes,
    instance: what.instance,
    ref: what.ref,
  };
  await index.put(key, record, signal);
  return record;
}
