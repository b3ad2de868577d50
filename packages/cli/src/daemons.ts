import { resolve } from 'node:path';
import { HearthClient } from '@hearth/api';
import { Executor } from '@hearth/executor';
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
}

export function makeExecutor(serverUrl: string, dataDir: string, flags: ExecutorFlags, log: Logger, executorId?: string): Executor {
  return new Executor({
    client: new HearthClient({ baseUrl: serverUrl }),
    dataDir: resolve(dataDir),
    executorId,
    maxRunners: flags.maxRunners,
    maxRunnerDiskBytes: flags.maxRunnerDiskGb * 2 ** 30,
    totalDiskBudgetBytes: flags.diskBudgetGb * 2 ** 30,
    bazelPath: findBazel(flags.bazel),
    bazelUserRoot: flags.bazelUserRoot ? resolve(flags.bazelUserRoot) : undefined,
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
