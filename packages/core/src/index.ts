export * from './runState.ts';
export * from './runnerKey.ts';
export * from './duration.ts';
export * from './errors.ts';
export * from './secretMasker.ts';
export * from './config/index.ts';
export * from './snapshot/index.ts';
