export {
  startCacheServer,
  REQUEST_METADATA_HEADER,
  type CacheServer,
  type CacheServerOptions,
  type CacheServerStats,
  type CacheLogger,
} from './cacheServer.ts';
export {
  type ActionCacheStore,
  MemoryActionCacheStore,
  FileActionCacheStore,
  actionCacheKey,
} from './actionCacheStore.ts';
export type { UploadManagerOptions } from './uploads.ts';
export { parseReadResource, parseWriteResource, type ReadResource, type WriteResource } from './resourceName.ts';
