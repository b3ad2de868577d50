export * from './fastcdc.ts';
export * from './manifest.ts';
export * from './snapshot.ts';
export * from './snapshotIndex.ts';
export * from './lookup.ts';
export * from './httpSnapshotIndex.ts';
