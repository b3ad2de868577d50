import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { AppendLogRequest, ExecutorInfo, ExecutorState, LeaseRequest, UpdateRunRequest } from '@hearth/api';
import type { ServerContext } from '../context.ts';
import { HearthError } from '@hearth/core';

/** The executor protocol: executors pull work and push results; they never touch the server's disk. */
export function registerExecutorApi(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/internal/v1/executors/Register', { schema: { body: ExecutorInfo } }, async (req) => {
    return { ...(await ctx.scheduler.register(req.body as ExecutorInfo)), cache_address: ctx.cacheAddress };
  });

  app.post('/internal/v1/executors/Heartbeat', { schema: { body: ExecutorState } }, async (req) => {
    return ctx.scheduler.heartbeat(req.body as ExecutorState);
  });

  app.post('/internal/v1/executors/Lease', { schema: { body: LeaseRequest } }, async (req, reply) => {
    const abort = new AbortController();
    // The response's 'close' means the executor went away (or we answered). Not the request's:
    // an IncomingMessage emits 'close' as soon as its body has been read, which ended every
    // long poll at once and made idle executors spin on Lease.
    reply.raw.on('close', () => abort.abort());
    const task = await ctx.scheduler.lease(req.body as LeaseRequest, abort.signal);
    return { task };
  });

  app.post('/internal/v1/runs/Update', { schema: { body: UpdateRunRequest } }, async (req) => {
    const b = req.body as UpdateRunRequest;
    await ctx.scheduler.update(b.executor_id, b.invocation_id, b.attempt, b.event);
    if (b.event.type === 'finished') ctx.logs.notify(b.invocation_id);
    return { ok: true };
  });

  app.post('/internal/v1/runs/AppendLog', { schema: { body: AppendLogRequest }, bodyLimit: 64 << 20 }, async (req) => {
    const b = req.body as AppendLogRequest;
    const row = await ctx.runs.row(b.invocation_id);
    // Once a run has ended its log is complete and must not change: an executor that lost the run
    // (declared lost, then came back) may still hold the same executor id and attempt.
    if (row.executor_id !== b.executor_id || row.attempt !== b.attempt || row.status !== 'running') {
      throw new HearthError('stale', `invocation ${b.invocation_id} attempt ${b.attempt} is not running on executor ${b.executor_id}`, 409);
    }
    const next = ctx.logs.append(b.invocation_id, b.offset, Buffer.from(b.data, 'base64'));
    return { next_offset: next };
  });

  app.addContentTypeParser('application/x-tar', { parseAs: 'buffer', bodyLimit: 2 * 1024 ** 3 }, (_req, body, done) => done(null, body));
  app.post('/internal/v1/runs/UploadArtifacts', { bodyLimit: 2 * 1024 ** 3 }, async (req) => {
    const q = req.query as { executor_id?: string; invocation_id?: string; attempt?: string };
    const row = await ctx.runs.row(String(q.invocation_id));
    if (row.executor_id !== q.executor_id || row.attempt !== Number(q.attempt)) {
      throw new HearthError('stale', `invocation ${q.invocation_id} attempt ${q.attempt} does not belong to executor ${q.executor_id}`, 409);
    }
    const dest = join(ctx.artifactsDir, `${row.id}.tar`);
    await writeFile(`${dest}.tmp`, req.body as Buffer);
    await rename(`${dest}.tmp`, dest);
    return { ok: true };
  });
}
