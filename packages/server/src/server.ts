import { arch, platform } from 'node:os';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { LocalDiskStore } from '@hearth/blobstore';
import { type CacheServer, FileActionCacheStore, startCacheServer } from '@hearth/cache';
import { HearthError } from '@hearth/core';
import type { ServerContext } from './context.ts';
import { openDatabase } from './db/index.ts';
import { LogStore } from './logStore.ts';
import { RunStore } from './runStore.ts';
import { Scheduler } from './scheduler.ts';
import { registerBlobApi } from './routes/blobApi.ts';
import { registerExecutorApi } from './routes/executorApi.ts';
import { registerSnapshotApi } from './routes/snapshotApi.ts';
import { registerPages } from './routes/pages.ts';
import { registerPublicApi } from './routes/publicApi.ts';
import { registerWorkflows } from './workflows/routes.ts';

export interface ServerConfig {
  /** Holds hearth.db and logs/. */
  dataDir: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** URL users and GitHub links use to reach this server; defaults to http://host:port. */
  publicUrl?: string;
  heartbeatIntervalMs?: number;
  executorTimeoutMs?: number;
  affinityWaitMs?: number;
  logger?: Logger;
  /** The colocated REAPI cache; false turns it off. */
  cache?: { port: number; maxBytes?: number } | false;
}

export interface RunningServer {
  url: string;
  /** `grpc://host:port` of the remote cache, or null when it is off. */
  cacheAddress: string | null;
  port: number;
  app: FastifyInstance;
  ctx: ServerContext;
  close(): Promise<void>;
}

/** os/arch names as Bazel and the reference product's platform properties spell them. */
export function localPlatform(): { os: string; arch: string } {
  const a = arch();
  return { os: platform(), arch: a === 'x64' ? 'amd64' : a };
}

export async function startServer(config: ServerConfig): Promise<RunningServer> {
  const log = config.logger ?? pino({ level: process.env.HEARTH_LOG_LEVEL ?? 'info' });
  const db = await openDatabase(join(config.dataDir, 'hearth.db'));
  const app = Fastify({
    // Per-request logs only at debug: heartbeats and lease polls would flood the log otherwise.
    loggerInstance: log.child({ component: 'http' }, { level: process.env.HEARTH_HTTP_LOG_LEVEL ?? 'warn' }) as FastifyBaseLogger,
    bodyLimit: 256 << 20,
    // Close keep-alive and long-poll connections on shutdown instead of waiting for clients.
    forceCloseConnections: true,
    ajv: { customOptions: { strict: false, coerceTypes: false, removeAdditional: false } },
  });
  app.setErrorHandler((err: Error & { validation?: unknown; statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof HearthError) return reply.status(err.httpStatus).send({ code: err.code, message: err.message });
    if (err.validation) return reply.status(400).send({ code: 'invalid_argument', message: err.message });
    // Fastify's own request errors (bad JSON, wrong content type, body too large) in our vocabulary.
    if (err.statusCode && err.statusCode < 500) {
      const code = err.statusCode === 413 ? 'resource_exhausted' : err.statusCode === 404 ? 'not_found' : 'invalid_argument';
      return reply.status(err.statusCode).send({ code, message: err.message });
    }
    log.error({ err }, 'request failed');
    return reply.status(500).send({ code: 'internal', message: err.message });
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send({ code: 'not_found', message: `no route ${req.method} ${req.url}` }));

  const runs = new RunStore(db);
  const scheduler = new Scheduler(
    runs,
    {
      heartbeatIntervalMs: config.heartbeatIntervalMs ?? 1000,
      executorTimeoutMs: config.executorTimeoutMs ?? 30_000,
      affinityWaitMs: config.affinityWaitMs ?? 3000,
    },
    log.child({ component: 'scheduler' }),
  );
  const ctx: ServerContext = {
    db,
    runs,
    logs: new LogStore(join(config.dataDir, 'logs')),
    scheduler,
    log,
    artifactsDir: join(config.dataDir, 'artifacts'),
    cacheAddress: null,
    defaults: localPlatform(),
  };
  await mkdir(ctx.artifactsDir, { recursive: true });
  // One content-addressed store for the REAPI cache and snapshot chunks: one byte budget, one LRU.
  const blobs = await LocalDiskStore.open({
    rootDir: join(config.dataDir, 'cache'),
    maxBytes: (config.cache === false ? undefined : config.cache?.maxBytes) ?? 10 * 2 ** 30,
  });
  app.get('/healthz', async () => ({ ok: true }));
  registerBlobApi(app, blobs);
  registerSnapshotApi(app, ctx);
  registerPublicApi(app, ctx);
  registerExecutorApi(app, ctx);
  registerPages(app, ctx);
  registerWorkflows(app, ctx);

  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const hostForUrl = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${hostForUrl.includes(':') ? `[${hostForUrl}]` : hostForUrl}:${port}`;
  runs.publicUrl = config.publicUrl ?? url;
  let cache: CacheServer | null = null;
  if (config.cache !== false) {
    cache = await startCacheServer({
      store: blobs,
      acStore: new FileActionCacheStore(join(config.dataDir, 'cache', 'ac')),
      host: config.host,
      port: config.cache?.port ?? 0,
    });
    // Executors (and laptops) reach the cache at the same host as the server.
    ctx.cacheAddress = `grpc://${new URL(runs.publicUrl).hostname}:${cache.port}`;
  }
  await scheduler.start();
  return {
    url,
    port,
    cacheAddress: ctx.cacheAddress,
    app,
    ctx,
    async close() {
      scheduler.stop();
      await app.close();
      await cache?.close();
      await db.destroy();
    },
  };
}
