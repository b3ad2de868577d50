import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Invocation, RunnerProvenance, RunRequest, Task, Timings, WorkflowRunInfo } from '@hearth/api';
import { type RunState, badRequest, isTerminal, notFound, parseDurationMs, runnerKey } from '@hearth/core';
import type { Db } from './db/index.ts';
import type { InvocationsTable } from './db/schema.ts';

/** What the executor needs to run an invocation; stored as JSON in the invocation row. */
export type RunSpec = Omit<Task, 'invocation_id' | 'attempt' | 'runner_key'>;

export interface NewRun {
  name: string;
  repo: string;
  branch: string | null;
  commitSha: string | null;
  defaultBranch: string | null;
  spec: RunSpec;
  /** Workflow action name (each action keeps its own warm runners); '' for Remote Bazel. */
  instance: string;
  os: string;
  arch: string;
  /** False for untrusted runs (pull requests from forks). Default true. */
  trusted?: boolean;
  /** Workflow runs: what started the run (see workflows/), and the key of runs it supersedes. */
  workflow?: { info: WorkflowRunRecord; key: string | null };
}

/** Stored as invocations.workflow_json; `WorkflowRunInfo` is its public part. */
export interface WorkflowRunRecord extends WorkflowRunInfo {
  /** Where commit statuses go: the base repository and the commit under test. */
  status_sha: string;
}

/** Longest run timeout accepted: a week (and safely below what Node timers can hold). */
export const MAX_TIMEOUT_MS = 7 * 24 * 3_600_000;

export function newInvocationId(): string {
  // Time-ordered prefix so ids sort by creation, random suffix so they cannot be guessed.
  return `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`;
}

/** Turns a public `Run` request into a validated NewRun, with errors that say what to fix. */
export function newRunFromRequest(req: RunRequest, defaults: { os: string; arch: string }): NewRun {
  if (!req.branch && !req.commit_sha) throw badRequest('Run needs at least one of "branch" or "commit_sha"');
  let timeoutMs: number | null = null;
  if (req.timeout !== undefined && req.timeout !== '') {
    try {
      timeoutMs = parseDurationMs(req.timeout);
    } catch (err) {
      throw badRequest(`"timeout": ${(err as Error).message}`);
    }
    if (timeoutMs <= 0) throw badRequest('"timeout" must be positive');
    if (timeoutMs > MAX_TIMEOUT_MS) throw badRequest(`"timeout" must be at most ${MAX_TIMEOUT_MS / 3_600_000}h, got ${req.timeout}`);
  }
  const patches = req.patches ?? [];
  patches.forEach((p, i) => {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(p)) throw badRequest(`"patches[${i}]" is not base64`);
  });
  const workspaceDir = normalizeRelativeDir(req.workspace_dir ?? '');
  const env = { ...(req.env ?? {}) };
  const secretValues: string[] = [];
  const platform: Record<string, string> = { ...(req.platform_properties ?? {}) };
  for (const header of req.remote_headers ?? []) {
    const m = /^x-hearth-env\.([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(header);
    if (!m) throw badRequest(`remote header ${JSON.stringify(header.split('=')[0])} is not supported: use x-hearth-env.NAME=VALUE`);
    env[m[1]!] = m[2]!;
    if (m[2]!.length > 0) secretValues.push(m[2]!);
  }
  const os = req.os ?? platform.OSFamily ?? defaults.os;
  const arch = req.arch ?? platform.Arch ?? defaults.arch;
  return {
    name: req.name ?? req.steps.map((s) => s.run).join(' && ').slice(0, 200),
    repo: req.repo,
    branch: req.branch ?? null,
    commitSha: req.commit_sha?.toLowerCase() ?? null,
    defaultBranch: req.default_branch ?? null,
    instance: '',
    os,
    arch,
    spec: {
      repo: req.repo,
      branch: req.branch ?? null,
      commit_sha: req.commit_sha?.toLowerCase() ?? null,
      patches,
      steps: req.steps,
      env,
      secret_values: secretValues,
      timeout_ms: timeoutMs,
      platform_properties: platform,
      workspace_dir: workspaceDir,
      git_clean_exclude: [],
      git_fetch_depth: null,
      clean: false,
    },
  };
}

function publicWorkflowInfo(w: WorkflowRunRecord): WorkflowRunInfo {
  return { repo_id: w.repo_id, action_name: w.action_name, event: w.event, pull_request_number: w.pull_request_number, superseded_by: w.superseded_by };
}

function normalizeRelativeDir(dir: string): string {
  const parts = dir.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..') || dir.startsWith('/')) throw badRequest(`"workspace_dir" must be a relative path inside the repo, got ${JSON.stringify(dir)}`);
  return parts.join('/');
}

/**
 * The invocations table and the events around it. Every state change goes through here so
 * that waiters (Run with wait_until, log followers, pages) are woken.
 */
export class RunStore {
  readonly changes = new EventEmitter();

  /** Base of the links users follow (set once the server knows its address). */
  publicUrl = '';

  constructor(readonly db: Db) {
    this.changes.setMaxListeners(0);
  }

  async create(run: NewRun): Promise<string> {
    const id = newInvocationId();
    const now = Date.now();
    const key = runnerKey({
      repoUrl: run.repo,
      instance: run.instance,
      platformProperties: run.spec.platform_properties,
      os: run.os,
      arch: run.arch,
    });
    await this.db
      .insertInto('invocations')
      .values({
        id,
        name: run.name,
        status: 'queued',
        status_reason: 'waiting for a runner',
        exit_code: null,
        repo: run.repo,
        branch: run.branch,
        commit_sha: run.commitSha,
        default_branch: run.defaultBranch,
        spec_json: JSON.stringify(run.spec),
        runner_key: key,
        created_at: now,
        queued_at: now,
        started_at: null,
        finished_at: null,
        executor_id: null,
        attempt: 0,
        runner_json: null,
        timings_json: '{}',
        failed_step: null,
        current_step: null,
        cancel_requested: 0,
        trusted: run.trusted === false ? 0 : 1,
        workflow_json: run.workflow ? JSON.stringify(run.workflow.info) : null,
        workflow_key: run.workflow?.key ?? null,
      })
      .execute();
    this.emit(id);
    return id;
  }

  async row(id: string): Promise<InvocationsTable> {
    const row = await this.db.selectFrom('invocations').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(`no invocation with id ${JSON.stringify(id)}`);
    return row;
  }

  async get(id: string): Promise<Invocation> {
    return this.toInvocation(await this.row(id));
  }

  urlFor(id: string): string {
    return `${this.publicUrl}/invocations/${id}`;
  }

  toInvocation(row: InvocationsTable): Invocation {
    const spec = JSON.parse(row.spec_json) as RunSpec;
    const timings = JSON.parse(row.timings_json) as Timings;
    return {
      invocation_id: row.id,
      name: row.name,
      status: row.status as RunState,
      status_reason: row.status_reason,
      exit_code: row.exit_code,
      repo: row.repo,
      branch: row.branch,
      commit_sha: row.commit_sha,
      steps: spec.steps,
      created_at: new Date(Number(row.created_at)).toISOString(),
      started_at: row.started_at === null ? null : new Date(Number(row.started_at)).toISOString(),
      finished_at: row.finished_at === null ? null : new Date(Number(row.finished_at)).toISOString(),
      executor_id: row.executor_id,
      runner: row.runner_json ? (JSON.parse(row.runner_json) as RunnerProvenance) : null,
      timings,
      failed_step: row.failed_step,
      attempt: row.attempt,
      url: this.urlFor(row.id),
      trusted: row.trusted !== 0,
      workflow: row.workflow_json ? publicWorkflowInfo(JSON.parse(row.workflow_json) as WorkflowRunRecord) : null,
    };
  }

  emit(id: string): void {
    this.changes.emit(id);
    this.changes.emit('*', id);
  }

  /** Resolves with the invocation once `done(inv)` holds, or rejects on abort. */
  async waitFor(id: string, done: (inv: Invocation) => boolean, signal?: AbortSignal): Promise<Invocation> {
    for (;;) {
      const wake = new Promise<void>((resolve) => {
        const fire = () => {
          this.changes.off(id, fire);
          signal?.removeEventListener('abort', fire);
          resolve();
        };
        this.changes.on(id, fire);
        signal?.addEventListener('abort', fire, { once: true });
        setTimeout(fire, 5000).unref();
      });
      const inv = await this.get(id);
      if (done(inv)) return inv;
      if (signal?.aborted) throw signal.reason;
      await wake;
    }
  }

  /** Ends a run that has not ended yet. Returns false if it had already ended (first end wins). */
  async finish(
    id: string,
    fields: { status: RunState; reason: string; exitCode: number | null; failedStep?: number | null; timings?: Timings },
    guard?: { executorId: string; attempt: number },
  ): Promise<boolean> {
    if (!isTerminal(fields.status)) throw new Error(`finish() with non-terminal status ${fields.status}`);
    let q = this.db
      .updateTable('invocations')
      .set({
        status: fields.status,
        status_reason: fields.reason,
        exit_code: fields.exitCode,
        finished_at: Date.now(),
        failed_step: fields.failedStep ?? null,
        ...(fields.timings ? { timings_json: JSON.stringify(fields.timings) } : {}),
      })
      .where('id', '=', id)
      .where('status', 'in', ['queued', 'running']);
    if (guard) q = q.where('executor_id', '=', guard.executorId).where('attempt', '=', guard.attempt);
    const res = await q.executeTakeFirst();
    const changed = Number(res.numUpdatedRows) > 0;
    if (changed) this.emit(id);
    return changed;
  }
}
