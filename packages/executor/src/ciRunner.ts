import { existsSync } from 'node:fs';
import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { StepTiming, Task, Timings } from '@hearth/api';
import { type RunState, exitCodeForSignal, formatDurationMs, isInfraExitCode } from '@hearth/core';
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
  const { task, runner } = ctx;
  const t0 = Date.now();
  const gitEnv = baseEnv(ctx);
  const git = (args: string[]) => capture(ctx, ['git', ...args], runner.repoDir, gitEnv);

  // --- git sync ---
  let sha: string;
  try {
    const tg = Date.now();
    sha = await syncRepo(ctx, git);
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
      keepRunner: err instanceof SetupError,
      discardReason: err instanceof SetupError ? '' : `git setup crashed: ${message}`,
    };
  }

  // --- steps ---
  const cwd = task.workspace_dir ? join(runner.repoDir, task.workspace_dir) : runner.repoDir;
  if (!existsSync(cwd)) {
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
    HOME: ctx.runner.homeDir,
    TMPDIR: ctx.runner.tmpDir,
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
    HEARTH_ARTIFACTS_DIR: runner.artifactsDir,
    GIT_COMMIT: sha,
    ...(task.branch ? { GIT_BRANCH: task.branch } : {}),
  };
}

async function capture(ctx: RunContext, argv: string[], cwd: string, env: Record<string, string>) {
  const chunks: Buffer[] = [];
  const r = await ctx.runner.agent.exec(argv, { cwd, env, onOutput: (b) => chunks.push(b), signal: ctx.signal, abortSignalName: 'SIGTERM', killGraceMs: 2000 });
  if (ctx.signal.aborted) throw new Error('stopped');
  return { ok: r.code === 0, out: Buffer.concat(chunks).toString('utf8').trim(), code: r.code, error: r.error };
}

type Git = (args: string[]) => ReturnType<typeof capture>;

/** Brings repo/ to the requested commit, exactly: no stale files, verified HEAD. Returns the sha. */
async function syncRepo(ctx: RunContext, git: Git): Promise<string> {
  const { task } = ctx;
  if (!existsSync(join(ctx.runner.repoDir, '.git'))) {
    const init = await git(['init', '-q', '.']);
    if (!init.ok) throw new Error(`git init failed: ${init.out || init.error}`);
  }
  const hasOrigin = (await git(['remote', 'get-url', 'origin'])).ok;
  const setUrl = await git(hasOrigin ? ['remote', 'set-url', 'origin', task.repo] : ['remote', 'add', 'origin', task.repo]);
  if (!setUrl.ok) throw new Error(`git remote setup failed: ${setUrl.out}`);

  const want = task.commit_sha;
  const haveCommit = async (rev: string) => (await git(['cat-file', '-e', `${rev}^{commit}`])).ok;
  const depth = task.git_fetch_depth && task.git_fetch_depth > 0 ? [`--depth=${task.git_fetch_depth}`] : [];
  const fetchMsgs: string[] = [];
  let sha: string;
  if (want && (await haveCommit(want)) && /^[0-9a-f]{40}$/.test(want)) {
    sha = want; // warm runner already has it: no network round trip at all
    ctx.log(note(`commit ${want.slice(0, 12)} already present, no fetch needed`));
  } else {
    ctx.log(note(`fetching ${want ? `commit ${want.slice(0, 12)}` : `branch ${task.branch}`} from ${task.repo}`));
    if (want && /^[0-9a-f]{40}$/.test(want)) {
      // Shallow by default for a single commit: CI needs the tree, not the history.
      const f = await git(['fetch', '--force', '--no-tags', '--quiet', depth[0] ?? '--depth=1', 'origin', want]);
      if (!f.ok) fetchMsgs.push(f.out);
    }
    if (task.branch && (!want || !(await haveCommit(want)))) {
      const f = await git(['fetch', '--force', '--no-tags', '--quiet', ...depth, 'origin', `+refs/heads/${task.branch}:refs/remotes/origin/${task.branch}`]);
      if (!f.ok) fetchMsgs.push(f.out);
    }
    if (want) {
      const full = await git(['rev-parse', '--verify', '--quiet', `${want}^{commit}`]);
      if (!full.ok) {
        throw new SetupError(
          `commit ${want} was not found in ${task.repo}${task.branch ? ` (branch ${task.branch})` : ''}: push it first, or check the sha.` +
            (fetchMsgs.length ? ` git said: ${fetchMsgs.join(' | ')}` : ''),
        );
      }
      sha = full.out;
    } else {
      const tip = await git(['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${task.branch}^{commit}`]);
      if (!tip.ok) throw new SetupError(`branch ${task.branch} was not found in ${task.repo}: ${fetchMsgs.join(' | ') || 'no such ref'}`);
      sha = tip.out;
    }
  }

  const clean = await git(['clean', '-x', '-d', '--force', '--quiet', ...task.git_clean_exclude.flatMap((e) => ['-e', e])]);
  if (!clean.ok) throw new Error(`git clean failed: ${clean.out}`);
  const co = await git(task.branch ? ['checkout', '--force', '--quiet', '-B', task.branch, sha] : ['checkout', '--force', '--quiet', '--detach', sha]);
  if (!co.ok) throw new SetupError(`git checkout of ${sha} failed: ${co.out}`);
  if (existsSync(join(ctx.runner.repoDir, '.gitmodules'))) {
    const sub = await git(['submodule', 'update', '--init', '--recursive', '--force']);
    if (!sub.ok) throw new SetupError(`git submodule update failed: ${sub.out}`);
  }
  const head = await git(['rev-parse', 'HEAD']);
  if (!head.ok || head.out !== sha) throw new Error(`after checkout HEAD is ${head.out}, expected ${sha}`);
  return sha;
}

/** Applies every patch or none: on failure the tree is reset to the clean commit. */
async function applyPatches(ctx: RunContext, git: Git): Promise<void> {
  const { task, runner } = ctx;
  for (const [i, b64] of task.patches.entries()) {
    const file = join(runner.tmpDir, `patch-${i}.diff`);
    await writeFile(file, Buffer.from(b64, 'base64'));
    const r = await git(['apply', '--binary', '--whitespace=nowarn', file]);
    await rm(file, { force: true });
    if (!r.ok) {
      await git(['reset', '--hard', '--quiet']);
      await git(['clean', '-x', '-d', '--force', '--quiet', ...task.git_clean_exclude.flatMap((e) => ['-e', e])]);
      throw new SetupError(`patch ${i + 1} of ${task.patches.length} does not apply: ${r.out}`);
    }
  }
  ctx.log(note(`applied ${task.patches.length} patch${task.patches.length === 1 ? '' : 'es'}`));
}
