import { type RunState, formatDurationMs, isTerminal } from '@hearth/core';
import type { Logger } from 'pino';
import type { InvocationsTable } from '../db/schema.ts';
import type { RunStore, WorkflowRunRecord } from '../runStore.ts';
import type { CommitState, CommitStatus, GitHub } from './github.ts';
import type { RepoStore } from './repos.ts';

/** What has been posted for a run, in order. */
const LEVELS = ['queued', 'running', 'final'] as const;
type Level = (typeof LEVELS)[number];

const levelOf = (status: RunState): Level => (status === 'queued' ? 'queued' : status === 'running' ? 'running' : 'final');

/**
 * The commit status a run in `status` shows. Mapping of the end states:
 * succeeded → success, failed → failure, timed_out → failure (the build did not finish in time:
 * a red check, like a failed build), cancelled → error (nothing was decided about the commit;
 * GitHub shows it as an error, and a superseded run says which commit replaced it).
 */
export function commitStatusFor(row: InvocationsTable, level: Level, info: WorkflowRunRecord, targetUrl: string): CommitStatus {
  const base = { context: info.action_name, target_url: targetUrl };
  if (level === 'queued') return { ...base, state: 'pending', description: 'Queued' };
  if (level === 'running') return { ...base, state: 'pending', description: 'Running' };
  const end = Number(row.finished_at ?? Date.now());
  const took = formatDurationMs(Math.max(0, end - Number(row.started_at ?? row.created_at)));
  const status = row.status as RunState;
  let state: CommitState;
  let description: string;
  if (status === 'succeeded') {
    state = 'success';
    description = `Succeeded in ${took}`;
  } else if (status === 'timed_out') {
    state = 'failure';
    description = `Timed out after ${took}`;
  } else if (status === 'cancelled') {
    state = 'error';
    description = info.superseded_by ? `Cancelled: superseded by ${info.superseded_by.slice(0, 12)}` : `Cancelled after ${took}`;
  } else {
    state = 'failure';
    description = `Failed in ${took}: ${row.status_reason}`;
  }
  return { ...base, state, description };
}

/**
 * Posts GitHub commit statuses for workflow runs as they change: pending "Queued" → pending
 * "Running" → success/failure/error with the duration; context = action name, target = the run's
 * page. Listens to RunStore changes; one chain per run keeps its posts in order. Posting failures
 * are retried (in GitHub) and logged, and never affect the run.
 */
export class CommitStatusReporter {
  private readonly chains = new Map<string, Promise<void>>();
  private stopped = false;
  private readonly onChange = (id: string) => this.schedule(id);

  constructor(
    private readonly runs: RunStore,
    private readonly repos: RepoStore,
    private readonly github: GitHub,
    private readonly log: Logger,
  ) {}

  /** Starts listening, and catches up on runs whose status changed while no server was posting. */
  async start(): Promise<void> {
    this.runs.changes.on('*', this.onChange);
    const lagging = await this.runs.db
      .selectFrom('invocations')
      .select(['id', 'status', 'commit_status_reported'])
      .where('workflow_json', 'is not', null)
      .where((eb) => eb.or([eb('commit_status_reported', 'is', null), eb('commit_status_reported', '!=', 'final')]))
      .where('created_at', '>', Date.now() - 7 * 24 * 3_600_000)
      .execute();
    for (const r of lagging) if (r.commit_status_reported !== levelOf(r.status as RunState)) this.schedule(r.id);
  }

  stop(): void {
    this.stopped = true;
    this.runs.changes.off('*', this.onChange);
  }

  /** Resolves when every scheduled post has been attempted. */
  async idle(): Promise<void> {
    while (this.chains.size > 0) await Promise.allSettled([...this.chains.values()]);
  }

  private schedule(id: string): void {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev
      .then(() => (this.stopped ? undefined : this.sync(id)))
      .catch((err) => this.log.error({ invocation: id, err: (err as Error).message }, 'commit status reporting failed'))
      .finally(() => {
        if (this.chains.get(id) === next) this.chains.delete(id);
      });
    this.chains.set(id, next);
  }

  private async sync(id: string): Promise<void> {
    const row = await this.runs.db.selectFrom('invocations').selectAll().where('id', '=', id).where('workflow_json', 'is not', null).executeTakeFirst();
    if (!row) return;
    const info = JSON.parse(row.workflow_json!) as WorkflowRunRecord;
    const want = LEVELS.indexOf(levelOf(row.status as RunState));
    const have = row.commit_status_reported === null ? -1 : LEVELS.indexOf(row.commit_status_reported as Level);
    if (want <= have) return;
    const repo = await this.repos.byId(info.repo_id);
    if (!repo?.full_name) return;
    // Catch up in order, so GitHub's history reads Queued → Running → result even for runs that
    // moved faster than we could post; a run that never started skips "Running".
    for (let level = have + 1; level <= want; level++) {
      const name = LEVELS[level]!;
      if (name === 'running' && row.started_at === null && isTerminal(row.status as RunState)) continue;
      const status = commitStatusFor(row, name, info, this.runs.urlFor(row.id));
      try {
        await this.github.createStatus(repo, info.status_sha, status);
      } catch (err) {
        this.log.error({ invocation: id, repo: repo.full_name, state: status.state, err: (err as Error).message }, 'could not post commit status');
      }
      // Recorded even when posting failed: a later state supersedes it, and retrying forever helps nobody.
      await this.runs.db.updateTable('invocations').set({ commit_status_reported: name }).where('id', '=', id).execute();
    }
  }
}
