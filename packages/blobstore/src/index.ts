export * from './blobStore.ts';
export { LocalDiskStore, type LocalDiskStoreOptions, type VerifyPolicy } from './localDiskStore.ts';
