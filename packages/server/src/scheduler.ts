import type { ExecutorInfo, ExecutorState, HeartbeatResponse, RunEvent, Task } from '@hearth/api';
import { HearthError } from '@hearth/core';
import type { Logger } from 'pino';
import type { RunSpec, RunStore } from './runStore.ts';
import type { InvocationsTable } from './db/schema.ts';

export interface SchedulerOptions {
  heartbeatIntervalMs: number;
  /** An executor silent for this long is lost: its runs are requeued or failed. */
  executorTimeoutMs: number;
  /**
   * How long a queued run may wait for a busy-free executor that holds an idle warm runner for
   * its key before any executor may take it cold.
   */
  affinityWaitMs: number;
}

/**
 * The queue lives in the invocations table (status 'queued'), so a server restart loses nothing.
 * Executors pull: `lease` hands an executor the oldest run it is the best home for. Routing:
 * a run goes to an executor that holds an idle warm runner with its RunnerKey; if some other live
 * executor holds one, the run waits up to `affinityWaitMs` for it; otherwise any executor with
 * capacity takes it.
 */
export class Scheduler {
  private reaper: NodeJS.Timeout | undefined;
  /** Set by stop(): pending long polls answer "no task" so the HTTP server can close. */
  private stopped = false;
  /** Wakes long-polling lease calls when runs are queued. */
  private readonly queueWaiters = new Set<() => void>();
  /**
   * Add to a task, as it is leased, what is never stored with the run (e.g. repository secrets and
   * tokens for workflow runs). A hook that throws fails the run with its message.
   */
  readonly taskHooks: Array<(task: Task, row: InvocationsTable) => Promise<Task>> = [];

  constructor(
    private readonly runs: RunStore,
    private readonly opts: SchedulerOptions,
    private readonly log: Logger,
  ) {
    runs.changes.on('*', () => this.wakeLeases());
  }

  private get db() {
    return this.runs.db;
  }

  async start(): Promise<void> {
    // After a server restart every executor gets a full timeout window to reach the new process.
    await this.db.updateTable('executors').set({ last_seen_at: Date.now() }).where('lost', '=', 0).execute();
    this.reaper = setInterval(() => {
      this.reapLostExecutors().catch((err) => this.log.error({ err }, 'reaping lost executors failed'));
    }, Math.max(100, Math.min(1000, this.opts.executorTimeoutMs / 4)));
    this.reaper.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.reaper);
    for (const w of this.queueWaiters) w();
  }

  private wakeLeases(): void {
    for (const w of [...this.queueWaiters]) w();
  }

  async register(info: ExecutorInfo): Promise<{ heartbeat_interval_ms: number }> {
    const now = Date.now();
    const values = {
      hostname: info.hostname,
      os: info.os,
      arch: info.arch,
      max_runners: info.max_runners,
      version: info.version,
      last_seen_at: now,
      lost: 0,
    };
    await this.db
      .insertInto('executors')
      .values({ id: info.executor_id, registered_at: now, idle_runner_keys_json: '[]', snapshot_refs_json: '[]', free_slots: info.max_runners, ...values })
      .onConflict((oc) => oc.column('id').doUpdateSet({ ...values, registered_at: now }))
      .execute();
    this.log.info({ executor: info.executor_id, host: info.hostname }, 'executor registered');
    // An executor registers when it starts: whatever it was running before (it restarted, or was
    // declared lost) is gone, so settle those runs now instead of waiting for a timeout.
    await this.failOrRequeueRunsOf(info.executor_id, `executor ${info.executor_id} restarted`);
    return { heartbeat_interval_ms: this.opts.heartbeatIntervalMs };
  }

  /** Records what the executor holds; answers with the runs it must cancel. */
  async heartbeat(state: ExecutorState): Promise<HeartbeatResponse> {
    const res = await this.db
      .updateTable('executors')
      .set({
        last_seen_at: Date.now(),
        idle_runner_keys_json: JSON.stringify(state.idle_runner_keys),
        free_slots: state.free_slots,
        ...(state.snapshot_refs ? { snapshot_refs_json: JSON.stringify(state.snapshot_refs) } : {}),
      })
      .where('id', '=', state.executor_id)
      .where('lost', '=', 0)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return { cancel_invocations: [], reregister: true };
    const cancel: string[] = [];
    if (state.active_invocations.length > 0) {
      const rows = await this.db
        .selectFrom('invocations')
        .select(['id', 'status', 'executor_id', 'cancel_requested'])
        .where('id', 'in', state.active_invocations)
        .execute();
      for (const id of state.active_invocations) {
        const r = rows.find((x) => x.id === id);
        // Cancel what the user cancelled, and anything this executor no longer owns (e.g. it was
        // declared lost and the run was requeued elsewhere): two runners must not run one run.
        if (!r || r.cancel_requested || r.executor_id !== state.executor_id || r.status !== 'running') cancel.push(id);
      }
    }
    return { cancel_invocations: cancel, reregister: false };
  }

  /** Long-poll: returns a task for this executor, or null after `waitMs`. */
  async lease(state: ExecutorState & { wait_ms: number }, signal?: AbortSignal): Promise<Task | null> {
    const deadline = Date.now() + state.wait_ms;
    const hb = await this.heartbeat(state);
    if (hb.reregister) throw new HearthError('unregistered', `executor ${state.executor_id} is not registered: register again`, 409);
    for (;;) {
      // Free slots only grow while a lease is outstanding (the executor leases only with a free slot).
      if (state.free_slots > 0) {
        const task = await this.tryClaim(state.executor_id);
        if (task) return task;
      }
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted || this.stopped) return null;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.queueWaiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        // Re-check periodically too: affinity windows expire without any event.
        const t = setTimeout(done, Math.min(left, 500));
        this.queueWaiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
      // Never claim a run for an executor that is gone: nobody would receive the task.
      if (signal?.aborted || this.stopped) return null;
      // While this call waited, the request's state aged (runners went idle, runs ended) and the
      // executor's heartbeats kept its row current: stay alive without overwriting the row.
      const touched = await this.db
        .updateTable('executors')
        .set({ last_seen_at: Date.now() })
        .where('id', '=', state.executor_id)
        .where('lost', '=', 0)
        .executeTakeFirst();
      if (Number(touched.numUpdatedRows) === 0) throw new HearthError('unregistered', `executor ${state.executor_id} is not registered: register again`, 409);
    }
  }

  private async tryClaim(executorId: string): Promise<Task | null> {
    const now = Date.now();
    const queued = await this.db
      .selectFrom('invocations')
      .selectAll()
      .where('status', '=', 'queued')
      .orderBy('queued_at')
      .limit(200)
      .execute();
    if (queued.length === 0) return null;
    // Route by what the executor last reported (lease or heartbeat), not by the lease request:
    // a long poll's request may predate the runner that just went idle.
    const me = await this.db.selectFrom('executors').select(['idle_runner_keys_json', 'snapshot_refs_json']).where('id', '=', executorId).executeTakeFirst();
    const mine = new Set(me ? (JSON.parse(me.idle_runner_keys_json) as string[]) : []);
    const mySnapshots = new Set(me ? (JSON.parse(me.snapshot_refs_json) as string[]) : []);
    const others = await this.db
      .selectFrom('executors')
      .select(['id', 'idle_runner_keys_json', 'snapshot_refs_json', 'free_slots'])
      .where('lost', '=', 0)
      .where('id', '!=', executorId)
      .where('last_seen_at', '>', now - this.opts.executorTimeoutMs)
      .execute();
    const warmElsewhere = new Set<string>();
    const snapshotsElsewhere = new Set<string>();
    for (const o of others) {
      if (o.free_slots <= 0) continue;
      for (const k of JSON.parse(o.idle_runner_keys_json) as string[]) warmElsewhere.add(k);
      for (const k of JSON.parse(o.snapshot_refs_json) as string[]) snapshotsElsewhere.add(k);
    }
    // The snapshots a run could start from, best first (its branch, the PR base, the default branch).
    const snapshotRefs = (r: (typeof queued)[number]) => {
      if (mySnapshots.size === 0 && snapshotsElsewhere.size === 0) return []; // no snapshots anywhere: skip parsing specs
      const spec = JSON.parse(r.spec_json) as RunSpec;
      return [r.branch, spec.pull_request?.base_branch, r.default_branch].filter((x): x is string => Boolean(x)).map((ref) => `${r.runner_key}@${ref}`);
    };
    const waited = (r: (typeof queued)[number]) => now - Number(r.queued_at) > this.opts.affinityWaitMs;
    // Best home first: an idle warm runner here; then this executor holding the chunks of one of
    // the run's snapshots (unless a warm runner waits elsewhere); then any run that is not waiting
    // for a warm runner or local snapshot on another executor (each waits at most affinityWaitMs).
    const pick =
      queued.find((r) => mine.has(r.runner_key)) ??
      queued.find((r) => !warmElsewhere.has(r.runner_key) && snapshotRefs(r).some((k) => mySnapshots.has(k))) ??
      queued.find((r) => (!warmElsewhere.has(r.runner_key) && !snapshotRefs(r).some((k) => snapshotsElsewhere.has(k))) || waited(r));
    if (!pick) return null;
    const attempt = pick.attempt + 1;
    const res = await this.db
      .updateTable('invocations')
      .set({
        status: 'running',
        status_reason: `assigned to executor ${executorId}`,
        executor_id: executorId,
        attempt,
        started_at: pick.started_at ?? now,
      })
      .where('id', '=', pick.id)
      .where('status', '=', 'queued')
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return null; // another executor won the race
    const timings = JSON.parse(pick.timings_json);
    timings.queued_ms = now - Number(pick.created_at);
    await this.db.updateTable('invocations').set({ timings_json: JSON.stringify(timings) }).where('id', '=', pick.id).execute();
    this.runs.emit(pick.id);
    this.log.info({ invocation: pick.id, executor: executorId, warm: mine.has(pick.runner_key) }, 'run leased');
    let task = toTask(pick, attempt);
    try {
      for (const hook of this.taskHooks) task = await hook(task, pick);
    } catch (err) {
      await this.runs.finish(pick.id, { status: 'failed', reason: `could not prepare the run: ${(err as Error).message}`, exitCode: null });
      return null;
    }
    return task;
  }

  async update(executorId: string, invocationId: string, attempt: number, event: RunEvent): Promise<void> {
    const row = await this.runs.row(invocationId);
    if (event.type === 'snapshot_saved') {
      // Arrives after the result by design (saving never delays it): only the owner may record it.
      if (row.executor_id !== executorId || row.attempt !== attempt || !row.runner_json) return;
      const runner = { ...JSON.parse(row.runner_json), save: event.save };
      await this.db.updateTable('invocations').set({ runner_json: JSON.stringify(runner) }).where('id', '=', invocationId).execute();
      this.runs.emit(invocationId);
      return;
    }
    if (row.executor_id !== executorId || row.attempt !== attempt || row.status !== 'running') {
      throw new HearthError('stale', `invocation ${invocationId} attempt ${attempt} is not running on executor ${executorId}`, 409);
    }
    if (event.type === 'started') {
      await this.db
        .updateTable('invocations')
        .set({ runner_json: JSON.stringify(event.runner), status_reason: `running on ${event.runner.kind} runner ${event.runner.runner_id}` })
        .where('id', '=', invocationId)
        .execute();
    } else if (event.type === 'step_started') {
      await this.db.updateTable('invocations').set({ current_step: event.index }).where('id', '=', invocationId).execute();
    } else {
      // The executor measures what happened on it; the queue time is the server's.
      const timings = { ...JSON.parse(row.timings_json), ...event.timings };
      await this.runs.finish(
        invocationId,
        { status: event.status, reason: event.reason, exitCode: event.exit_code, failedStep: event.failed_step, timings },
        { executorId, attempt },
      );
      return;
    }
    this.runs.emit(invocationId);
  }

  /** Cancels a run: a queued one ends at once; a running one is stopped by its executor. */
  async cancel(invocationId: string): Promise<void> {
    const row = await this.runs.row(invocationId);
    if (row.status === 'queued') {
      await this.runs.finish(invocationId, { status: 'cancelled', reason: 'cancelled before it started', exitCode: null });
    } else if (row.status === 'running') {
      await this.db.updateTable('invocations').set({ cancel_requested: 1 }).where('id', '=', invocationId).execute();
      this.runs.emit(invocationId);
    }
  }

  /**
   * Declares silent executors lost. Their runs that had not started a step are requeued (nothing
   * user-visible happened yet); runs with a step in flight fail with "executor lost".
   */
  async reapLostExecutors(): Promise<void> {
    const cutoff = Date.now() - this.opts.executorTimeoutMs;
    const lost = await this.db
      .selectFrom('executors')
      .select(['id', 'last_seen_at'])
      .where('lost', '=', 0)
      .where('last_seen_at', '<', cutoff)
      .execute();
    for (const ex of lost) {
      await this.db.updateTable('executors').set({ lost: 1 }).where('id', '=', ex.id).execute();
      const silentMs = Date.now() - Number(ex.last_seen_at);
      this.log.warn({ executor: ex.id, silentMs }, 'executor lost');
      await this.failOrRequeueRunsOf(ex.id, `executor ${ex.id} stopped responding (no heartbeat for ${Math.round(silentMs / 1000)}s)`);
    }
  }

  private async failOrRequeueRunsOf(executorId: string, why: string): Promise<void> {
    const rows = await this.db
      .selectFrom('invocations')
      .selectAll()
      .where('executor_id', '=', executorId)
      .where('status', '=', 'running')
      .execute();
    for (const r of rows) {
      if (r.current_step === null && !r.cancel_requested) {
        await this.db
          .updateTable('invocations')
          .set({ status: 'queued', status_reason: `requeued: ${why} before any step started`, executor_id: null, queued_at: Date.now(), runner_json: null })
          .where('id', '=', r.id)
          .where('status', '=', 'running')
          .execute();
        this.runs.emit(r.id);
      } else {
        const step = r.current_step === null ? '' : ` during step ${r.current_step + 1}`;
        await this.runs.finish(r.id, {
          status: r.cancel_requested ? 'cancelled' : 'failed',
          reason: `executor lost: ${why}${step}`,
          exitCode: null,
          failedStep: r.current_step,
        });
      }
    }
  }
}

function toTask(row: InvocationsTable, attempt: number): Task {
  const spec = JSON.parse(row.spec_json) as RunSpec;
  return { ...spec, invocation_id: row.id, attempt, runner_key: row.runner_key, default_branch: row.default_branch };
}
