import type { FastifyInstance } from 'fastify';
import { badRequest, repoInstancePrefix } from '@hearth/core';
import type { ServerContext } from '../context.ts';
import type { SnapshotsTable } from '../db/schema.ts';

/**
 * The snapshot index over HTTP (the executor's `HttpSnapshotIndex` speaks it): snapshot key →
 * manifest blob. The chunks live in the blob store (routes/blobApi.ts).
 */
export function registerSnapshotApi(app: FastifyInstance, ctx: ServerContext): void {
  const toRecord = (r: SnapshotsTable) => ({
    key: r.key,
    manifest_digest: { hash: r.manifest_hash, size_bytes: Number(r.manifest_size) },
    created_at: new Date(Number(r.created_at)).toISOString(),
    size_bytes: Number(r.size_bytes),
    instance: r.instance,
    ref: r.git_ref,
  });
  const keyOf = (body: unknown): string => {
    const key = (body as { key?: unknown })?.key;
    if (typeof key !== 'string' || key === '') throw badRequest('needs {key}');
    return key;
  };

  app.post('/internal/v1/snapshots/Get', async (req) => {
    const row = await ctx.db.selectFrom('snapshots').selectAll().where('key', '=', keyOf(req.body)).executeTakeFirst();
    return { record: row ? toRecord(row) : null };
  });

  app.post('/internal/v1/snapshots/Put', async (req) => {
    const key = keyOf(req.body);
    const r = (req.body as { record?: { manifest_digest?: { hash: string; size_bytes: number }; size_bytes?: number; instance?: string; ref?: string; created_at?: string } }).record;
    if (!r?.manifest_digest || typeof r.instance !== 'string') throw badRequest('Put needs {key, record: {manifest_digest, size_bytes, instance, ref, created_at}}');
    const row = {
      manifest_hash: r.manifest_digest.hash,
      manifest_size: r.manifest_digest.size_bytes,
      size_bytes: r.size_bytes ?? 0,
      instance: r.instance,
      git_ref: r.ref ?? '',
      created_at: r.created_at ? Date.parse(r.created_at) : Date.now(),
    };
    await ctx.db.insertInto('snapshots').values({ key, ...row }).onConflict((oc) => oc.column('key').doUpdateSet(row)).execute();
    return { ok: true };
  });

  app.post('/internal/v1/snapshots/Delete', async (req) => {
    const key = keyOf(req.body);
    const ifManifest = (req.body as { if_manifest_hash?: string }).if_manifest_hash;
    let q = ctx.db.deleteFrom('snapshots').where('key', '=', key);
    if (ifManifest) q = q.where('manifest_hash', '=', ifManifest);
    const res = await q.executeTakeFirst();
    return { deleted: Number(res.numDeletedRows) > 0 };
  });

  app.post('/internal/v1/snapshots/List', async () => {
    const rows = await ctx.db.selectFrom('snapshots').selectAll().orderBy('key').execute();
    return { records: rows.map(toRecord) };
  });

  /** "Invalidate all snapshots of this repo": every later run of it starts from a recycled runner or cold. */
  app.post('/api/v1/InvalidateSnapshots', async (req) => {
    const { repo_url } = req.body as { repo_url?: string };
    if (!repo_url) throw badRequest('InvalidateSnapshots needs {repo_url}');
    const prefix = repoInstancePrefix(repo_url);
    const res = await ctx.db
      .deleteFrom('snapshots')
      .where('instance', '>=', prefix)
      .where('instance', '<', `${prefix}\uffff`)
      .executeTakeFirst();
    return { invalidated: Number(res.numDeletedRows) };
  });
}
