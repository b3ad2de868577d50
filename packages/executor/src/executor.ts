import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, rm, symlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type HearthClient, type RunEvent, type RunnerProvenance, type Task, type Timings, ApiError } from '@hearth/api';
import type { Logger } from 'pino';
import { type StopReason, runTask } from './ciRunner.ts';
import { BareIsolation, type Isolation } from './isolation.ts';
import { LogUploader } from './logUploader.ts';
import type { WarmStateSnapshots } from './snapshots.ts';
import type { Runner } from './runner.ts';
import { RunnerPool } from './runnerPool.ts';

export interface ExecutorConfig {
  client: HearthClient;
  /** Holds runners/, the shared Bazel user root and bin/. */
  dataDir: string;
  executorId?: string;
  maxRunners?: number;
  /** Runs at once; defaults to maxRunners. */
  maxConcurrentRuns?: number;
  maxRunnerDiskBytes?: number;
  totalDiskBudgetBytes?: number;
  /** The Bazel binary runners get as `bazel` on PATH. */
  bazelPath: string;
  /** Bazel's --output_user_root for all runners (install base extracted once); default <dataDir>/bazel-user-root. */
  bazelUserRoot?: string;
  isolation?: Isolation;
  /** Portable warm state (needs an isolation with fixed in-runner paths); off when absent. */
  snapshots?: WarmStateSnapshots;
  /** After SIGINT, how long a cancelled/timed-out step gets before SIGKILL. */
  killGraceMs?: number;
  os: string;
  arch: string;
  log: Logger;
}

interface ActiveRun {
  task: Task;
  abort: AbortController;
}

/**
 * The executor's work loop: registers with the server, heartbeats (carrying its idle warm runner
 * keys for affinity routing, and learning which runs to cancel), long-polls for tasks and runs
 * each on a runner from its pool. It needs nothing from the server but HTTP.
 */
export class Executor {
  readonly id: string;
  readonly pool: RunnerPool;
  private readonly active = new Map<string, ActiveRun>();
  private readonly stopping = new AbortController();
  private heartbeatIntervalMs = 1000;
  private loops: Promise<void>[] = [];
  private readonly maxConcurrent: number;
  private readonly binDir: string;
  private registered = false;
  /** The server's REAPI cache, learnt at registration. */
  private cacheAddress: string | null = null;
  /** Shared Bazel output_user_root: the install base is extracted once per executor, not per runner. */
  private readonly bazelUserRoot: string;
  private readonly isolation: Isolation;
  private readonly snapshots: WarmStateSnapshots | undefined;
  /** `<runner key>@<ref>` of snapshots saved or restored here: their chunks are in the local cache. */
  private readonly heldSnapshotRefs = new Set<string>();

  constructor(private readonly cfg: ExecutorConfig) {
    this.id = cfg.executorId ?? stableExecutorId(cfg.dataDir);
    const maxRunners = cfg.maxRunners ?? 4;
    this.maxConcurrent = Math.min(cfg.maxConcurrentRuns ?? maxRunners, maxRunners);
    this.binDir = join(cfg.dataDir, 'bin');
    this.bazelUserRoot = cfg.bazelUserRoot ?? join(cfg.dataDir, 'bazel-user-root');
    this.isolation = cfg.isolation ?? new BareIsolation();
    this.snapshots = cfg.snapshots;
    this.pool = new RunnerPool({
      rootDir: join(cfg.dataDir, 'runners'),
      isolation: this.isolation,
      maxRunners,
      maxRunnerDiskBytes: cfg.maxRunnerDiskBytes ?? 20 * 2 ** 30,
      totalDiskBudgetBytes: cfg.totalDiskBudgetBytes ?? 100 * 2 ** 30,
      log: cfg.log.child({ component: 'runner-pool' }),
    });
  }

  async start(): Promise<void> {
    await mkdir(this.binDir, { recursive: true });
    await replaceSymlink(join(this.binDir, 'bazel'), this.cfg.bazelPath);
    await replaceSymlink(join(this.binDir, 'hearth-collect-outputs'), fileURLToPath(new URL('../tools/hearth-collect-outputs.mjs', import.meta.url)));
    await this.pool.cleanStale();
    await this.register();
    this.loops = [this.heartbeatLoop(), this.leaseLoop()];
    this.cfg.log.info({ executor: this.id, maxRunners: this.maxConcurrent }, 'executor started');
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    for (const run of this.active.values()) run.abort.abort({ kind: 'lost', why: 'the executor is shutting down' } satisfies StopReason);
    await Promise.allSettled(this.loops);
    await this.pool.shutdown();
  }

  private async register(): Promise<void> {
    for (let backoff = 250; !this.stopping.signal.aborted; backoff = Math.min(backoff * 2, 5000)) {
      try {
        const res = await this.cfg.client.registerExecutor(
          { executor_id: this.id, hostname: hostname(), os: this.cfg.os, arch: this.cfg.arch, max_runners: this.maxConcurrent, version: '0.1.0' },
          this.stopping.signal,
        );
        this.heartbeatIntervalMs = res.heartbeat_interval_ms;
        this.cacheAddress = res.cache_address;
        this.registered = true;
        return;
      } catch (err) {
        if (this.stopping.signal.aborted) return;
        this.cfg.log.warn({ err: (err as Error).message }, 'cannot register with server; retrying');
        await sleep(backoff, this.stopping.signal);
      }
    }
  }

  private state() {
    return {
      executor_id: this.id,
      idle_runner_keys: this.pool.idleKeys(),
      active_invocations: [...this.active.keys()],
      free_slots: Math.max(0, this.maxConcurrent - this.active.size),
      ...(this.snapshots ? { snapshot_refs: [...this.heldSnapshotRefs] } : {}),
    };
  }

  /** One heartbeat now (e.g. right after a runner became idle), besides the periodic ones. */
  private async heartbeatOnce(): Promise<void> {
    try {
      const res = await this.cfg.client.heartbeat(this.state(), this.stopping.signal);
      this.cancelRuns(res.cancel_invocations);
    } catch {
      // the periodic heartbeat will carry it
    }
  }

  /** Stops the runs the server says were cancelled (answered on every heartbeat). */
  private cancelRuns(invocationIds: string[]): void {
    for (const id of invocationIds) this.active.get(id)?.abort.abort({ kind: 'cancelled' } satisfies StopReason);
  }

  private async heartbeatLoop(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      try {
        const res = await this.cfg.client.heartbeat(this.state(), this.stopping.signal);
        if (res.reregister) {
          this.registered = false;
          // Declared lost: the server already requeued or failed our runs, so stop them.
          for (const run of this.active.values()) run.abort.abort({ kind: 'lost', why: 'the server declared this executor lost' } satisfies StopReason);
          await this.register();
        }
        this.cancelRuns(res.cancel_invocations);
      } catch (err) {
        if (!this.stopping.signal.aborted) this.cfg.log.warn({ err: (err as Error).message }, 'heartbeat failed');
      }
      await sleep(this.heartbeatIntervalMs, this.stopping.signal);
    }
  }

  private async leaseLoop(): Promise<void> {
    let backoff = 250;
    while (!this.stopping.signal.aborted) {
      if (this.active.size >= this.maxConcurrent || !this.registered) {
        await sleep(50, this.stopping.signal);
        continue;
      }
      try {
        const { task } = await this.cfg.client.lease({ ...this.state(), wait_ms: 10_000 }, this.stopping.signal);
        backoff = 250;
        if (task) this.startRun(task);
      } catch (err) {
        if (this.stopping.signal.aborted) return;
        if (err instanceof ApiError && err.code === 'unregistered') await this.register();
        else {
          this.cfg.log.warn({ err: (err as Error).message }, 'lease failed; retrying');
          await sleep(backoff, this.stopping.signal);
          backoff = Math.min(backoff * 2, 5000);
        }
      }
    }
  }

  private startRun(task: Task): void {
    const abort = new AbortController();
    this.active.set(task.invocation_id, { task, abort });
    this.execute(task, abort)
      .catch((err) => this.cfg.log.error({ err, invocation: task.invocation_id }, 'run crashed'))
      .finally(() => this.active.delete(task.invocation_id));
  }

  private async execute(task: Task, abort: AbortController): Promise<void> {
    const log = this.cfg.log.child({ invocation: task.invocation_id });
    const ids = { executorId: this.id, invocationId: task.invocation_id, attempt: task.attempt };
    const lostOwnership = () => abort.abort({ kind: 'lost', why: 'the server reassigned this run' } satisfies StopReason);
    const uploader = new LogUploader(this.cfg.client, ids, task.secret_values, 100, lostOwnership);
    const report = (event: RunEvent) => this.report(ids, event, abort.signal);
    const timings: Timings = {};
    const t0 = Date.now();
    let timeout: NodeJS.Timeout | undefined;
    if (task.timeout_ms) {
      timeout = setTimeout(() => abort.abort({ kind: 'timed_out', timeoutMs: task.timeout_ms! } satisfies StopReason), task.timeout_ms);
    }
    const acquired = await this.pool.acquire(task.runner_key, { clean: task.clean });
    const { runner } = acquired;
    let released = false;
    try {
      await runner.resetArtifacts();
      await runner.writeBazelrc({
        bazelUserRoot: this.isolation.bazelUserRootInside(this.bazelUserRoot),
        // A run opts out of the shared cache with the platform property remote-cache=false.
        remoteCache: task.platform_properties['remote-cache'] === 'false' ? null : this.cacheAddress,
        metadata: { HEARTH_INVOCATION_ID: task.invocation_id, REPO_URL: task.repo, COMMIT_SHA: task.commit_sha ?? '', BRANCH_NAME: task.branch ?? '' },
      });
      const provenance: RunnerProvenance = {
        kind: acquired.recycled ? 'recycled' : 'cold',
        runner_id: runner.id,
        executor_id: this.id,
        reason: acquired.reason,
        previous_runs: runner.runs,
      };
      // A cold runner starts from the best snapshot of its key (branch → PR base → default branch).
      if (!acquired.recycled && this.snapshots && !task.clean) {
        const snap = await this.snapshots.restore(task, runner, abort.signal);
        provenance.snapshot = snap;
        timings.restore_ms = snap.restore_ms;
        if (snap.level) {
          this.heldSnapshotRefs.add(`${task.runner_key}@${snap.ref}`);
          provenance.kind = 'snapshot';
          provenance.reason = `restored the ${snap.level} snapshot of ${snap.ref} (${snap.bytes_fetched} bytes fetched, ${snap.bytes_reused_locally} reused locally, ${snap.restore_ms} ms); ${acquired.reason}`;
        } else {
          provenance.reason = `${acquired.reason}; no snapshot: ${snap.attempts.map((a) => a.reason ?? a.outcome).join('; ') || 'no key to look up'}`;
        }
      }
      timings.runner_acquire_ms = Date.now() - t0;
      uploader.write(Buffer.from(`\x1b[36m[hearth]\x1b[0m runner ${runner.id} on executor ${this.id}: ${provenance.kind === 'recycled' ? '' : `${provenance.kind}: `}${provenance.reason}\n`));
      await report({ type: 'started', runner: provenance });
      const outcome = await runTask(
        {
          task,
          runner,
          signal: abort.signal,
          log: (b) => uploader.write(b),
          onStepStarted: (index) => report({ type: 'step_started', index }),
          binDir: this.isolation.binDirInside(this.binDir),
          killGraceMs: this.cfg.killGraceMs ?? 5000,
        },
        timings,
      );
      clearTimeout(timeout);
      if (!abort.signal.aborted) await this.uploadArtifacts(runner, ids, (b) => uploader.write(b));
      uploader.write(Buffer.from(`\x1b[36m[hearth]\x1b[0m ${outcome.status}: ${outcome.reason}\n`));
      // The result is reported as soon as the log is complete; runner cleanup happens after.
      await uploader.close();
      const lost = abort.signal.aborted && (abort.signal.reason as StopReason).kind === 'lost';
      // Back in the pool before the result is reported: whoever runs next (e.g. the same
      // developer's next `hearth remote`) finds this runner idle and warm, and the server hears
      // about it through an immediate heartbeat.
      const keep = outcome.keepRunner && !lost;
      // Saving needs the runner to itself, so it stays busy until its state is captured.
      const mightSave = Boolean(this.snapshots) && keep && outcome.status === 'succeeded';
      if (!mightSave) {
        this.pool.giveBack(runner, { keep, reason: outcome.discardReason || 'the run lost its owner' });
        released = true;
        if (keep) await this.heartbeatOnce();
      }
      if (!lost) {
        await report({
          type: 'finished',
          status: outcome.status,
          exit_code: outcome.exitCode,
          reason: outcome.reason,
          failed_step: outcome.failedStep,
          timings: outcome.timings,
        });
      }
      if (mightSave) {
        const save = await this.snapshots!.save(task, runner, outcome.status, provenance.snapshot?.level ?? null, this.stopping.signal);
        await report({ type: 'snapshot_saved', save });
        if (save.saved && task.branch) this.heldSnapshotRefs.add(`${task.runner_key}@${task.branch}`);
        log.info({ save }, 'snapshot save');
        this.pool.giveBack(runner, { keep, reason: '' });
        released = true;
        await this.heartbeatOnce();
      }
      log.info({ status: outcome.status, exitCode: outcome.exitCode, keep }, 'run finished');
      await this.pool.settle(runner);
    } catch (err) {
      clearTimeout(timeout);
      if (!released) await this.pool.release(runner, { keep: false, reason: `internal error: ${(err as Error).message}` });
      throw err;
    }
  }

  /** Ships what the steps left in $HEARTH_ARTIFACTS_DIR (e.g. fetched outputs) as one tar. */
  private async uploadArtifacts(runner: Runner, ids: { executorId: string; invocationId: string; attempt: number }, log: (b: Buffer) => void): Promise<void> {
    if ((await readdir(runner.artifactsDir)).length === 0) return;
    const chunks: Buffer[] = [];
    const r = await runner.agent.exec(['tar', '-C', runner.inside.artifactsDir, '-cf', '-', '.'], { cwd: runner.inside.dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, onOutput: (b) => chunks.push(b) });
    if (r.code !== 0) {
      log(Buffer.from(`\x1b[36m[hearth]\x1b[0m could not archive artifacts (tar exited ${r.code})\n`));
      return;
    }
    try {
      await this.cfg.client.uploadArtifacts({ executor_id: ids.executorId, invocation_id: ids.invocationId, attempt: ids.attempt }, Buffer.concat(chunks));
    } catch (err) {
      log(Buffer.from(`\x1b[36m[hearth]\x1b[0m could not upload artifacts: ${(err as Error).message}\n`));
    }
  }

  /** Sends a run event, retrying through server restarts; gives up only if the run is no longer ours. */
  private async report(ids: { executorId: string; invocationId: string; attempt: number }, event: RunEvent, signal: AbortSignal): Promise<void> {
    for (let backoff = 200; ; backoff = Math.min(backoff * 2, 5000)) {
      try {
        await this.cfg.client.updateRun({ executor_id: ids.executorId, invocation_id: ids.invocationId, attempt: ids.attempt, event });
        return;
      } catch (err) {
        if (err instanceof ApiError && (err.code === 'stale' || err.code === 'not_found')) {
          this.active.get(ids.invocationId)?.abort.abort({ kind: 'lost', why: 'the server reassigned this run' } satisfies StopReason);
          return;
        }
        if (this.stopping.signal.aborted || (signal.aborted && event.type !== 'finished')) return;
        await sleep(backoff, this.stopping.signal);
      }
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The executor's id, kept in its data dir so a restarted executor comes back under the same name
 * and the server can settle the runs it lost at once.
 */
function stableExecutorId(dataDir: string): string {
  const file = join(dataDir, 'executor-id');
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (id) return id;
  } catch {}
  const id = `${hostname()}-${randomBytes(3).toString('hex')}`;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${id}\n`);
  return id;
}

async function replaceSymlink(link: string, target: string): Promise<void> {
  if (existsSync(link)) await rm(link);
  await symlink(target, link);
}
