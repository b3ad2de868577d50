import type { Readable } from 'node:stream';
import { type BlobStore, type Digest, BlobStoreError, isValidDigest } from '@hearth/blobstore';
import type { FastifyInstance } from 'fastify';
import { HearthError, badRequest, notFound } from '@hearth/core';

/**
 * The server's blob store over HTTP, for executors (snapshot chunks and manifests): they upload
 * only what FindMissing reports and fetch only chunks they do not hold. Every upload is verified
 * against its digest before it becomes visible.
 */
export function registerBlobApi(app: FastifyInstance, store: BlobStore): void {
  const digestFrom = (p: { hash: string; size: string }): Digest => {
    const d = { hash: p.hash, sizeBytes: Number(p.size) };
    if (!isValidDigest(d)) throw badRequest(`invalid digest ${p.hash}/${p.size}: need 64 lowercase hex characters and a size`);
    return d;
  };

  app.post('/internal/v1/blobs/FindMissing', async (req) => {
    const body = req.body as { digests?: { hash: string; size_bytes: number }[] };
    if (!Array.isArray(body?.digests)) throw badRequest('FindMissing needs {digests: [{hash, size_bytes}]}');
    const digests = body.digests.map((d) => digestFrom({ hash: d.hash, size: String(d.size_bytes) }));
    const missing = await store.findMissing(digests);
    return { missing: missing.map((d) => ({ hash: d.hash, size_bytes: d.sizeBytes })) };
  });

  app.get('/internal/v1/blobs/Stats', async () => store.stats());

  app.get('/internal/v1/blobs/:hash/:size', async (req, reply) => {
    const digest = digestFrom(req.params as { hash: string; size: string });
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    const stream = await store.getStream(digest, { offset: range ? Number(range[1]) : 0 });
    if (!stream) throw notFound(`blob ${digest.hash}/${digest.sizeBytes} is not in the store`);
    reply.type('application/octet-stream');
    return reply.send(stream);
  });

  // Uploads stream straight into the store (which verifies while writing); no buffering here.
  app.register(async (scope) => {
    scope.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    scope.put('/internal/v1/blobs/:hash/:size', { bodyLimit: Number.MAX_SAFE_INTEGER }, async (req) => {
      const digest = digestFrom(req.params as { hash: string; size: string });
      try {
        await store.putStream(digest, req.body as Readable);
      } catch (err) {
        if (err instanceof BlobStoreError) throw new HearthError(err.code, err.message, err.code === 'blob_too_large' ? 507 : 400);
        throw err;
      }
      return { ok: true };
    });
  });
}
