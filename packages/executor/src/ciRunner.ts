import { existsSync } from 'node:fs';
import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { PullRequestInfo, StepTiming, Task, Timings } from '@hearth/api';
import { type RunState, exitCodeForSignal, formatDurationMs, isInfraExitCode, normalizeRepoUrl } from '@hearth/core';
import type { ExecResult } from './agent/agentClient.ts';
import type { Runner } from './runner.ts';

/** Why a run is being stopped early; the abort reason of the run's AbortSignal. */
export type StopReason = { kind: 'cancelled' } | { kind: 'timed_out'; timeoutMs: number } | { kind: 'lost'; why: string };

export interface RunContext {
  task: Task;
  runner: Runner;
  /** Aborted with a StopReason on cancel, timeout or lost ownership. */
  signal: AbortSignal;
  /** Appends bytes to the run's log (masking happens behind it). */
  log: (chunk: Buffer) => void;
  onStepStarted: (index: number) => Promise<void>;
  /** Directory holding the `bazel` the runner should use; prepended to PATH. */
  binDir: string;
  killGraceMs: number;
}

export interface RunOutcome {
  status: RunState;
  exitCode: number | null;
  reason: string;
  failedStep: number | null;
  timings: Timings;
  /** Whether the runner is fit to serve the next run of its key, and if not, why. */
  keepRunner: boolean;
  discardReason: string;
}

class SetupError extends Error {}

const note = (text: string) => Buffer.from(`\x1b[36m[hearth]\x1b[0m ${text}\n`);

/**
 * The ci runner: makes the runner's checkout exactly the requested commit (+ patches), then runs
 * each step with `bash -eo pipefail` and stops at the first failure. A non-zero exit code is a
 * result, not an error; only setup problems (unknown commit, bad patch) end the run without one.
 */
export async function runTask(ctx: RunContext, timings: Timings): Promise<RunOutcome> {
  for (const line of ctx.task.notes ?? []) ctx.log(note(line));
  const outcome = await runTaskSteps(ctx, timings);
  // An untrusted run (a fork's pull request) ran code nobody vetted: whatever it left in the runner
  // (a Bazel server, output base, caches) must never serve another run.
  if (ctx.task.trusted === false && outcome.keepRunner) {
    return { ...outcome, keepRunner: false, discardReason: 'it served an untrusted run (a pull request from a fork)' };
  }
  return outcome;
}

async function runTaskSteps(ctx: RunContext, timings: Timings): Promise<RunOutcome> {
  const { task, runner } = ctx;
  const t0 = Date.now();
  const gitEnv = baseEnv(ctx);
  // git sync alone may authenticate with the repo token; steps get it only as $REPO_TOKEN.
  const syncEnv = { ...gitEnv, ...gitAuthEnv(task), ...gitIdentityEnv(task) };
  const git = (args: string[]) => capture(ctx, ['git', ...args], runner.inside.repoDir, syncEnv);

  // --- git sync ---
  let sha: string;
  let checkedOut = false;
  try {
    const tg = Date.now();
    sha = await syncRepo(ctx, git);
    checkedOut = true;
    timings.git_sync_ms = Date.now() - tg;
    if (task.patches.length > 0) {
      const tp = Date.now();
      await applyPatches(ctx, git);
      timings.patch_ms = Date.now() - tp;
    }
  } catch (err) {
    const stop = ctx.signal.aborted ? (ctx.signal.reason as StopReason) : null;
    if (stop) return stopped(stop, null, null, timings, t0);
    const message = (err as Error).message;
    ctx.log(note(`\x1b[31m${message}\x1b[0m`));
    timings.total_ms = Date.now() - t0;
    return {
      status: 'failed',
      exitCode: null,
      reason: message,
      failedStep: null,
      timings,
      // A runner that never got a checkout (e.g. a mistyped repo URL) holds nothing warm: drop it
      // rather than let it take a slot from useful runners.
      keepRunner: err instanceof SetupError && (checkedOut || runner.runs > 0),
      discardReason: err instanceof SetupError ? `its first run could not check out the repository: ${message}` : `git setup crashed: ${message}`,
    };
  }

  // --- steps ---
  // Paths as the host sees them (for checks) and as the runner sees them (for processes).
  const cwd = task.workspace_dir ? join(runner.inside.repoDir, task.workspace_dir) : runner.inside.repoDir;
  if (!existsSync(task.workspace_dir ? join(runner.repoDir, task.workspace_dir) : runner.repoDir)) {
    const reason = `workspace directory "${task.workspace_dir}" does not exist at commit ${sha}`;
    ctx.log(note(`\x1b[31m${reason}\x1b[0m`));
    return { status: 'failed', exitCode: null, reason, failedStep: null, timings: { ...timings, total_ms: Date.now() - t0 }, keepRunner: true, discardReason: '' };
  }
  const env = { ...gitEnv, ...stepEnv(ctx, sha), ...task.env };
  const stepTimings: StepTiming[] = [];
  timings.steps = stepTimings;
  for (const [index, step] of task.steps.entries()) {
    if (ctx.signal.aborted) return stopped(ctx.signal.reason as StopReason, index, null, timings, t0);
    await ctx.onStepStarted(index);
    ctx.log(note(`step ${index + 1}/${task.steps.length}: ${step.run}`));
    const ts = Date.now();
    // One stream for stdout+stderr keeps their interleaving as the user would see it in a terminal.
    const result = await runner.agent.exec(['bash', '-c', 'exec 2>&1; exec bash -eo pipefail -c "$1"', 'hearth-step', step.run], {
      cwd,
      env,
      onOutput: ctx.log,
      signal: ctx.signal,
      abortSignalName: 'SIGINT',
      killGraceMs: ctx.killGraceMs,
    });
    const code = exitCodeOf(result);
    stepTimings.push({ index, run: step.run, duration_ms: Date.now() - ts, exit_code: code });
    const leftovers = await runner.agent.groupAlive(result.execId);
    if (leftovers) runner.agent.killGroup(result.execId);
    if (ctx.signal.aborted) return stopped(ctx.signal.reason as StopReason, index, code, timings, t0);
    if (result.error && result.code === null && result.signal === null) {
      const reason = `step ${index + 1} could not start: ${result.error}`;
      return { status: 'failed', exitCode: null, reason, failedStep: index, timings: { ...timings, total_ms: Date.now() - t0 }, keepRunner: false, discardReason: reason };
    }
    if (code !== 0) {
      const how = result.signal ? `was killed by ${result.signal} (exit ${code})` : `exited ${code}`;
      ctx.log(note(`step ${index + 1} ${how} after ${formatDurationMs(Date.now() - ts)}`));
      return finish('failed', code, `step ${index + 1} (${step.run}) ${how}`, index, leftovers);
    }
    if (leftovers) return finish('succeeded', 0, 'all steps succeeded', null, leftovers);
  }
  return finish('succeeded', 0, 'all steps succeeded', null, false);

  function finish(status: RunState, code: number | null, reason: string, failedStep: number | null, leftovers: boolean): RunOutcome {
    timings.total_ms = Date.now() - t0;
    let discardReason = '';
    if (leftovers) discardReason = 'a process started by the run was still running in the workspace after its step ended';
    else if (code !== null && isInfraExitCode(code)) discardReason = `Bazel exited ${code} (an infrastructure error)`;
    else if (runner.bazelServerCrashed()) discardReason = 'the Bazel server died during the run';
    return { status, exitCode: code, reason, failedStep, timings, keepRunner: discardReason === '', discardReason };
  }
}

function stopped(stop: StopReason, stepIndex: number | null, code: number | null, timings: Timings, t0: number): RunOutcome {
  timings.total_ms = Date.now() - t0;
  const where = stepIndex === null ? 'before its first step' : `in step ${stepIndex + 1}`;
  const base = { exitCode: code, failedStep: stepIndex, timings, keepRunner: false };
  if (stop.kind === 'timed_out') {
    return { ...base, status: 'timed_out', reason: `timed out after ${formatDurationMs(stop.timeoutMs)} ${where}`, discardReason: 'the run timed out' };
  }
  if (stop.kind === 'lost') return { ...base, status: 'failed', reason: stop.why, discardReason: stop.why };
  return { ...base, status: 'cancelled', reason: `cancelled ${where}`, discardReason: 'the run was cancelled' };
}

function exitCodeOf(r: ExecResult): number {
  if (r.code !== null) return r.code;
  if (r.signal) return exitCodeForSignal(r.signal);
  return 1;
}

function baseEnv(ctx: RunContext): Record<string, string> {
  const e = process.env;
  const env: Record<string, string> = {
    PATH: `${ctx.binDir}:${e.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
    HOME: ctx.runner.inside.homeDir,
    TMPDIR: ctx.runner.inside.tmpDir,
    LANG: e.LANG ?? 'C.UTF-8',
    USER: e.USER ?? 'hearth',
    GIT_TERMINAL_PROMPT: '0',
  };
  if (e.TZ) env.TZ = e.TZ;
  return env;
}

function stepEnv(ctx: RunContext, sha: string): Record<string, string> {
  const { task, runner } = ctx;
  return {
    CI: 'true',
    HEARTH: 'true',
    HEARTH_INVOCATION_ID: task.invocation_id,
    HEARTH_RUNNER_ID: runner.id,
    HEARTH_ARTIFACTS_DIR: runner.inside.artifactsDir,
    GIT_COMMIT: sha,
    ...(task.branch ? { GIT_BRANCH: task.branch } : {}),
    ...(task.repo_token && task.trusted !== false ? { REPO_USER: 'x-access-token', REPO_TOKEN: task.repo_token } : {}),
  };
}

/**
 * Lets git fetch `task.repo` over HTTPS with the repo token, as an extra header scoped to that
 * host (never written to .git/config, never sent to other hosts, never for untrusted runs).
 */
function gitAuthEnv(task: Task): Record<string, string> {
  if (!task.repo_token || task.trusted === false) return {};
  let origin: string;
  try {
    const u = new URL(task.repo);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return {};
    origin = `${u.protocol}//${u.host}/`;
  } catch {
    return {};
  }
  const basic = Buffer.from(`x-access-token:${task.repo_token}`).toString('base64');
  return { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: `http.${origin}.extraHeader`, GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}` };
}

/** Who the merge commit of a pull request run is by: the run's env may say, else hearth. */
function gitIdentityEnv(task: Task): Record<string, string> {
  const name = task.env.GIT_COMMITTER_NAME ?? 'hearth';
  const email = task.env.GIT_COMMITTER_EMAIL ?? 'hearth@localhost';
  return {
    GIT_COMMITTER_NAME: name,
    GIT_COMMITTER_EMAIL: email,
    GIT_AUTHOR_NAME: task.env.GIT_AUTHOR_NAME ?? name,
    GIT_AUTHOR_EMAIL: task.env.GIT_AUTHOR_EMAIL ?? email,
  };
}

async function capture(ctx: RunContext, argv: string[], cwd: string, env: Record<string, string>) {
  const chunks: Buffer[] = [];
  const r = await ctx.runner.agent.exec(argv, { cwd, env, onOutput: (b) => chunks.push(b), signal: ctx.signal, abortSignalName: 'SIGTERM', killGraceMs: 2000 });
  if (ctx.signal.aborted) throw new Error('stopped');
  return { ok: r.code === 0, out: Buffer.concat(chunks).toString('utf8').trim(), code: r.code, error: r.error };
}

type Git = (args: string[]) => ReturnType<typeof capture>;

/**
 * Brings repo/ to the requested commit, exactly: no stale files, verified HEAD. Returns the sha.
 * For a pull request the commit is the PR head, fetched from the head repository (the fork when it
 * is one), and with `merge_with_base` the base branch is then merged in, so the steps build the
 * merge result.
 */
async function syncRepo(ctx: RunContext, git: Git): Promise<string> {
  const { task } = ctx;
  const pr = task.pull_request ?? null;
  if (!existsSync(join(ctx.runner.repoDir, '.git'))) {
    const init = await git(['init', '-q', '.']);
    if (!init.ok) throw new Error(`git init failed: ${init.out || init.error}`);
  }
  const setRemote = async (name: string, url: string) => {
    const has = (await git(['remote', 'get-url', name])).ok;
    const r = await git(has ? ['remote', 'set-url', name, url] : ['remote', 'add', name, url]);
    if (!r.ok) throw new Error(`git remote setup failed: ${r.out}`);
  };
  await setRemote('origin', task.repo);
  const fromFork = pr !== null && normalizeRepoUrl(pr.head_repo_url) !== normalizeRepoUrl(task.repo);
  if (fromFork) await setRemote('pr-head', pr.head_repo_url);
  const remote = fromFork ? 'pr-head' : 'origin';
  const sourceUrl = fromFork ? pr.head_repo_url : task.repo;

  const want = pr ? pr.head_sha : task.commit_sha;
  const branch = pr ? pr.head_branch : task.branch;
  const merging = pr?.merge_with_base === true;
  const haveCommit = async (rev: string) => (await git(['cat-file', '-e', `${rev}^{commit}`])).ok;
  const depth = task.git_fetch_depth && task.git_fetch_depth > 0 ? [`--depth=${task.git_fetch_depth}`] : [];
  // A merge needs history back to the merge base: no shallow fetches unless the action set a depth,
  // and a runner left shallow by an earlier run gets its history first.
  if (merging && depth.length === 0 && (await git(['rev-parse', '--is-shallow-repository'])).out === 'true') {
    await git(['fetch', '--unshallow', '--no-tags', '--quiet', 'origin']);
  }
  const fetchMsgs: string[] = [];
  let sha: string;
  if (want && (await haveCommit(want)) && /^[0-9a-f]{40}$/.test(want)) {
    sha = want; // warm runner already has it: no network round trip at all
    ctx.log(note(`commit ${want.slice(0, 12)} already present, no fetch needed`));
  } else {
    ctx.log(note(`fetching ${want ? `commit ${want.slice(0, 12)}` : `branch ${branch}`} from ${sourceUrl}`));
    if (want && /^[0-9a-f]{40}$/.test(want)) {
      // Shallow by default for a single commit: CI needs the tree, not the history.
      const f = await git(['fetch', '--force', '--no-tags', '--quiet', ...(merging ? depth : [depth[0] ?? '--depth=1']), remote, want]);
      if (!f.ok) fetchMsgs.push(f.out);
    }
    if (branch && (!want || !(await haveCommit(want)))) {
      const f = await git(['fetch', '--force', '--no-tags', '--quiet', ...depth, remote, `+refs/heads/${branch}:refs/remotes/${remote}/${branch}`]);
      if (!f.ok) fetchMsgs.push(f.out);
    }
    if (want) {
      const full = await git(['rev-parse', '--verify', '--quiet', `${want}^{commit}`]);
      if (!full.ok) {
        throw new SetupError(
          `commit ${want} was not found in ${sourceUrl}${branch ? ` (branch ${branch})` : ''}: push it first, or check the sha.` +
            (fetchMsgs.length ? ` git said: ${fetchMsgs.join(' | ')}` : ''),
        );
      }
      sha = full.out;
    } else {
      const tip = await git(['rev-parse', '--verify', '--quiet', `refs/remotes/${remote}/${branch}^{commit}`]);
      if (!tip.ok) throw new SetupError(`branch ${branch} was not found in ${sourceUrl}: ${fetchMsgs.join(' | ') || 'no such ref'}`);
      sha = tip.out;
    }
  }

  // A merge interrupted on this runner (e.g. the executor died mid-merge) must not leak into this run.
  if (existsSync(join(ctx.runner.repoDir, '.git', 'MERGE_HEAD'))) await git(['reset', '--merge', '--quiet']);
  const clean = await git(['clean', '-x', '-d', '--force', '--quiet', ...task.git_clean_exclude.flatMap((e) => ['-e', e])]);
  if (!clean.ok) throw new Error(`git clean failed: ${clean.out}`);
  const co = await git(branch ? ['checkout', '--force', '--quiet', '-B', branch, sha] : ['checkout', '--force', '--quiet', '--detach', sha]);
  if (!co.ok) throw new SetupError(`git checkout of ${sha} failed: ${co.out}`);
  const head = await git(['rev-parse', 'HEAD']);
  if (!head.ok || head.out !== sha) throw new Error(`after checkout HEAD is ${head.out}, expected ${sha}`);
  if (merging) await mergeWithBase(ctx, git, pr, sha, depth);
  if (existsSync(join(ctx.runner.repoDir, '.gitmodules'))) {
    const sub = await git(['submodule', 'update', '--init', '--recursive', '--force']);
    if (!sub.ok) throw new SetupError(`git submodule update failed: ${sub.out}`);
  }
  return sha;
}

/**
 * Merges the PR's base branch (fetched from origin) into the checked-out head. A conflict aborts
 * the merge, leaves the tree clean at the head commit, and fails the run naming both branches.
 */
async function mergeWithBase(ctx: RunContext, git: Git, pr: PullRequestInfo, headSha: string, depth: string[]): Promise<void> {
  const { task } = ctx;
  const baseRef = `refs/remotes/origin/${pr.base_branch}`;
  const f = await git(['fetch', '--force', '--no-tags', '--quiet', ...depth, 'origin', `+refs/heads/${pr.base_branch}:${baseRef}`]);
  if (!f.ok) throw new SetupError(`could not fetch base branch ${pr.base_branch} from ${task.repo}: ${f.out}`);
  const baseSha = (await git(['rev-parse', baseRef])).out;
  const head = `${pr.head_branch} (${headSha.slice(0, 12)})`;
  const base = `${pr.base_branch} (${baseSha.slice(0, 12)})`;
  const m = await git(['merge', '--no-edit', '-m', `Merge ${pr.base_branch} into ${pr.head_branch}`, baseRef]);
  if (m.ok) {
    const merged = (await git(['rev-parse', 'HEAD'])).out;
    ctx.log(note(merged === headSha ? `${pr.head_branch} already contains base branch ${base}` : `merged base branch ${base} into ${head}: ${merged.slice(0, 12)}`));
    return;
  }
  const conflicts = (await git(['diff', '--name-only', '--diff-filter=U'])).out.split('\n').filter(Boolean);
  await git(['merge', '--abort']);
  await git(['reset', '--hard', '--quiet', headSha]);
  await git(['clean', '-x', '-d', '--force', '--quiet', ...task.git_clean_exclude.flatMap((e) => ['-e', e])]);
  if (conflicts.length > 0) {
    const files = conflicts.slice(0, 10).join(', ') + (conflicts.length > 10 ? ` and ${conflicts.length - 10} more` : '');
    throw new SetupError(
      `merge conflict between ${pr.head_branch} and base branch ${pr.base_branch}: ${head} does not merge cleanly with ${base}, conflicting files: ${files}. Merge ${pr.base_branch} into ${pr.head_branch} and push.`,
    );
  }
  const hint = depth.length > 0 ? ' (git_fetch_depth is set: the merge base may be missing; set merge_with_base: false or drop git_fetch_depth)' : '';
  throw new SetupError(`could not merge base branch ${base} into ${head}: ${m.out}${hint}`);
}

/** Applies every patch or none: on failure the tree is reset to the clean commit. */
async function applyPatches(ctx: RunContext, git: Git): Promise<void> {
  const { task, runner } = ctx;
  for (const [i, b64] of task.patches.entries()) {
    const file = join(runner.tmpDir, `patch-${i}.diff`);
    await writeFile(file, Buffer.from(b64, 'base64'));
    const r = await git(['apply', '--binary', '--whitespace=nowarn', join(runner.inside.tmpDir, `patch-${i}.diff`)]);
    await rm(file, { force: true });
    if (!r.ok) {
      await git(['reset', '--hard', '--quiet']);
      await git(['clean', '-x', '-d', '--force', '--quiet', ...task.git_clean_exclude.flatMap((e) => ['-e', e])]);
      throw new SetupError(`patch ${i + 1} of ${task.patches.length} does not apply: ${r.out}`);
    }
  }
  ctx.log(note(`applied ${task.patches.length} patch${task.patches.length === 1 ? '' : 'es'}`));
}
