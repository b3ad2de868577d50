import type { FastifyInstance } from 'fastify';
import { badRequest, normalizeRepoUrl } from '@hearth/core';
import type { ServerContext } from '../context.ts';

/**
 * The snapshot index: snapshot key → manifest blob. Executors look keys up in fallback order
 * (branch → PR base → default branch) and record what they saved; the chunks themselves live in
 * the blob store (routes/blobApi.ts).
 */
export function registerSnapshotApi(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/internal/v1/snapshots/Lookup', async (req) => {
    const { keys } = req.body as { keys?: string[] };
    if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) throw badRequest('Lookup needs {keys: [string]}');
    if (keys.length === 0) return { entries: [] };
    const rows = await ctx.db.selectFrom('snapshots').selectAll().where('key', 'in', keys).execute();
    // In the caller's order: the first entry is the best fallback level that exists.
    const entries = keys.flatMap((k) => rows.filter((r) => r.key === k)).map((r) => ({
      key: r.key,
      manifest_hash: r.manifest_hash,
      manifest_size: Number(r.manifest_size),
      size_bytes: Number(r.size_bytes),
      created_at: new Date(Number(r.created_at)).toISOString(),
      git_ref: r.git_ref,
    }));
    return { entries };
  });

  app.post('/internal/v1/snapshots/Save', async (req) => {
    const b = req.body as { key?: string; manifest_hash?: string; manifest_size?: number; size_bytes?: number; repo?: string; git_ref?: string };
    if (!b?.key || !b.manifest_hash || typeof b.manifest_size !== 'number' || !b.repo) {
      throw badRequest('Save needs {key, manifest_hash, manifest_size, size_bytes, repo, git_ref}');
    }
    const row = {
      manifest_hash: b.manifest_hash,
      manifest_size: b.manifest_size,
      size_bytes: b.size_bytes ?? 0,
      repo: normalizeRepoUrl(b.repo),
      git_ref: b.git_ref ?? '',
      created_at: Date.now(),
    };
    await ctx.db
      .insertInto('snapshots')
      .values({ key: b.key, ...row })
      .onConflict((oc) => oc.column('key').doUpdateSet(row))
      .execute();
    return { ok: true };
  });

  app.post('/api/v1/InvalidateSnapshots', async (req) => {
    const { repo_url } = req.body as { repo_url?: string };
    if (!repo_url) throw badRequest('InvalidateSnapshots needs {repo_url}');
    const res = await ctx.db.deleteFrom('snapshots').where('repo', '=', normalizeRepoUrl(repo_url)).executeTakeFirst();
    return { invalidated: Number(res.numDeletedRows) };
  });
}
