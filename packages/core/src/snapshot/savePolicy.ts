/**
 * Whether a finished run saves its warm state as a snapshot. Pure: no I/O.
 *
 * Policies (the reference product's `remote-snapshot-save-policy`):
 * - `always`: every eligible run saves.
 * - `first-non-default-ref` (hearth's DEFAULT): default-branch runs always save; a run on another branch
 *   saves only when its own branch had no snapshot yet (it restored from a fallback or started cold), so
 *   each branch gets one snapshot of its own and then reuses it.
 * - `none-available`: default-branch runs always save; a run on another branch saves only when no
 *   snapshot at all was available (it started cold). The most frugal: feature branches keep reading the
 *   default branch's snapshot.
 *
 * Why `first-non-default-ref` is the default: it is the reference product's documented default, and with
 * content-defined chunking a branch's first save uploads only the chunks that differ from the snapshot it
 * restored, so giving each branch its own lineage is cheap while keeping later runs of that branch from
 * drifting back to a stale default-branch snapshot.
 *
 * Whatever the policy, a run never saves when it did not succeed (failed, cancelled, timed out, or still
 * running), when it is untrusted (e.g. a PR from a fork: its branch name is chosen by a stranger and could
 * be `main`, so any key it could write is one trusted runs read), or when it has no branch.
 */
import type { RunState } from '../runState.ts';
import type { SnapshotLevel } from './snapshotKey.ts';

export const SAVE_POLICIES = ['always', 'first-non-default-ref', 'none-available'] as const;
export type SavePolicy = (typeof SAVE_POLICIES)[number];
export const DEFAULT_SAVE_POLICY: SavePolicy = 'first-non-default-ref';

export function isSavePolicy(s: string): s is SavePolicy {
  return (SAVE_POLICIES as readonly string[]).includes(s);
}

export interface SaveContext {
  /** False for runs that must not write shared state (fork PRs, unauthenticated runs). */
  trusted: boolean;
  status: RunState;
  /** The run's own branch (the write key's ref). */
  branch: string;
  defaultBranch: string;
  /** Which lookup level the run restored from; null when it started cold. */
  matchedLevel: SnapshotLevel | null;
}

export interface SaveDecision {
  save: boolean;
  /** One line for the run's provenance record. */
  why: string;
}

export function shouldSave(policy: SavePolicy, ctx: SaveContext): SaveDecision {
  if (ctx.status !== 'succeeded') return { save: false, why: `run ${ctx.status.replace('_', ' ')}: never save` };
  if (!ctx.trusted) return { save: false, why: 'untrusted run: never writes shared warm state' };
  if (!ctx.branch) return { save: false, why: 'run has no branch: no key to write' };
  if (policy === 'always') return { save: true, why: 'policy always' };
  if (ctx.branch === ctx.defaultBranch) {
    return { save: true, why: `${policy}: default branch ${ctx.branch} always saves` };
  }
  if (policy === 'first-non-default-ref') {
    return ctx.matchedLevel === 'branch'
      ? { save: false, why: `first-non-default-ref: branch ${ctx.branch} already has a snapshot` }
      : {
          save: true,
          why: `first-non-default-ref: first snapshot for branch ${ctx.branch} (${ctx.matchedLevel ? `restored from ${ctx.matchedLevel}` : 'started cold'})`,
        };
  }
  return ctx.matchedLevel === null
    ? { save: true, why: `none-available: no snapshot was available for branch ${ctx.branch}` }
    : { save: false, why: `none-available: a ${ctx.matchedLevel} snapshot was available` };
}
