export { Executor, type ExecutorConfig } from './executor.ts';
export { RunnerPool } from './runnerPool.ts';
export { BareIsolation, type Isolation } from './isolation.ts';
