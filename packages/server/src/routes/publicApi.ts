import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { GetLogRequest, InvocationSelector, RunRequest } from '@hearth/api';
import type { ServerContext } from '../context.ts';
import { newRunFromRequest } from '../runStore.ts';
import { isTerminal, notFound } from '@hearth/core';
import { streamLog } from './logStream.ts';

/** The public API: `POST /api/v1/<Method>` with JSON bodies, as CLI, curl and UI use it. */
export function registerPublicApi(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/v1/Run', { schema: { body: RunRequest } }, async (req, reply) => {
    const body = req.body as RunRequest;
    const id = await ctx.runs.create(newRunFromRequest(body, ctx.defaults));
    const waitUntil = body.wait_until ?? (body.async ? 'QUEUED' : 'STARTED');
    const abort = new AbortController();
    // The response's 'close' fires when the client disconnects; the request's fires once its body is read.
    reply.raw.on('close', () => abort.abort());
    if (waitUntil === 'QUEUED') return { invocation_id: id, status: 'queued', url: ctx.runs.urlFor(id) };
    const inv = await ctx.runs.waitFor(
      id,
      (i) => (waitUntil === 'COMPLETED' ? isTerminal(i.status) : i.status !== 'queued'),
      abort.signal,
    );
    return { invocation_id: id, status: inv.status, exit_code: inv.exit_code, url: inv.url };
  });

  app.post('/api/v1/GetInvocation', { schema: { body: InvocationSelector } }, async (req) => {
    return ctx.runs.get((req.body as InvocationSelector).invocation_id);
  });

  app.post('/api/v1/CancelInvocation', { schema: { body: InvocationSelector } }, async (req) => {
    const id = (req.body as InvocationSelector).invocation_id;
    await ctx.scheduler.cancel(id);
    return ctx.runs.get(id);
  });

  app.post('/api/v1/GetLog', { schema: { body: GetLogRequest } }, async (req) => {
    const body = req.body as GetLogRequest;
    const inv = await ctx.runs.get(body.invocation_id);
    const offset = body.offset ?? 0;
    const data = ctx.logs.read(body.invocation_id, offset, body.limit ?? 4 << 20);
    const nextOffset = offset + data.length;
    // complete only when the run is over AND the reader has everything.
    const complete = isTerminal(inv.status) && nextOffset >= ctx.logs.size(body.invocation_id);
    return { data: data.toString('base64'), encoding: 'base64', next_offset: nextOffset, complete };
  });

  app.get('/api/v1/invocations/:id/log', async (req, reply) => {
    const { id } = req.params as { id: string };
    const q = req.query as { offset?: string; follow?: string };
    await ctx.runs.row(id); // 404 for an unknown id, before the stream starts
    const lastEventId = req.headers['last-event-id'];
    const offset = Number(typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : (q.offset ?? 0));
    const sse = (req.headers.accept ?? '').includes('text/event-stream');
    await streamLog(ctx, reply, id, Number.isFinite(offset) && offset >= 0 ? offset : 0, { sse, follow: q.follow !== 'false' });
  });

  app.get('/api/v1/invocations/:id/artifacts.tar', async (req, reply) => {
    const { id } = req.params as { id: string };
    const row = await ctx.runs.row(id);
    const file = join(ctx.artifactsDir, `${row.id}.tar`);
    if (!existsSync(file)) throw notFound(`invocation ${id} has no artifacts (nothing was written to $HEARTH_ARTIFACTS_DIR)`);
    reply.type('application/x-tar');
    return reply.send(createReadStream(file));
  });
}
