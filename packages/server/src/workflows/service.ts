import type { ActionRun, ExecuteWorkflowRequest, ExecuteWorkflowResponse, PullRequestInfo, Task } from '@hearth/api';
import {
  type ConfigDiagnostic,
  ConfigError,
  HearthError,
  type WorkflowAction,
  type WorkflowConfig,
  type WorkflowEvent,
  actionMatchesEvent,
  badRequest,
  defaultWorkflowConfig,
  formatDiagnostic,
  matchesAnyRefPattern,
  normalizeRepoUrl,
  parseWorkflowConfig,
} from '@hearth/core';
import type { Logger } from 'pino';
import type { ServerContext } from '../context.ts';
import type { InvocationsTable } from '../db/schema.ts';
import type { NewRun, WorkflowRunRecord } from '../runStore.ts';
import { type Trigger, describeTrigger } from './events.ts';
import { type GitHub, GitHubError } from './github.ts';
import type { RepoRow, RepoStore } from './repos.ts';

/** Context of the one commit status a broken config gets (no action can be named). */
export const CONFIG_STATUS_CONTEXT = 'hearth';

export interface LoadedConfig {
  config: WorkflowConfig;
  /** hearth.yaml / buildbuddy.yaml, or null for the default config. */
  file: string | null;
  warnings: ConfigDiagnostic[];
}

interface RunOrigin {
  repo: RepoRow;
  event: 'push' | 'pull_request' | 'manual';
  sha: string;
  branch: string | null;
  defaultBranch: string;
  trusted: boolean;
  pullRequest: PullRequestInfo | null;
  /** Runs with this key (plus the action name) supersede each other; null: never superseded. */
  supersedeKey: string | null;
  clean: boolean;
  extraEnv: Record<string, string>;
  notes: string[];
}

export interface DeliveryResult {
  outcome: string;
  invocationIds: string[];
}

/**
 * Turns triggers (webhooks, manual dispatch) into runs: reads the repo's config at the commit,
 * picks the matching actions, cancels the runs they supersede and queues one run per action.
 */
export class WorkflowService {
  /** Per-repository chains: deliveries of one repo are handled in arrival order (superseding depends on it). */
  private readonly chains = new Map<string, Promise<void>>();
  private closed = false;

  constructor(
    private readonly ctx: ServerContext,
    private readonly repos: RepoStore,
    private readonly github: GitHub,
    private readonly log: Logger,
  ) {}

  close(): void {
    this.closed = true;
  }

  /** Waits for queued deliveries (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.chains.size > 0) await Promise.allSettled([...this.chains.values()]);
  }

  // ----------------------------------------------------------------------------------------------
  // Deliveries

  /** Queues a stored delivery for processing; returns at once. */
  enqueue(deliveryId: string, repoId: string): void {
    const prev = this.chains.get(repoId) ?? Promise.resolve();
    const next = prev
      .then(() => (this.closed ? undefined : this.processDelivery(deliveryId)))
      .catch((err) => this.log.error({ err, delivery: deliveryId }, 'webhook delivery processing crashed'))
      .finally(() => {
        if (this.chains.get(repoId) === next) this.chains.delete(repoId);
      });
    this.chains.set(repoId, next);
  }

  /** After a restart: deliveries accepted but not processed are processed; half-processed ones are failed (redeliverable). */
  async recover(): Promise<void> {
    // GitHub redelivers for 3 days at most; a month of delivery ids is plenty for deduplication.
    await this.ctx.db.deleteFrom('webhook_deliveries').where('received_at', '<', Date.now() - 30 * 24 * 3_600_000).execute();
    const rows = await this.ctx.db.selectFrom('webhook_deliveries').select(['id', 'repo_id', 'state']).where('state', 'in', ['received', 'processing']).execute();
    for (const r of rows) {
      if (r.state === 'processing' || !r.repo_id) {
        await this.ctx.db
          .updateTable('webhook_deliveries')
          .set({ state: 'failed', outcome: 'the server stopped while processing this delivery: redeliver it from GitHub' })
          .where('id', '=', r.id)
          .execute();
      } else {
        this.enqueue(r.id, r.repo_id);
      }
    }
  }

  private async processDelivery(id: string): Promise<void> {
    const row = await this.ctx.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.state !== 'received' || !row.trigger_json || !row.repo_id) return;
    await this.ctx.db.updateTable('webhook_deliveries').set({ state: 'processing' }).where('id', '=', id).execute();
    const trigger = JSON.parse(row.trigger_json) as Trigger;
    let state = 'done';
    let result: DeliveryResult;
    try {
      const repo = await this.repos.byId(row.repo_id);
      if (!repo) result = { outcome: 'the repository was unlinked before the delivery was processed', invocationIds: [] };
      else result = await this.handleTrigger(repo, trigger, id);
    } catch (err) {
      state = 'failed';
      result = { outcome: `failed: ${(err as Error).message}`, invocationIds: [] };
      this.log.error({ delivery: id, err: (err as Error).message }, 'webhook delivery failed');
    }
    await this.ctx.db
      .updateTable('webhook_deliveries')
      .set({ state, outcome: result.outcome, invocation_ids_json: JSON.stringify(result.invocationIds) })
      .where('id', '=', id)
      .execute();
    this.log.info({ delivery: id, event: row.event, outcome: result.outcome }, 'webhook delivery processed');
  }

  /** Starts the runs a push or pull_request asks for. */
  async handleTrigger(repo: RepoRow, t: Trigger, deliveryId: string): Promise<DeliveryResult> {
    const sha = t.kind === 'push' ? t.sha : t.headSha;
    const defaultBranch = t.repository.default_branch ?? repo.default_branch;
    // Like the reference, the config is read where the commit was pushed: the fork for fork PRs.
    const configRepo = t.kind === 'pull_request' && !t.sameRepo && t.headFullName ? t.headFullName : repo.full_name!;
    let loaded: LoadedConfig;
    try {
      loaded = await this.loadConfig(repo, configRepo, sha, defaultBranch);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      await this.reportConfigError(repo, sha, err, deliveryId);
      return { outcome: `invalid config: ${err.message}`, invocationIds: [] };
    }
    const event: WorkflowEvent =
      t.kind === 'push'
        ? { kind: 'push', ...(t.branch !== null ? { branch: t.branch } : {}), ...(t.tag !== null ? { tag: t.tag } : {}) }
        : { kind: 'pull_request', baseBranch: t.baseBranch, action: t.action };
    const actions = loaded.config.actions.filter((a) => actionMatchesEvent(a, event));
    const what = describeTrigger(t);
    if (actions.length === 0) {
      return { outcome: `no action in ${loaded.file ?? 'the default config'} matches the ${what}`, invocationIds: [] };
    }
    let origin: RunOrigin;
    if (t.kind === 'push') {
      origin = {
        repo,
        event: 'push',
        sha,
        branch: t.branch,
        defaultBranch,
        trusted: true,
        pullRequest: null,
        supersedeKey: t.branch === null ? null : supersedeKey(repo, 'push', repo.repo_url, t.branch),
        clean: false,
        extraEnv: {},
        notes: [],
      };
    } else {
      const headRepoUrl = t.sameRepo ? repo.repo_url : t.headRepoUrl;
      if (!headRepoUrl) return { outcome: `the head repository of pull request #${t.number} no longer exists`, invocationIds: [] };
      origin = {
        repo,
        event: 'pull_request',
        sha,
        branch: t.headBranch,
        defaultBranch,
        trusted: t.sameRepo,
        pullRequest: { number: t.number, head_repo_url: headRepoUrl, head_sha: sha, head_branch: t.headBranch, base_branch: t.baseBranch, merge_with_base: true },
        supersedeKey: supersedeKey(repo, 'pull_request', headRepoUrl, t.headBranch),
        clean: false,
        extraEnv: { GIT_BASE_BRANCH: t.baseBranch, GIT_PR_NUMBER: String(t.number) },
        notes: t.sameRepo ? [] : [`pull request from fork ${t.headFullName ?? headRepoUrl}: untrusted run, repository secrets are not available`],
      };
    }
    const runs = await this.startRuns(origin, actions, loaded);
    return { outcome: `${what}: started ${runs.map((r) => `"${r.action_name}"`).join(', ')}`, invocationIds: runs.map((r) => r.invocation_id) };
  }

  /** The parsed config at `sha`, or the default config when the repo has none. Throws ConfigError. */
  async loadConfig(repo: RepoRow, fullName: string, sha: string, defaultBranch: string): Promise<LoadedConfig> {
    const found = await this.github.readConfig(repo, fullName, sha);
    if (!found) return { config: defaultWorkflowConfig(defaultBranch), file: null, warnings: [] };
    const { config, warnings } = parseWorkflowConfig(found.text, found.file);
    return { config, file: found.file, warnings };
  }

  private async reportConfigError(repo: RepoRow, sha: string, err: ConfigError, deliveryId: string | null): Promise<void> {
    const first = err.diagnostics[0];
    const more = err.diagnostics.length > 1 ? ` (+${err.diagnostics.length - 1} more)` : '';
    const description = first ? `${formatDiagnostic(first)}${more}` : err.message;
    const target = deliveryId ? `${this.ctx.runs.publicUrl}/workflows/deliveries/${encodeURIComponent(deliveryId)}` : this.ctx.runs.publicUrl;
    try {
      await this.github.createStatus(repo, sha, { state: 'error', context: CONFIG_STATUS_CONTEXT, description, target_url: target });
    } catch (e) {
      this.log.error({ repo: repo.full_name, sha, err: (e as Error).message }, 'could not post the config error status');
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Manual runs

  async executeWorkflow(req: ExecuteWorkflowRequest): Promise<ExecuteWorkflowResponse> {
    try {
      return await this.executeWorkflowUnchecked(req);
    } catch (err) {
      // GitHub being down or refusing the token is not hearth's internal error: say so.
      if (err instanceof GitHubError) throw new HearthError('unavailable', `GitHub API: ${err.message}`, 502);
      throw err;
    }
  }

  private async executeWorkflowUnchecked(req: ExecuteWorkflowRequest): Promise<ExecuteWorkflowResponse> {
    const repo = await this.repos.find({ repo_url: req.repo_url });
    let ref = req.ref.trim();
    let sha: string;
    let branch: string | null = null;
    if (/^[0-9a-f]{40}$/i.test(ref)) {
      sha = ref.toLowerCase();
    } else {
      if (ref.startsWith('refs/heads/')) ref = ref.slice('refs/heads/'.length);
      if (!ref.startsWith('refs/')) branch = ref;
      try {
        sha = await this.github.resolveRef(repo, ref);
      } catch (err) {
        if (err instanceof GitHubError && (err.status === 404 || err.status === 422)) {
          throw badRequest(`ref ${JSON.stringify(req.ref)} was not found in ${repo.full_name}`);
        }
        throw err;
      }
    }
    const loaded = await this.loadConfig(repo, repo.full_name!, sha, repo.default_branch);
    let actions = loaded.config.actions.filter((a) => actionMatchesEvent(a, { kind: 'manual' }));
    if (req.action_names && req.action_names.length > 0) {
      const names = new Set(req.action_names);
      const unknown = [...names].filter((n) => !actions.some((a) => a.name === n));
      if (unknown.length > 0) {
        throw badRequest(
          `no action named ${unknown.map((n) => JSON.stringify(n)).join(', ')} in ${loaded.file ?? 'the default config'} at ${sha.slice(0, 12)}; actions: ${actions.map((a) => JSON.stringify(a.name)).join(', ')}`,
        );
      }
      actions = actions.filter((a) => names.has(a.name));
    }
    const runs = await this.startRuns(
      {
        repo,
        event: 'manual',
        sha,
        branch,
        defaultBranch: repo.default_branch,
        trusted: true,
        pullRequest: null,
        supersedeKey: null,
        clean: req.clean === true,
        extraEnv: req.env ?? {},
        notes: [],
      },
      actions,
      loaded,
    );
    return { commit_sha: sha, branch, action_runs: runs };
  }

  // ----------------------------------------------------------------------------------------------
  // Runs

  private async startRuns(o: RunOrigin, actions: WorkflowAction[], loaded: LoadedConfig): Promise<ActionRun[]> {
    const out: ActionRun[] = [];
    const notes = [...o.notes, ...loaded.warnings.map((w) => `warning: ${formatDiagnostic(w)}`)];
    for (const action of actions) {
      const key = o.supersedeKey === null ? null : `${o.supersedeKey}\n${action.name}`;
      if (key !== null && o.branch !== null && !this.allowsConcurrentRuns(action, o)) await this.supersede(key, o.sha);
      const id = await this.ctx.runs.create(this.newRun(o, action, key, notes));
      this.log.info({ invocation: id, repo: o.repo.full_name, action: action.name, sha: o.sha, event: o.event, trusted: o.trusted }, 'workflow run queued');
      out.push({ action_name: action.name, invocation_id: id, url: this.ctx.runs.urlFor(id) });
    }
    return out;
  }

  /**
   * Whether older runs of `action` on this branch may keep running. Default: only on the default
   * branch (of the repository itself, not a fork's branch of the same name) [spec §1.2].
   */
  private allowsConcurrentRuns(action: WorkflowAction, o: RunOrigin): boolean {
    if (action.allowConcurrentRuns) return true;
    const sameRepo = !o.pullRequest || normalizeRepoUrl(o.pullRequest.head_repo_url) === normalizeRepoUrl(o.repo.repo_url);
    if (action.allowConcurrentRunsOnBranches) return sameRepo && matchesAnyRefPattern(action.allowConcurrentRunsOnBranches, o.branch!);
    return sameRepo && o.branch === o.defaultBranch;
  }

  private async supersede(key: string, bySha: string): Promise<void> {
    const older = await this.ctx.db
      .selectFrom('invocations')
      .select(['id', 'workflow_json', 'commit_sha'])
      .where('workflow_key', '=', key)
      .where('status', 'in', ['queued', 'running'])
      .execute();
    for (const r of older) {
      if (r.commit_sha === bySha) continue; // the same commit again (e.g. a push and a PR sync): not newer
      const info = JSON.parse(r.workflow_json!) as WorkflowRunRecord;
      info.superseded_by = bySha;
      await this.ctx.db.updateTable('invocations').set({ workflow_json: JSON.stringify(info) }).where('id', '=', r.id).execute();
      await this.ctx.scheduler.cancel(r.id);
      this.log.info({ invocation: r.id, by: bySha }, 'workflow run superseded by a newer commit');
    }
  }

  private newRun(o: RunOrigin, action: WorkflowAction, key: string | null, notes: string[]): NewRun {
    // extraEnv (manual dispatch's env, or the PR's base branch and number) overrides the action's [spec §1.2].
    const env: Record<string, string> = {
      HEARTH_ACTION_NAME: action.name,
      HEARTH_TRIGGER_EVENT: o.event,
      GIT_REPO_DEFAULT_BRANCH: o.defaultBranch,
      ...action.env,
      ...o.extraEnv,
    };
    const info: WorkflowRunRecord = {
      repo_id: o.repo.id,
      action_name: action.name,
      event: o.event,
      pull_request_number: o.pullRequest?.number ?? null,
      superseded_by: null,
      status_sha: o.sha,
    };
    const pullRequest = o.pullRequest ? { ...o.pullRequest, merge_with_base: action.triggers?.pullRequest?.mergeWithBase ?? true } : null;
    return {
      name: action.name,
      repo: o.repo.repo_url,
      branch: o.branch,
      commitSha: o.sha,
      defaultBranch: o.defaultBranch,
      instance: action.name,
      os: action.os,
      arch: action.arch,
      trusted: o.trusted,
      workflow: { info, key },
      spec: {
        repo: o.repo.repo_url,
        branch: o.branch,
        commit_sha: o.sha,
        patches: [],
        steps: action.steps,
        env,
        secret_values: [],
        timeout_ms: action.timeoutMs ?? null,
        platform_properties: action.platformProperties,
        workspace_dir: action.bazelWorkspaceDir,
        git_clean_exclude: action.gitCleanExclude,
        git_fetch_depth: action.gitFetchDepth ?? null,
        // Untrusted runs never get a warm runner that trusted runs (and their secrets) used, and
        // their runner is discarded after the run (see the executor's ciRunner).
        clean: o.clean || !o.trusted,
        pull_request: pullRequest,
        trusted: o.trusted,
        notes,
      },
    };
  }

  /**
   * Scheduler hook: a workflow run's secrets and the repository token are added to its task only as
   * it is leased (never stored with the run), and only for trusted runs.
   */
  readonly taskHook = async (task: Task, row: InvocationsTable): Promise<Task> => {
    if (!row.workflow_json) return task;
    const info = JSON.parse(row.workflow_json) as WorkflowRunRecord;
    const repo = await this.repos.byId(info.repo_id);
    if (!repo) throw new Error(`repository ${row.repo} is no longer linked`);
    if (row.trusted === 0) return { ...task, repo_token: null, trusted: false };
    const secrets = await this.repos.secretValues(repo.id);
    const token = repo.access_token;
    return {
      ...task,
      env: { ...task.env, ...secrets },
      secret_values: [...task.secret_values, ...Object.values(secrets), ...(token ? [token] : [])],
      repo_token: token,
      trusted: true,
    };
  };
}

function supersedeKey(repo: RepoRow, event: 'push' | 'pull_request', headRepoUrl: string, branch: string): string {
  return [repo.id, event, normalizeRepoUrl(headRepoUrl), branch].join('\n');
}
