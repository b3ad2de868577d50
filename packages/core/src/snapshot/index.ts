export * from './snapshotKey.ts';
export * from './savePolicy.ts';
