export { Executor, type ExecutorConfig } from './executor.ts';
export { RunnerPool } from './runnerPool.ts';
export { BareIsolation, SandboxIsolation, type Isolation } from './isolation.ts';
export { WarmStateSnapshots } from './snapshots.ts';
