import type { Logger } from 'pino';
import type { Db } from './db/index.ts';
import type { LogStore } from './logStore.ts';
import type { RunStore } from './runStore.ts';
import type { Scheduler } from './scheduler.ts';

/** The server's object graph, built once in `startServer` and handed to each route module. */
export interface ServerContext {
  db: Db;
  runs: RunStore;
  logs: LogStore;
  scheduler: Scheduler;
  log: Logger;
  /** Where run artifacts (one tar per invocation) are kept. */
  artifactsDir: string;
  /** Address runners pass to Bazel as --remote_cache, or null when the cache is off. */
  cacheAddress: string | null;
  /** os/arch assumed for runs that do not say (the server's own). */
  defaults: { os: string; arch: string };
}
