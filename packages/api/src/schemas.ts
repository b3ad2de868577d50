/**
 * The HTTP contract between hearth's server and everything that talks to it: the public API
 * (CLI, curl, UI) and the internal executor protocol. JSON, snake_case fields. These TypeBox
 * schemas are plain JSON Schema, so the server validates requests with them and clients get
 * the same types.
 */
import { Type, type Static } from 'typebox';

const StringMap = Type.Record(Type.String(), Type.String());

export const Step = Type.Object({ run: Type.String({ minLength: 1 }) }, { additionalProperties: false });
export type Step = Static<typeof Step>;

export const RunRequest = Type.Object(
  {
    repo: Type.String({ minLength: 1, description: 'Any git URL the executor can reach: file://, https://, ssh://' }),
    branch: Type.Optional(Type.String()),
    commit_sha: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{4,64}$' })),
    /** The repository's default branch (used for snapshot fallback and reporting). */
    default_branch: Type.Optional(Type.String()),
    /** Binary-safe patches (`git diff --binary`), base64, applied in order with `git apply --binary`. */
    patches: Type.Optional(Type.Array(Type.String())),
    steps: Type.Array(Step, { minItems: 1 }),
    env: Type.Optional(StringMap),
    /** Duration such as "90s", "10m", "1h". Default: no timeout beyond the server's maximum. */
    timeout: Type.Optional(Type.String()),
    /** Return as soon as the run is queued instead of waiting for a runner to pick it up. */
    async: Type.Optional(Type.Boolean()),
    /** Block until the run finishes and include its exit code. */
    wait_until: Type.Optional(Type.Union([Type.Literal('QUEUED'), Type.Literal('STARTED'), Type.Literal('COMPLETED')])),
    /** Part of the runner key: `salt` or `runner-recycling-key` fork the warm lineage. */
    platform_properties: Type.Optional(StringMap),
    /** Headers that are not part of the runner key, e.g. `x-hearth-env.SECRET=value`. Never stored in clear. */
    remote_headers: Type.Optional(Type.Array(Type.String())),
    os: Type.Optional(Type.String()),
    arch: Type.Optional(Type.String()),
    /** Directory relative to the repo root in which steps run (a workspace in a subdirectory). */
    workspace_dir: Type.Optional(Type.String()),
    /** Display name, e.g. "remote test //...". */
    name: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type RunRequest = Static<typeof RunRequest>;

export const RunResponse = Type.Object({
  invocation_id: Type.String(),
  status: Type.Optional(Type.String()),
  exit_code: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  url: Type.Optional(Type.String()),
});
export type RunResponse = Static<typeof RunResponse>;

export const InvocationSelector = Type.Object({ invocation_id: Type.String({ minLength: 1 }) });
export type InvocationSelector = Static<typeof InvocationSelector>;

export const SnapshotAttempt = Type.Object({
  level: Type.Union([Type.Literal('branch'), Type.Literal('base'), Type.Literal('default')]),
  ref: Type.String(),
  outcome: Type.String(),
  reason: Type.Optional(Type.String()),
});

export const SnapshotProvenance = Type.Object({
  /** Which fallback level matched (branch → PR base → default branch), or null: started cold. */
  level: Type.Union([Type.Literal('branch'), Type.Literal('base'), Type.Literal('default'), Type.Null()]),
  ref: Type.Union([Type.String(), Type.Null()]),
  manifest: Type.Union([Type.String(), Type.Null()]),
  restore_ms: Type.Number(),
  bytes_fetched: Type.Number(),
  bytes_reused_locally: Type.Number(),
  /** Every key tried, in order, and why it was passed over. */
  attempts: Type.Array(SnapshotAttempt),
});
export type SnapshotProvenance = Static<typeof SnapshotProvenance>;

export const SnapshotSave = Type.Object({
  saved: Type.Boolean(),
  why: Type.String(),
  bytes_uploaded: Type.Optional(Type.Number()),
  bytes_total: Type.Optional(Type.Number()),
  duration_ms: Type.Optional(Type.Number()),
});
export type SnapshotSave = Static<typeof SnapshotSave>;

export const RunnerProvenance = Type.Object({
  /** How the run got its runner: a recycled warm runner, a runner restored from a snapshot, or cold. */
  kind: Type.Union([Type.Literal('recycled'), Type.Literal('snapshot'), Type.Literal('cold')]),
  runner_id: Type.String(),
  executor_id: Type.String(),
  /** Human-readable why, e.g. "no idle runner for this key on executor e1". */
  reason: Type.String(),
  /** How many runs this runner had served before this one. */
  previous_runs: Type.Integer(),
  snapshot: Type.Optional(SnapshotProvenance),
  /** What happened to this run's warm state afterwards (sent after the result). */
  save: Type.Optional(SnapshotSave),
});
export type RunnerProvenance = Static<typeof RunnerProvenance>;

export const StepTiming = Type.Object({
  index: Type.Integer(),
  run: Type.String(),
  duration_ms: Type.Number(),
  exit_code: Type.Union([Type.Integer(), Type.Null()]),
});
export type StepTiming = Static<typeof StepTiming>;

export const Timings = Type.Object({
  queued_ms: Type.Optional(Type.Number()),
  runner_acquire_ms: Type.Optional(Type.Number()),
  /** Part of runner_acquire_ms: restoring a snapshot onto a cold runner. */
  restore_ms: Type.Optional(Type.Number()),
  git_sync_ms: Type.Optional(Type.Number()),
  patch_ms: Type.Optional(Type.Number()),
  steps: Type.Optional(Type.Array(StepTiming)),
  total_ms: Type.Optional(Type.Number()),
});
export type Timings = Static<typeof Timings>;

export const RunStatus = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
  Type.Literal('timed_out'),
]);

/** What a workflow run was started for (absent for Remote Bazel runs). */
export const WorkflowRunInfo = Type.Object({
  repo_id: Type.String(),
  action_name: Type.String(),
  event: Type.Union([Type.Literal('push'), Type.Literal('pull_request'), Type.Literal('manual')]),
  pull_request_number: Type.Union([Type.Integer(), Type.Null()]),
  /** The commit whose run cancelled this one (a newer push to the same branch), if any. */
  superseded_by: Type.Union([Type.String(), Type.Null()]),
});
export type WorkflowRunInfo = Static<typeof WorkflowRunInfo>;

export const Invocation = Type.Object({
  invocation_id: Type.String(),
  name: Type.String(),
  status: RunStatus,
  /** Why the run ended the way it did ("step 2 exited 3", "executor lost", …). */
  status_reason: Type.String(),
  exit_code: Type.Union([Type.Integer(), Type.Null()]),
  repo: Type.String(),
  branch: Type.Union([Type.String(), Type.Null()]),
  commit_sha: Type.Union([Type.String(), Type.Null()]),
  steps: Type.Array(Step),
  created_at: Type.String(),
  started_at: Type.Union([Type.String(), Type.Null()]),
  finished_at: Type.Union([Type.String(), Type.Null()]),
  executor_id: Type.Union([Type.String(), Type.Null()]),
  runner: Type.Union([RunnerProvenance, Type.Null()]),
  timings: Timings,
  /** Index of the step that failed or was running when the run ended, if any. */
  failed_step: Type.Union([Type.Integer(), Type.Null()]),
  attempt: Type.Integer(),
  url: Type.String(),
  /** False for untrusted runs (pull requests from forks): no secrets, no shared warm state written. */
  trusted: Type.Optional(Type.Boolean()),
  workflow: Type.Optional(Type.Union([WorkflowRunInfo, Type.Null()])),
});
export type Invocation = Static<typeof Invocation>;

export const GetLogRequest = Type.Object({
  invocation_id: Type.String({ minLength: 1 }),
  offset: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Upper bound on bytes returned. */
  limit: Type.Optional(Type.Integer({ minimum: 1 })),
});
export type GetLogRequest = Static<typeof GetLogRequest>;

export const GetLogResponse = Type.Object({
  /** Log bytes from `offset`, base64-encoded so that arbitrary bytes survive JSON. */
  data: Type.String(),
  encoding: Type.Literal('base64'),
  next_offset: Type.Integer(),
  /** True when the run has finished and `next_offset` is the end of the log. */
  complete: Type.Boolean(),
});
export type GetLogResponse = Static<typeof GetLogResponse>;

export const ErrorBody = Type.Object({ code: Type.String(), message: Type.String() });
export type ErrorBody = Static<typeof ErrorBody>;

// ---------------------------------------------------------------------------------------------
// Internal executor protocol. Executors pull work over HTTP and never touch the server's disk.

export const ExecutorInfo = Type.Object({
  executor_id: Type.String({ minLength: 1 }),
  hostname: Type.String(),
  os: Type.String(),
  arch: Type.String(),
  max_runners: Type.Integer({ minimum: 1 }),
  version: Type.String(),
});
export type ExecutorInfo = Static<typeof ExecutorInfo>;

export const ExecutorState = Type.Object({
  executor_id: Type.String({ minLength: 1 }),
  /** RunnerKeys of the idle warm runners this executor holds, for affinity routing. */
  idle_runner_keys: Type.Array(Type.String()),
  active_invocations: Type.Array(Type.String()),
  free_slots: Type.Integer({ minimum: 0 }),
  /** `<runner key>@<git ref>` of snapshots whose chunks this executor holds locally (a routing hint). */
  snapshot_refs: Type.Optional(Type.Array(Type.String())),
});
export type ExecutorState = Static<typeof ExecutorState>;

export const RegisterResponse = Type.Object({
  heartbeat_interval_ms: Type.Integer(),
  /** The server's REAPI cache (`grpc://host:port`) for runners' --remote_cache, or null. */
  cache_address: Type.Union([Type.String(), Type.Null()]),
});
export type RegisterResponse = Static<typeof RegisterResponse>;

export const HeartbeatResponse = Type.Object({
  cancel_invocations: Type.Array(Type.String()),
  /** The server does not know this executor (e.g. it was declared lost): register again. */
  reregister: Type.Boolean(),
});
export type HeartbeatResponse = Static<typeof HeartbeatResponse>;

export const LeaseRequest = Type.Intersect([ExecutorState, Type.Object({ wait_ms: Type.Integer({ minimum: 0, maximum: 60_000 }) })]);
export type LeaseRequest = Static<typeof LeaseRequest>;

/** A pull request's head and base, as the runner needs them to build the merge result. */
export const PullRequestInfo = Type.Object({
  number: Type.Integer(),
  /** Clone URL of the head repository: a fork's URL when the PR comes from one. */
  head_repo_url: Type.String(),
  head_sha: Type.String(),
  head_branch: Type.String(),
  /** The branch the PR targets, fetched from the run's `repo`. */
  base_branch: Type.String(),
  /** Merge the base branch into the head before running the steps. */
  merge_with_base: Type.Boolean(),
});
export type PullRequestInfo = Static<typeof PullRequestInfo>;

export const Task = Type.Object({
  invocation_id: Type.String(),
  attempt: Type.Integer(),
  repo: Type.String(),
  branch: Type.Union([Type.String(), Type.Null()]),
  commit_sha: Type.Union([Type.String(), Type.Null()]),
  patches: Type.Array(Type.String()),
  steps: Type.Array(Step),
  env: StringMap,
  /** Values that must be masked wherever logs are stored or shown. */
  secret_values: Type.Array(Type.String()),
  timeout_ms: Type.Union([Type.Integer(), Type.Null()]),
  runner_key: Type.String(),
  platform_properties: StringMap,
  workspace_dir: Type.String(),
  git_clean_exclude: Type.Array(Type.String()),
  git_fetch_depth: Type.Union([Type.Integer(), Type.Null()]),
  /** Start from a cold runner even if a warm one exists. */
  clean: Type.Boolean(),
  /** The repository's default branch: the last snapshot fallback. */
  default_branch: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  /** Set for workflow runs of a pull request: the runner checks out the head and merges the base. */
  pull_request: Type.Optional(Type.Union([PullRequestInfo, Type.Null()])),
  /** Token for fetching `repo` over HTTPS (trusted runs only); exposed to steps as $REPO_TOKEN, masked. */
  repo_token: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  /** False for untrusted runs (pull requests from forks): no secrets, and no warm state may be written. Absent = true. */
  trusted: Type.Optional(Type.Boolean()),
  /** Lines the runner prints at the top of the log (e.g. config warnings). */
  notes: Type.Optional(Type.Array(Type.String())),
});
export type Task = Static<typeof Task>;

export const LeaseResponse = Type.Object({ task: Type.Union([Task, Type.Null()]) });
export type LeaseResponse = Static<typeof LeaseResponse>;

export const RunEvent = Type.Union([
  Type.Object({ type: Type.Literal('started'), runner: RunnerProvenance }),
  /** After the result: whether the run's warm state was saved as a snapshot, and why (not). */
  Type.Object({ type: Type.Literal('snapshot_saved'), save: SnapshotSave }),
  Type.Object({ type: Type.Literal('step_started'), index: Type.Integer() }),
  Type.Object({
    type: Type.Literal('finished'),
    status: RunStatus,
    exit_code: Type.Union([Type.Integer(), Type.Null()]),
    reason: Type.String(),
    failed_step: Type.Union([Type.Integer(), Type.Null()]),
    timings: Timings,
  }),
]);
export type RunEvent = Static<typeof RunEvent>;

export const UpdateRunRequest = Type.Object({
  executor_id: Type.String(),
  invocation_id: Type.String(),
  attempt: Type.Integer(),
  event: RunEvent,
});
export type UpdateRunRequest = Static<typeof UpdateRunRequest>;

export const AppendLogRequest = Type.Object({
  executor_id: Type.String(),
  invocation_id: Type.String(),
  attempt: Type.Integer(),
  /** Byte offset of `data` in the log. Appends are idempotent: bytes already stored are skipped. */
  offset: Type.Integer({ minimum: 0 }),
  data: Type.String({ description: 'base64' }),
});
export type AppendLogRequest = Static<typeof AppendLogRequest>;

export const AppendLogResponse = Type.Object({ next_offset: Type.Integer() });
export type AppendLogResponse = Static<typeof AppendLogResponse>;
