import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotProvenance, SnapshotSave, Task } from '@hearth/api';
import type { BlobStore, CachingBlobStore } from '@hearth/blobstore';
import {
  type RunState,
  type SavePolicy,
  type SnapshotLevel,
  lookupKeys,
  runnerConfigHash,
  shouldSave,
  snapshotInstance,
  writeKeyFor,
} from '@hearth/core';
import { type SnapshotIndex, recordSnapshot, restoreFirstAvailable, saveSnapshot } from '@hearth/snapshot';
import type { Runner } from './runner.ts';

/** What of a runner a snapshot holds: the checkout and Bazel's output base, minus live server files. */
const SNAPSHOT_ROOTS = ['repo', 'output-base'];
function excludeFromSnapshot(rel: string): boolean {
  const top = rel.split('/')[0]!;
  if (rel !== '' && !SNAPSHOT_ROOTS.includes(top)) return true;
  // The running Bazel server's socket, pid files, lock, logs and sandbox dirs: meaningless anywhere else.
  return (
    rel === 'output-base/server' ||
    rel === 'output-base/lock' ||
    rel === 'output-base/sandbox' ||
    rel.startsWith('output-base/java.log')
  );
}

export interface WarmStateSnapshotsOptions {
  store: CachingBlobStore | BlobStore;
  index: SnapshotIndex;
  savePolicy: SavePolicy;
  /** Everything about the runner that a restored output base depends on (isolation, paths, Bazel, os/arch). */
  runnerConfig: Record<string, string>;
}

/**
 * Portable warm state: after a clean run the runner's checkout and output base are saved as
 * content-addressed chunks under the run's branch key; a cold runner elsewhere restores the best
 * available key (branch → PR base → default branch) instead of starting from nothing.
 */
export class WarmStateSnapshots {
  private readonly configHash: string;
  constructor(private readonly opts: WarmStateSnapshotsOptions) {
    this.configHash = runnerConfigHash(opts.runnerConfig);
  }

  private base(task: Task) {
    // The runner key already folds in repo, workflow action and platform: one lineage per key.
    return { instance: snapshotInstance(task.repo, task.runner_key), platformProperties: task.platform_properties, runnerConfigHash: this.configHash };
  }

  /** Restores the best snapshot into a fresh runner; never throws for a missing or corrupt snapshot. */
  async restore(task: Task, runner: Runner, signal?: AbortSignal): Promise<SnapshotProvenance> {
    const t0 = Date.now();
    const candidates = lookupKeys(this.base(task), {
      branch: task.branch ?? '',
      prBaseBranch: task.pull_request?.base_branch ?? null,
      defaultBranch: task.default_branch ?? '',
    });
    const caching = this.opts.store as Partial<CachingBlobStore>;
    const before = { fetched: caching.bytesFetched ?? 0, reused: caching.bytesReused ?? 0 };
    const staging = join(runner.dir, 'restore');
    const result = await restoreFirstAvailable({ candidates, index: this.opts.index, store: this.opts.store, destDir: staging, signal, replace: true });
    if (result.matched) {
      for (const d of SNAPSHOT_ROOTS) {
        await rm(join(runner.dir, d), { recursive: true, force: true });
        await rename(join(staging, d), join(runner.dir, d)).catch(async () => mkdir(join(runner.dir, d), { recursive: true }));
      }
    }
    await rm(staging, { recursive: true, force: true });
    return {
      level: result.matched?.level ?? null,
      ref: result.matched?.ref ?? null,
      manifest: result.matched ? result.matched.record.manifestDigest.hash : null,
      restore_ms: Date.now() - t0,
      bytes_fetched: (caching.bytesFetched ?? 0) - before.fetched,
      bytes_reused_locally: (caching.bytesReused ?? 0) - before.reused,
      attempts: result.attempts.map((a) => ({ level: a.level, ref: a.ref, outcome: a.outcome, ...(a.reason ? { reason: a.reason } : {}) })),
    };
  }

  /** Saves the runner's warm state if the policy allows; any failure is reported, never thrown. */
  async save(task: Task, runner: Runner, status: RunState, matchedLevel: SnapshotLevel | null, signal?: AbortSignal): Promise<SnapshotSave> {
    const decision = shouldSave(this.opts.savePolicy, {
      trusted: task.trusted !== false,
      status,
      branch: task.branch ?? '',
      defaultBranch: task.default_branch ?? '',
      matchedLevel,
    });
    if (!decision.save) return { saved: false, why: decision.why };
    const key = writeKeyFor(this.base(task), task.branch ?? '');
    if (!key) return { saved: false, why: 'run has no branch: no key to write' };
    const t0 = Date.now();
    try {
      const saved = await saveSnapshot(runner.dir, this.opts.store, { exclude: excludeFromSnapshot, signal });
      await recordSnapshot(this.opts.index, key, { instance: this.base(task).instance, ref: task.branch ?? '' }, saved, signal);
      return {
        saved: true,
        why: decision.why,
        bytes_uploaded: saved.stats.bytesUploaded,
        bytes_total: saved.stats.bytes,
        duration_ms: Date.now() - t0,
      };
    } catch (err) {
      return { saved: false, why: `save failed (the run's result is unaffected): ${(err as Error).message}`, duration_ms: Date.now() - t0 };
    }
  }
}
