/** Table shapes as stored. JSON columns are TEXT; times are epoch milliseconds. */


export interface InvocationsTable {
  id: string;
  name: string;
  status: string;
  status_reason: string;
  exit_code: number | null;
  repo: string;
  branch: string | null;
  commit_sha: string | null;
  default_branch: string | null;
  /** Everything the executor needs to run it (steps, env, patches, …) as JSON: survives restarts. */
  spec_json: string;
  runner_key: string;
  created_at: number;
  /** When the run (re)entered the queue; differs from created_at after a requeue. */
  queued_at: number;
  started_at: number | null;
  finished_at: number | null;
  executor_id: string | null;
  attempt: number;
  runner_json: string | null;
  timings_json: string;
  failed_step: number | null;
  /** Index of the step currently running, or null before the first step started. */
  current_step: number | null;
  cancel_requested: number;
  /** 0 for untrusted runs (pull requests from forks): no secrets, no shared warm state written. */
  trusted: number;
  /** Workflow runs: what started it (repo, action, event, status target) as JSON; null otherwise. */
  workflow_json: string | null;
  /** Workflow runs: runs with the same key supersede each other (repo, action, event, head repo, branch). */
  workflow_key: string | null;
  /** Last commit status posted for this run: queued | running | final. */
  commit_status_reported: string | null;
}

export interface ExecutorsTable {
  id: string;
  hostname: string;
  os: string;
  arch: string;
  max_runners: number;
  version: string;
  registered_at: number;
  last_seen_at: number;
  idle_runner_keys_json: string;
  free_slots: number;
  /** 1 once declared lost: its runs were requeued or failed; it must register again. */
  lost: number;
  /** JSON list of `<runner key>@<ref>` snapshots held locally; see ExecutorState.snapshot_refs. */
  snapshot_refs_json: string;
}


/** GitHub repositories linked for workflows. Secrets and tokens never leave the server. */
export interface RepositoriesTable {
  id: string;
  repo_url: string;
  /** normalizeRepoUrl(repo_url): one row per repository. */
  repo_url_key: string;
  full_name: string | null;
  default_branch: string;
  webhook_secret: string;
  access_token: string | null;
  github_api_url: string;
  created_at: number;
  updated_at: number;
}

export interface RepositorySecretsTable {
  repo_id: string;
  name: string;
  value: string;
  updated_at: number;
}

/** GitHub webhook deliveries by X-GitHub-Delivery: deduplication and "why did nothing run?". */
export interface WebhookDeliveriesTable {
  id: string;
  event: string;
  repo_id: string | null;
  received_at: number;
  /** received | processing | done | failed */
  state: string;
  outcome: string;
  invocation_ids_json: string;
  /** The parsed event, so a delivery received before a restart is still processed. */
  trigger_json: string | null;
}

export interface SnapshotsTable {
  /** Snapshot key (hash of instance, platform, runner config, git ref). */
  key: string;
  manifest_hash: string;
  manifest_size: number;
  size_bytes: number;
  /** `<repo>#<name>`; its repo prefix is what "invalidate all snapshots of this repo" matches. */
  instance: string;
  git_ref: string;
  created_at: number;
}

export interface Database {
  invocations: InvocationsTable;
  executors: ExecutorsTable;
  snapshots: SnapshotsTable;
  repositories: RepositoriesTable;
  repository_secrets: RepositorySecretsTable;
  webhook_deliveries: WebhookDeliveriesTable;
}
