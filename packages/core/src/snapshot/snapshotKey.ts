/**
 * Snapshot keys and the order in which a run looks them up. Pure: no I/O.
 *
 * A snapshot key names one lineage of warm state: (instance, platform properties, runner configuration,
 * git ref). Runs read the first key that has a usable snapshot in `lookupOrder` (own branch → PR base
 * branch → repository default branch → cold) and write only their own branch's key (`writeKeyFor`).
 */
import { createHash } from 'node:crypto';
import { hashProperties, normalizeRepoUrl } from '../runnerKey.ts';

/**
 * Version of the on-disk snapshot format (manifest layout, chunking parameters, what a runner's saved
 * directory contains). Bump it whenever an old snapshot could be misread by new code: every key changes
 * at once, so no run ever restores a snapshot written in an older format.
 */
export const SNAPSHOT_FORMAT_VERSION = 1;

/**
 * Hash of the runner configuration a snapshot was taken with (isolation backend, OS/arch, Bazel version,
 * in-runner paths, resource sizes, …), always including `SNAPSHOT_FORMAT_VERSION`. Key order does not
 * matter; every key and value does. Values are rendered with `String()`, so `4` and `'4'` are the same.
 */
export function runnerConfigHash(config: Readonly<Record<string, string | number | boolean>>): string {
  const props: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) props[k] = String(v);
  const h = createHash('sha256');
  h.update(`hearth-runner-config-v1\nformat=${SNAPSHOT_FORMAT_VERSION}\n`);
  h.update(hashProperties(props));
  return h.digest('hex');
}

/**
 * The instance part of a snapshot key: `<host/path of the repo>#<name>`, where name is the workflow action
 * name or the Remote Bazel run's instance name. The repository URL is normalized (`normalizeRepoUrl`) and
 * its scheme dropped, so `https://github.com/acme/widgets` and `git@github.com:acme/widgets.git` (a
 * webhook's clone URL and a laptop's remote) name the same repository.
 */
export function snapshotInstance(repoUrl: string, name: string): string {
  return `${repoInstancePrefix(repoUrl)}${name}`;
}

/**
 * The prefix shared by every instance of one repository (it ends with the `#` separator, so
 * `acme/widgets` does not also match `acme/widgets-2`). Pass it to `SnapshotIndex.invalidatePrefix`.
 */
export function repoInstancePrefix(repoUrl: string): string {
  return `${normalizeRepoUrl(repoUrl).replace(/^[a-z][a-z0-9+.-]*:\/\//, '')}#`;
}

export interface SnapshotKeyInput {
  /** Repository + action or Remote Bazel run name; see `snapshotInstance`. */
  instance: string;
  /** All platform properties, including `salt` / `runner-recycling-key`: any change forks the lineage. */
  platformProperties: Readonly<Record<string, string>>;
  /** See `runnerConfigHash`; includes the snapshot format version. */
  runnerConfigHash: string;
  /** The git branch the snapshot belongs to. */
  gitRef: string;
}

/** The snapshot key (64 lowercase hex characters). Property order does not matter; every value does. */
export function snapshotKey(input: SnapshotKeyInput): string {
  const h = createHash('sha256');
  h.update('hearth-snapshot-key-v1\n');
  h.update(`instance=${lp(input.instance)}\n`);
  h.update(`platform=${hashProperties({ ...input.platformProperties })}\n`);
  h.update(`config=${lp(input.runnerConfigHash)}\n`);
  h.update(`ref=${lp(input.gitRef)}\n`);
  return h.digest('hex');
}

/** Length-prefixed, so no choice of values can make two different inputs hash alike. */
function lp(s: string): string {
  return `${Buffer.byteLength(s)}:${s}`;
}

export type SnapshotLevel = 'branch' | 'base' | 'default';

export interface SnapshotRef {
  level: SnapshotLevel;
  ref: string;
}

export interface LookupOrderInput {
  /** The run's own branch (for a PR: its head branch). May be empty (detached HEAD). */
  branch: string;
  /** For pull requests: the branch the PR merges into. */
  prBaseBranch?: string | null;
  /** The repository's default branch. */
  defaultBranch: string;
}

/**
 * Which refs to try, best first: the run's branch, then the PR base branch, then the default branch.
 * Empty refs are skipped and a ref appears only once (at its best level), so a PR into `main` of a repo
 * whose default branch is `main` tries [branch, base=main]. An empty branch still reads the fallbacks
 * (reading is always safe); it never writes (see `writeKeyFor`). After the list comes a cold start.
 */
export function lookupOrder(input: LookupOrderInput): SnapshotRef[] {
  const out: SnapshotRef[] = [];
  const seen = new Set<string>();
  const add = (level: SnapshotLevel, ref: string | null | undefined) => {
    if (!ref || seen.has(ref)) return;
    seen.add(ref);
    out.push({ level, ref });
  };
  add('branch', input.branch);
  add('base', input.prBaseBranch);
  add('default', input.defaultBranch);
  return out;
}

/** `lookupOrder` with each ref's key: what a run reads, in order. */
export function lookupKeys(
  base: Omit<SnapshotKeyInput, 'gitRef'>,
  refs: LookupOrderInput,
): (SnapshotRef & { key: string })[] {
  return lookupOrder(refs).map((r) => ({ ...r, key: snapshotKey({ ...base, gitRef: r.ref }) }));
}

/**
 * The only key a run may write: its own branch's. Fallback keys (base, default) are never written by
 * another branch's run. Null when the run has no branch (nothing to write to).
 */
export function writeKeyFor(base: Omit<SnapshotKeyInput, 'gitRef'>, branch: string): string | null {
  if (!branch) return null;
  return snapshotKey({ ...base, gitRef: branch });
}
