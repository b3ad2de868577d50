import { statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { HearthClient } from '@hearth/api';
import { CachingBlobStore, HttpBlobStore, LocalDiskStore } from '@hearth/blobstore';
import { isSavePolicy, SAVE_POLICIES } from '@hearth/core';
import { BareIsolation, Executor, SandboxIsolation, WarmStateSnapshots } from '@hearth/executor';
import { HttpSnapshotIndex } from '@hearth/snapshot';
import { localPlatform, startServer } from '@hearth/server';
import pino, { type Logger } from 'pino';
import { findBazel } from './bazelPath.ts';

export function makeLogger(): Logger {
  // Logs go to stderr so stdout stays for what the user asked to see (URLs, results).
  return pino({ level: process.env.HEARTH_LOG_LEVEL ?? 'info' }, pino.destination(2));
}

export interface ExecutorFlags {
  maxRunners: number;
  maxRunnerDiskGb: number;
  diskBudgetGb: number;
  bazel?: string;
  bazelUserRoot?: string;
  killGraceMs: number;
  isolation: string;
  snapshots: boolean;
  snapshotSavePolicy: string;
  chunkCacheGb: number;
}

export async function makeExecutor(serverUrl: string, dataDir: string, flags: ExecutorFlags, log: Logger, executorId?: string): Promise<Executor> {
  const bazelUserRoot = resolve(flags.bazelUserRoot ?? join(dataDir, 'bazel-user-root'));
  if (flags.isolation !== 'bare' && flags.isolation !== 'sandbox') throw new Error(`--isolation must be bare or sandbox, got ${JSON.stringify(flags.isolation)}`);
  const isolation = flags.isolation === 'sandbox' ? new SandboxIsolation(bazelUserRoot, join(resolve(dataDir), 'bin')) : new BareIsolation();
  let snapshots: WarmStateSnapshots | undefined;
  if (flags.snapshots) {
    if (flags.isolation !== 'sandbox') throw new Error('--snapshots needs --isolation sandbox: a restored output base must find its files at the same path');
    if (!isSavePolicy(flags.snapshotSavePolicy)) throw new Error(`--snapshot-save-policy must be one of ${SAVE_POLICIES.join(', ')}`);
    const local = await LocalDiskStore.open({ rootDir: join(resolve(dataDir), 'chunk-cache'), maxBytes: flags.chunkCacheGb * 2 ** 30 });
    const bazel = findBazel(flags.bazel);
    snapshots = new WarmStateSnapshots({
      store: new CachingBlobStore(local, new HttpBlobStore(serverUrl)),
      index: new HttpSnapshotIndex(serverUrl),
      savePolicy: flags.snapshotSavePolicy,
      // The Bazel binary by name and size (a cheap version fingerprint), not by where it is installed.
      runnerConfig: { isolation: isolation.name, runnerPath: isolation.runnerPathInside(''), bazel: `${basename(bazel)}:${statSync(bazel).size}`, ...localPlatform() },
    });
  }
  return new Executor({
    isolation,
    snapshots,
    client: new HearthClient({ baseUrl: serverUrl }),
    dataDir: resolve(dataDir),
    executorId,
    maxRunners: flags.maxRunners,
    maxRunnerDiskBytes: flags.maxRunnerDiskGb * 2 ** 30,
    totalDiskBudgetBytes: flags.diskBudgetGb * 2 ** 30,
    bazelPath: findBazel(flags.bazel),
    bazelUserRoot,
    killGraceMs: flags.killGraceMs,
    ...localPlatform(),
    log: log.child({ component: 'executor' }),
  });
}

/** Stops daemons on SIGINT/SIGTERM: a second signal exits at once. */
export function onShutdown(fn: () => Promise<void>): void {
  let stopping = false;
  const handler = (sig: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write(`\nhearth: ${sig} received, shutting down (again to force)\n`);
    fn().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`hearth: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}

export { startServer };
