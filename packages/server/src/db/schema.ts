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
}


export interface Database {
  invocations: InvocationsTable;
  executors: ExecutorsTable;
}
