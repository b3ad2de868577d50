// Manual testing: run a standalone cache server on a local disk store.
//   node --import tsx packages/cache/scripts/serve.ts STORE_DIR [PORT] [MAX_BYTES]
// Prints the grpc:// address; on SIGINT/SIGTERM prints the server's counters and exits.
import { LocalDiskStore } from '@hearth/blobstore';
import { FileActionCacheStore, startCacheServer } from '@hearth/cache';
import path from 'node:path';

const [rootDir, port = '0', maxBytes] = process.argv.slice(2);
if (!rootDir) {
  console.error('usage: serve.ts STORE_DIR [PORT] [MAX_BYTES]');
  process.exit(2);
}
const store = await LocalDiskStore.open({ rootDir, maxBytes: maxBytes ? Number(maxBytes) : null });
const server = await startCacheServer({
  store,
  acStore: new FileActionCacheStore(path.join(rootDir, 'ac')),
  port: Number(port),
  logger: {
    debug: (o, m) => process.env.HEARTH_CACHE_DEBUG && console.error('debug', m, JSON.stringify(o)),
    warn: (o, m) => console.error('warn', m, JSON.stringify(o)),
  },
});
console.log(server.address);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, async () => {
    console.log(JSON.stringify({ ...server.stats(), store: await store.stats() }));
    await server.close();
    process.exit(0);
  });
}
