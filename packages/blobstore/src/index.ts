export * from './blobStore.ts';
export { LocalDiskStore, type LocalDiskStoreOptions, type VerifyPolicy } from './localDiskStore.ts';
export { HttpBlobStore, CachingBlobStore } from './httpBlobStore.ts';
