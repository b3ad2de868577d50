import type { FastifyReply } from 'fastify';
import { isTerminal } from '@hearth/core';
import type { ServerContext } from '../context.ts';

/**
 * Streams a run's log from `offset` until the run ends (or at once, without `follow`).
 * Raw mode sends the exact bytes (chunked), so a client resumes at offset + bytes received.
 * SSE mode sends events whose `id` is the next offset (so `Last-Event-ID` resumes exactly) and
 * whose data is `{"offset":N,"data":"<base64>"}`: SSE itself cannot carry arbitrary bytes.
 * At the end, SSE sends an `event: end`.
 */
export async function streamLog(
  ctx: ServerContext,
  reply: FastifyReply,
  id: string,
  startOffset: number,
  opts: { sse: boolean; follow: boolean },
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': opts.sse ? 'text/event-stream' : 'application/octet-stream',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  let offset = startOffset;
  let lastWrite = Date.now();
  try {
    while (!abort.signal.aborted) {
      const status = (await ctx.runs.row(id)).status;
      // Read after reading the status: if the run was over, everything it wrote is on disk.
      for (;;) {
        const data = ctx.logs.read(id, offset, 1 << 20);
        if (data.length === 0) break;
        offset += data.length;
        const ok = opts.sse
          ? res.write(`id: ${offset}\ndata: ${JSON.stringify({ offset: offset - data.length, data: data.toString('base64') })}\n\n`)
          : res.write(data);
        lastWrite = Date.now();
        if (!ok) await new Promise((r) => res.once('drain', r));
      }
      if (isTerminal(status as never) || !opts.follow) break;
      await ctx.logs.waitForData(id, 15_000, abort.signal);
      if (opts.sse && Date.now() - lastWrite > 10_000) {
        res.write(': keep-alive\n\n');
        lastWrite = Date.now();
      }
    }
    if (opts.sse && !abort.signal.aborted) res.write(`event: end\nid: ${offset}\ndata: {}\n\n`);
  } finally {
    res.end();
  }
}
