/**
 * The workflow config: `hearth.yaml` at the repository root, or `buildbuddy.yaml` (accepted unchanged).
 * Pure: the caller reads the file and passes its text in.
 *
 * Behaviour follows reference-product-spec §1 (BuildBuddy's `config.go` + ci_runner), with these
 * deliberate differences, all of them stricter or more precise:
 * - Every scalar is read from its SOURCE TEXT, never from YAML's type resolution: `branches: [1.10, on]`
 *   are the branches "1.10" and "on", `env: {V: 010}` sets V to "010".
 * - Unknown keys are warnings (BuildBuddy ignores them silently); wrong types, bad durations, bad sizes,
 *   duplicate action names, unknown `pull_request.types`, and setting both `steps` and `bazel_commands`
 *   are errors at parse time (BuildBuddy fails some of these only when the action runs).
 * - A field whose value is YAML null (`key:`, `key: ~`, `key: null`) counts as not set, like Go's
 *   yaml.v2. Inside lists and string maps, `~`/`null` are text like any other scalar and an empty item
 *   is "".
 * - YAML merge keys (`<<: *defaults`) are supported, explicit keys win over merged ones. Top-level
 *   keys starting with `x-` (e.g. `x-defaults: &defaults {...}`) are ignored without a warning.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Scalar, type YAMLMap } from 'yaml';
import { HearthError } from '../errors.ts';
import { parseByteQuantity, parseConfigDurationMs, parseCpuMillis } from './quantities.ts';
import { matchesAnyRefPattern, refPatternWarning } from './refPattern.ts';

// ---------------------------------------------------------------------------------------------------
// Public types

/** Config file names looked up at the repository root, in this order. */
export const WORKFLOW_CONFIG_FILE_NAMES = ['hearth.yaml', 'buildbuddy.yaml'] as const;

/** A problem in a config file. `line` and `column` are 1-based. */
export interface ConfigDiagnostic {
  file: string;
  line: number;
  column: number;
  message: string;
}

export function formatDiagnostic(d: ConfigDiagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.message}`;
}

/** The config cannot be used. `message` lists every diagnostic as `file:line:col: message`, one a line. */
export class ConfigError extends HearthError {
  readonly diagnostics: ConfigDiagnostic[];
  constructor(diagnostics: ConfigDiagnostic[]) {
    super('invalid_config', diagnostics.map(formatDiagnostic).join('\n'), 400);
    this.name = 'ConfigError';
    this.diagnostics = diagnostics;
  }
}

/** pull_request actions a trigger can list in `types`. */
export const PULL_REQUEST_TYPES = [
  'opened',
  'synchronize',
  'reopened',
  'edited',
  'ready_for_review',
  'auto_merge_enabled',
  'approved',
] as const;
export type PullRequestType = (typeof PULL_REQUEST_TYPES)[number];

/**
 * The pull_request actions that fire a trigger without `types`. `edited` is here because the webhook
 * layer passes it on only when the PR's base branch changed. Additionally an empty action (a re-run,
 * e.g. after an approving review) and `approved` match the default set, as in the reference.
 */
export const DEFAULT_PULL_REQUEST_TYPES: readonly PullRequestType[] = ['opened', 'synchronize', 'reopened', 'edited'];

/** Documented defaults the scheduler applies when an action does not request resources [spec §1.5]. */
export const DEFAULT_RESOURCE_REQUESTS = {
  cpuMillis: 3000,
  memoryBytes: 8 * 1024 ** 3,
  diskBytes: 20_000_000_000,
} as const;

/** Upper bound of `pull_request.merge_with_base_interval` [spec §1.3]. */
export const MAX_MERGE_WITH_BASE_INTERVAL_MS = 3 * 3_600_000;

export interface PushTrigger {
  /** Ref patterns matched against the pushed branch name (no `refs/heads/`). */
  branches: string[];
  /** Ref patterns matched against the pushed tag name (no `refs/tags/`). */
  tags: string[];
}

export interface PullRequestTrigger {
  /** Ref patterns matched against the PR's BASE (target) branch. */
  branches: string[];
  /** Configured types; undefined means {@link DEFAULT_PULL_REQUEST_TYPES} (plus re-runs and approvals). */
  types?: PullRequestType[];
  /** Merge the PR head with its base before running. Default true. */
  mergeWithBase: boolean;
  /** Merge with the oldest base commit after the latest UTC interval boundary instead of the tip. */
  mergeWithBaseIntervalMs?: number;
  /** Merge manually instead of using the provider's merge commit. Default true; false if !mergeWithBase. */
  forceManualMergeWithBase: boolean;
}

export interface ScheduleTrigger {
  /** 5-field cron expressions, UTC. */
  crons: string[];
}

export interface WorkflowTriggers {
  push?: PushTrigger;
  pullRequest?: PullRequestTrigger;
  schedule?: ScheduleTrigger;
}

/** Requested resources; unset fields get the operator's defaults (see {@link DEFAULT_RESOURCE_REQUESTS}). */
export interface ResourceRequests {
  memoryBytes?: number;
  cpuMillis?: number;
  diskBytes?: number;
}

export interface WorkflowStep {
  /** A bash snippet, run as `bash -eo pipefail -c <run>`. */
  run: string;
}

export interface WorkflowAction {
  /** Unique in the file; the commit status context. */
  name: string;
  /** Undefined: the action never fires on webhooks (manual dispatch only). */
  triggers?: WorkflowTriggers;
  /** Always at least one; legacy `bazel_commands` are converted to steps. */
  steps: WorkflowStep[];
  env: Record<string, string>;
  /** The timeout as written (e.g. "1h30m") and in milliseconds; undefined means no timeout. */
  timeout?: string;
  timeoutMs?: number;
  /** Relative to the repo root, normalized ("" = the root, no "." or ".." segments). */
  bazelWorkspaceDir: string;
  gitCleanExclude: string[];
  /** Each becomes `--filter=<v>`; default ["blob:none"]. */
  gitFetchFilters: string[];
  /** Undefined: the runner picks the depth. */
  gitFetchDepth?: number;
  /** Default "linux". */
  os: string;
  /** Default "amd64". */
  arch: string;
  pool?: string;
  selfHosted: boolean;
  containerImage?: string;
  user?: string;
  priority: number;
  visibility?: string;
  resourceRequests: ResourceRequests;
  platformProperties: Record<string, string>;
  bazelUseCli?: boolean;
  /** Default false: newer runs of the action on the same non-default branch cancel older ones. */
  allowConcurrentRuns: boolean;
  /** Undefined: only the repo default branch may run concurrently. */
  allowConcurrentRunsOnBranches?: string[];
}

export interface WorkflowConfig {
  actions: WorkflowAction[];
}

/** What happened, as the webhook/dispatch layer reports it. Branch and tag names carry no `refs/...`. */
export type WorkflowEvent =
  | { kind: 'push'; branch?: string; tag?: string }
  | { kind: 'pull_request'; baseBranch: string; action: string }
  | { kind: 'manual' };

// ---------------------------------------------------------------------------------------------------
// Defaults and matching

function actionWithDefaults(name: string, steps: WorkflowStep[]): WorkflowAction {
  return {
    name,
    steps,
    env: {},
    bazelWorkspaceDir: '',
    gitCleanExclude: [],
    gitFetchFilters: ['blob:none'],
    os: 'linux',
    arch: 'amd64',
    selfHosted: false,
    priority: 0,
    resourceRequests: {},
    platformProperties: {},
    allowConcurrentRuns: false,
  };
}

export const DEFAULT_ACTION_NAME = 'Test all targets';

/**
 * The config used when the repository has none [spec §1.6]: "Test all targets" runs `bazel test //...`
 * on pushes to the default branch and on pull requests to any branch (merged with their base). With an
 * unknown default branch ("") the push trigger has no branches, so only pull requests fire it.
 */
export function defaultWorkflowConfig(defaultBranch: string): WorkflowConfig {
  const action = actionWithDefaults(DEFAULT_ACTION_NAME, [{ run: 'bazel test //...' }]);
  action.triggers = {
    push: { branches: defaultBranch ? [defaultBranch] : [], tags: [] },
    pullRequest: { branches: ['*'], mergeWithBase: true, forceManualMergeWithBase: true },
  };
  return { actions: [action] };
}

/**
 * Whether `action` fires for `event`:
 * - manual dispatch: always;
 * - push of a tag: `push.tags` against the tag; push of a branch: `push.branches` against the branch;
 * - pull_request: `pull_request.branches` against the BASE branch, and the PR action must be in
 *   `types`, or, without `types`, one of opened/synchronize/reopened/edited/approved or "" (a re-run).
 *   The caller passes `edited` only for base-branch changes.
 */
export function actionMatchesEvent(action: WorkflowAction, event: WorkflowEvent): boolean {
  if (event.kind === 'manual') return true;
  const triggers = action.triggers;
  if (!triggers) return false;
  if (event.kind === 'push') {
    const push = triggers.push;
    if (!push) return false;
    if (event.tag) return matchesAnyRefPattern(push.tags, event.tag);
    if (event.branch) return matchesAnyRefPattern(push.branches, event.branch);
    return false;
  }
  const pr = triggers.pullRequest;
  if (!pr) return false;
  if (!matchesAnyRefPattern(pr.branches, event.baseBranch)) return false;
  if (pr.types) return (pr.types as readonly string[]).includes(event.action);
  return event.action === '' || event.action === 'approved' || (DEFAULT_PULL_REQUEST_TYPES as readonly string[]).includes(event.action);
}

// ---------------------------------------------------------------------------------------------------
// Parsing

const ACTION_KEYS = [
  'name',
  'triggers',
  'steps',
  'bazel_commands',
  'env',
  'timeout',
  'bazel_workspace_dir',
  'git_clean_exclude',
  'git_fetch_filters',
  'git_fetch_depth',
  'os',
  'arch',
  'pool',
  'self_hosted',
  'container_image',
  'user',
  'priority',
  'visibility',
  'resource_requests',
  'platform_properties',
  'bazel_use_cli',
  'allow_concurrent_runs',
  'allow_concurrent_runs_on_branches',
] as const;
const TRIGGER_KEYS = ['push', 'pull_request', 'schedule'] as const;
const PUSH_KEYS = ['branches', 'tags'] as const;
const PULL_REQUEST_KEYS = [
  'branches',
  'types',
  'merge_with_base',
  'merge_with_base_interval',
  'force_manual_merge_with_base',
] as const;
const SCHEDULE_KEYS = ['crons'] as const;
const RESOURCE_KEYS = ['memory', 'cpu', 'disk'] as const;
const STEP_KEYS = ['run'] as const;

/** yaml.v2 (YAML 1.1) booleans, which `buildbuddy.yaml` files may use. Only plain scalars count. */
const TRUE_WORDS = new Set(['true', 'True', 'TRUE', 'yes', 'Yes', 'YES', 'on', 'On', 'ON', 'y', 'Y']);
const FALSE_WORDS = new Set(['false', 'False', 'FALSE', 'no', 'No', 'NO', 'off', 'Off', 'OFF', 'n', 'N']);

/**
 * Limit on alias uses during the walk, so aliases cannot blow it up ("billion laughs"). Without
 * aliases the walk is linear in the file size; a real config uses a few aliases per action.
 */
const MAX_ALIAS_USES = 2_000;

interface Field {
  key: string;
  keyNode: unknown;
  value: unknown;
}

interface MapView {
  node: YAMLMap;
  get(key: string): Field | undefined;
  entries(): IterableIterator<Field>;
}

type Pos = { range?: [number, number, number] | null };

class TooComplex extends Error {}

function join(path: string, key: string): string {
  const k = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? key : JSON.stringify(key);
  return path === '' ? k : /^[A-Za-z_]/.test(k) ? `${path}.${k}` : `${path}[${k}]`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

class Walker {
  readonly errors: ConfigDiagnostic[] = [];
  readonly warnings: ConfigDiagnostic[] = [];
  private readonly seen = new Set<string>();
  private aliasUses = 0;
  private readonly aliases = new Map<unknown, unknown>();

  constructor(
    private readonly file: string,
    private readonly lines: LineCounter,
    private readonly doc: Document,
  ) {}

  // -- diagnostics

  diagnostic(node: unknown, message: string): ConfigDiagnostic {
    const offset = (node as Pos | null | undefined)?.range?.[0] ?? 0;
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col, message };
  }

  error(node: unknown, message: string): void {
    this.add(this.errors, this.diagnostic(node, message));
  }

  warn(node: unknown, message: string): void {
    this.add(this.warnings, this.diagnostic(node, message));
  }

  private add(list: ConfigDiagnostic[], d: ConfigDiagnostic): void {
    const key = `${list === this.errors ? 'e' : 'w'}:${d.line}:${d.column}:${d.message}`;
    if (this.seen.has(key)) return; // a merged (`<<: *x`) node is walked once per use
    this.seen.add(key);
    list.push(d);
  }

  // -- node access

  /** Follows aliases (cached), counting uses against MAX_ALIAS_USES. */
  deref(node: unknown): unknown {
    let n = node;
    for (let hops = 0; isAlias(n); hops++) {
      if (hops > 100 || ++this.aliasUses > MAX_ALIAS_USES) throw new TooComplex();
      let target = this.aliases.get(n);
      if (target === undefined) {
        target = n.resolve(this.doc) ?? null; // resolve() searches the whole document: cache it
        this.aliases.set(n, target);
      }
      n = target;
    }
    return n;
  }

  private static isNull(n: unknown): boolean {
    return n === null || n === undefined || (isScalar(n) && n.value === null);
  }

  private static text(n: Scalar): string {
    return n.source ?? (n.value === null || n.value === undefined ? '' : String(n.value));
  }

  /** A field's value, or undefined when the field is absent or null. */
  private present(f: Field | undefined): unknown {
    if (!f) return undefined;
    const n = this.deref(f.value);
    return Walker.isNull(n) ? undefined : n;
  }

  /**
   * Reads a mapping. `known` lists the accepted keys (others are warned about); null accepts any key.
   * Merge keys (`<<: *anchor` or `<<: [*a, *b]`) are expanded; explicit keys win, then earlier sources.
   */
  map(node: unknown, path: string, known: readonly string[] | null, expected?: string): MapView | undefined {
    const n = this.deref(node);
    if (!isMap(n)) {
      this.error(n ?? node, expected ?? `${path} must be a map`);
      return undefined;
    }
    const fields = new Map<string, Field>();
    const merged: Field[] = [];
    for (const pair of n.items) {
      const k = this.deref(pair.key);
      if (isScalar(k) && k.type === 'PLAIN' && k.source === '<<') {
        const v = this.deref(pair.value);
        const sources = isSeq(v) ? v.items : [v];
        for (const s of sources) {
          const view = this.map(s, path, known, `${path || 'the top level'}: "<<" must merge a map or a list of maps`);
          if (view) for (const f of view.entries()) merged.push(f);
        }
        continue;
      }
      if (!isScalar(k) || Walker.text(k) === '') {
        this.error(k ?? n, `${path === '' ? 'top-level' : path} keys must be non-empty strings`);
        continue;
      }
      const key = Walker.text(k);
      fields.set(key, { key, keyNode: k, value: pair.value });
    }
    for (const f of merged) if (!fields.has(f.key)) fields.set(f.key, f);
    if (known) {
      for (const f of fields.values()) {
        if (known.includes(f.key)) continue;
        if (path === '' && f.key.startsWith('x-')) continue; // extension keys, e.g. to hold anchors
        const close = known.find((k) => editDistance(k, f.key) <= 2);
        this.warn(
          f.keyNode,
          `${join(path, f.key)} is not a known field and is ignored${close ? ` (did you mean "${close}"?)` : ''}`,
        );
      }
    }
    return { node: n, get: (key) => fields.get(key), entries: () => fields.values() };
  }

  optMap(f: Field | undefined, path: string, known: readonly string[] | null): MapView | undefined {
    const n = this.present(f);
    return n === undefined ? undefined : this.map(n, path, known);
  }

  /** A string in a list or map value position: any scalar's source text (an empty item is ""). */
  stringItem(node: unknown, path: string, what = 'a string'): string | undefined {
    const n = this.deref(node);
    if (n === null || n === undefined) return '';
    if (!isScalar(n)) {
      this.error(n, `${path} must be ${what}`);
      return undefined;
    }
    return Walker.text(n);
  }

  optString(f: Field | undefined, path: string, what?: string): string | undefined {
    const n = this.present(f);
    return n === undefined ? undefined : this.stringItem(n, path, what);
  }

  /** A list of strings with their nodes (for per-item messages); undefined when absent/null/invalid. */
  optStringListNodes(f: Field | undefined, path: string): { value: string; node: unknown }[] | undefined {
    const n = this.present(f);
    if (n === undefined) return undefined;
    if (!isSeq(n)) {
      this.error(n, `${path} must be a list of strings`);
      return undefined;
    }
    const out: { value: string; node: unknown }[] = [];
    n.items.forEach((item, i) => {
      const value = this.stringItem(item, `${path}[${i}]`);
      if (value !== undefined) out.push({ value, node: this.deref(item) ?? n });
    });
    return out;
  }

  optStringList(f: Field | undefined, path: string): string[] | undefined {
    return this.optStringListNodes(f, path)?.map((x) => x.value);
  }

  /** A list of ref patterns; warns about patterns that cannot do what they look like. */
  optPatterns(f: Field | undefined, path: string): string[] | undefined {
    const items = this.optStringListNodes(f, path);
    if (!items) return undefined;
    items.forEach(({ value, node }, i) => {
      const w = refPatternWarning(value);
      if (w) this.warn(node, `${path}[${i}]: ${w}`);
    });
    return items.map((x) => x.value);
  }

  /** A string-to-string map; `checkKey` returns a problem with a key, or undefined. */
  optStringMap(
    f: Field | undefined,
    path: string,
    checkKey?: (key: string) => string | undefined,
  ): Record<string, string> | undefined {
    const n = this.present(f);
    if (n === undefined) return undefined;
    const view = this.map(n, path, null, `${path} must be a map of strings`);
    if (!view) return undefined;
    const entries: [string, string][] = [];
    for (const field of view.entries()) {
      const problem = checkKey?.(field.key);
      if (problem) {
        this.error(field.keyNode, `${join(path, field.key)}: ${problem}`);
        continue;
      }
      const value = this.stringItem(field.value, join(path, field.key));
      if (value !== undefined) entries.push([field.key, value]);
    }
    // fromEntries defines own properties, so a key like "__proto__" is data, not a prototype.
    return Object.fromEntries(entries);
  }

  optBool(f: Field | undefined, path: string): boolean | undefined {
    const n = this.present(f);
    if (n === undefined) return undefined;
    if (isScalar(n) && n.type === 'PLAIN') {
      const t = Walker.text(n);
      if (TRUE_WORDS.has(t)) return true;
      if (FALSE_WORDS.has(t)) return false;
    }
    this.error(n, `${path} must be true or false`);
    return undefined;
  }

  optInt(f: Field | undefined, path: string, min?: number): number | undefined {
    const n = this.present(f);
    if (n === undefined) return undefined;
    const t = isScalar(n) && n.type === 'PLAIN' ? Walker.text(n) : undefined;
    const v = t !== undefined && /^[+-]?\d+$/.test(t) ? Number(t) : NaN;
    if (!Number.isSafeInteger(v)) {
      this.error(n, `${path} must be an integer`);
      return undefined;
    }
    if (min !== undefined && v < min) {
      this.error(n, `${path} must be at least ${min}`);
      return undefined;
    }
    return v;
  }

  /** A string field parsed by `parse`, whose Error message completes "<path> ...". */
  optParsed<T>(
    f: Field | undefined,
    path: string,
    what: string,
    parse: (text: string) => T,
  ): { text: string; value: T } | undefined {
    const text = this.optString(f, path, what);
    if (text === undefined || text === '') return undefined;
    try {
      return { text, value: parse(text) };
    } catch (e) {
      this.error(this.present(f), `${path} ${(e as Error).message}`);
      return undefined;
    }
  }

  // -- schema

  config(): WorkflowConfig {
    const root = this.deref(this.doc.contents);
    if (Walker.isNull(root)) {
      this.error(root, 'the file is empty: it needs an "actions" list');
      return { actions: [] };
    }
    const top = this.map(root, '', ['actions'], 'the top level must be a map with an "actions" list');
    if (!top) return { actions: [] };
    const actionsField = top.get('actions');
    const list = this.present(actionsField);
    if (list === undefined) {
      this.error(actionsField?.keyNode ?? top.node, 'actions is required: a list of actions with name, triggers and steps');
      return { actions: [] };
    }
    if (!isSeq(list)) {
      this.error(list, 'actions must be a list of actions');
      return { actions: [] };
    }
    if (list.items.length === 0) this.warn(list, 'actions is empty: no workflow will run');
    const actions: WorkflowAction[] = [];
    const names = new Map<string, number>();
    list.items.forEach((item, i) => {
      const parsed = this.action(item, i);
      if (!parsed) return;
      const { action, nameNode } = parsed;
      const first = names.get(action.name);
      if (first !== undefined) {
        this.error(nameNode, `actions[${i}].name "${action.name}" is already used by actions[${first}]; action names must be unique`);
        return;
      }
      names.set(action.name, i);
      actions.push(action);
    });
    return { actions };
  }

  private action(node: unknown, i: number): { action: WorkflowAction; nameNode: unknown } | undefined {
    const path = `actions[${i}]`;
    const m = this.map(node, path, ACTION_KEYS);
    if (!m) return undefined;
    const errorsBefore = this.errors.length;

    const nameField = m.get('name');
    const name = this.optString(nameField, `${path}.name`);
    if (name === '' || (name === undefined && this.errors.length === errorsBefore)) {
      this.error(this.present(nameField) ?? nameField?.keyNode ?? m.node, `${path}.name is required`);
    }

    // steps / bazel_commands
    const errorsBeforeSteps = this.errors.length;
    const steps = this.steps(m.get('steps'), `${path}.steps`);
    const commands = this.optStringListNodes(m.get('bazel_commands'), `${path}.bazel_commands`);
    let finalSteps: WorkflowStep[] = steps ?? [];
    if (steps?.length && commands?.length) {
      this.error(this.present(m.get('bazel_commands')), `${path} sets both steps and bazel_commands; use only steps`);
    } else if (commands?.length) {
      finalSteps = [];
      commands.forEach(({ value, node: n }, j) => {
        if (value.trim() === '') this.error(n, `${path}.bazel_commands[${j}] must not be empty`);
        else finalSteps.push({ run: bazelCommandToStep(value) });
      });
    } else if (!steps?.length && this.errors.length === errorsBeforeSteps) {
      this.error(
        this.present(m.get('steps')) ?? this.present(m.get('bazel_commands')) ?? m.node,
        `${path} has no steps: add e.g. "steps: [{run: bazel test //...}]"`,
      );
    }

    const action = actionWithDefaults(name ?? '', finalSteps);

    const triggers = this.triggers(m.get('triggers'), `${path}.triggers`);
    if (triggers) action.triggers = triggers;
    else if (this.present(m.get('triggers')) === undefined) this.warn(m.node, `${path} has no triggers: it runs only when dispatched manually`);

    const env = this.optStringMap(m.get('env'), `${path}.env`, (k) =>
      /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? undefined : `"${k}" is not a valid environment variable name`,
    );
    if (env) action.env = env;

    const timeout = this.optParsed(m.get('timeout'), `${path}.timeout`, 'a duration like "30m"', (t) => {
      const ms = parseConfigDurationMs(t);
      if (ms <= 0) throw new Error(`must be greater than 0, got "${t}"`);
      return ms;
    });
    if (timeout) {
      action.timeout = timeout.text;
      action.timeoutMs = timeout.value;
    }

    const dir = this.optParsed(m.get('bazel_workspace_dir'), `${path}.bazel_workspace_dir`, 'a relative path', normalizeWorkspaceDir);
    if (dir) action.bazelWorkspaceDir = dir.value;

    const cleanExclude = this.optStringList(m.get('git_clean_exclude'), `${path}.git_clean_exclude`);
    if (cleanExclude) action.gitCleanExclude = cleanExclude;
    const filters = this.optStringList(m.get('git_fetch_filters'), `${path}.git_fetch_filters`);
    if (filters) action.gitFetchFilters = filters;
    const depth = this.optInt(m.get('git_fetch_depth'), `${path}.git_fetch_depth`, 0);
    if (depth !== undefined) action.gitFetchDepth = depth;

    const os = this.optString(m.get('os'), `${path}.os`);
    if (os) {
      action.os = os;
      if (os !== 'linux' && os !== 'darwin') this.warn(this.present(m.get('os')), `${path}.os "${os}" is neither linux nor darwin; no executor may match it`);
    }
    const arch = this.optString(m.get('arch'), `${path}.arch`);
    if (arch) {
      action.arch = arch;
      if (arch !== 'amd64' && arch !== 'arm64') this.warn(this.present(m.get('arch')), `${path}.arch "${arch}" is neither amd64 nor arm64; no executor may match it`);
    }

    const pool = this.optString(m.get('pool'), `${path}.pool`);
    if (pool) action.pool = pool;
    const selfHosted = this.optBool(m.get('self_hosted'), `${path}.self_hosted`);
    if (selfHosted !== undefined) action.selfHosted = selfHosted;
    const image = this.optString(m.get('container_image'), `${path}.container_image`);
    if (image) action.containerImage = image;
    const user = this.optString(m.get('user'), `${path}.user`);
    if (user) action.user = user;
    const priority = this.optInt(m.get('priority'), `${path}.priority`);
    if (priority !== undefined) action.priority = priority;
    const visibility = this.optString(m.get('visibility'), `${path}.visibility`);
    if (visibility) action.visibility = visibility;

    const rr = this.optMap(m.get('resource_requests'), `${path}.resource_requests`, RESOURCE_KEYS);
    if (rr) {
      const rpath = `${path}.resource_requests`;
      const memory = this.optParsed(rr.get('memory'), `${rpath}.memory`, 'a size like "8GB"', parseByteQuantity);
      if (memory) action.resourceRequests.memoryBytes = memory.value;
      const cpu = this.optParsed(rr.get('cpu'), `${rpath}.cpu`, 'a number of cores like "4" or "8000m"', parseCpuMillis);
      if (cpu) action.resourceRequests.cpuMillis = cpu.value;
      const disk = this.optParsed(rr.get('disk'), `${rpath}.disk`, 'a size like "20GB"', parseByteQuantity);
      if (disk) action.resourceRequests.diskBytes = disk.value;
    }

    const props = this.optStringMap(m.get('platform_properties'), `${path}.platform_properties`);
    if (props) action.platformProperties = props;

    const useCli = this.optBool(m.get('bazel_use_cli'), `${path}.bazel_use_cli`);
    if (useCli !== undefined) action.bazelUseCli = useCli;
    const concurrent = this.optBool(m.get('allow_concurrent_runs'), `${path}.allow_concurrent_runs`);
    if (concurrent !== undefined) action.allowConcurrentRuns = concurrent;
    const concurrentBranches = this.optPatterns(
      m.get('allow_concurrent_runs_on_branches'),
      `${path}.allow_concurrent_runs_on_branches`,
    );
    if (concurrentBranches) action.allowConcurrentRunsOnBranches = concurrentBranches;

    if (this.errors.length !== errorsBefore || name === undefined) return undefined;
    return { action, nameNode: this.present(nameField) };
  }

  private steps(f: Field | undefined, path: string): WorkflowStep[] | undefined {
    const n = this.present(f);
    if (n === undefined) return undefined;
    if (!isSeq(n)) {
      this.error(n, `${path} must be a list of steps like "- run: bazel test //..."`);
      return undefined;
    }
    const out: WorkflowStep[] = [];
    n.items.forEach((item, j) => {
      const spath = `${path}[${j}]`;
      const m = this.map(item, spath, STEP_KEYS, `${spath} must be a map like "run: bazel test //..."`);
      if (!m) return;
      const errorsBefore = this.errors.length;
      const run = this.optString(m.get('run'), `${spath}.run`);
      if (run === undefined || run.trim() === '') {
        if (this.errors.length === errorsBefore) this.error(this.present(m.get('run')) ?? m.node, `${spath}.run is required`);
        return;
      }
      out.push({ run });
    });
    return out;
  }

  private triggers(f: Field | undefined, path: string): WorkflowTriggers | undefined {
    const m = this.optMap(f, path, TRIGGER_KEYS);
    if (!m) return undefined;
    const triggers: WorkflowTriggers = {};

    const push = this.optMap(m.get('push'), `${path}.push`, PUSH_KEYS);
    if (push) {
      triggers.push = {
        branches: this.optPatterns(push.get('branches'), `${path}.push.branches`) ?? [],
        tags: this.optPatterns(push.get('tags'), `${path}.push.tags`) ?? [],
      };
      if (triggers.push.branches.length === 0 && triggers.push.tags.length === 0) {
        this.warn(push.node, `${path}.push has no branches or tags: it never fires`);
      }
    }

    const prPath = `${path}.pull_request`;
    const pr = this.optMap(m.get('pull_request'), prPath, PULL_REQUEST_KEYS);
    if (pr) {
      const mergeWithBase = this.optBool(pr.get('merge_with_base'), `${prPath}.merge_with_base`) ?? true;
      const forceManual = this.optBool(pr.get('force_manual_merge_with_base'), `${prPath}.force_manual_merge_with_base`);
      const trigger: PullRequestTrigger = {
        branches: this.optPatterns(pr.get('branches'), `${prPath}.branches`) ?? [],
        mergeWithBase,
        forceManualMergeWithBase: mergeWithBase && (forceManual ?? true),
      };
      if (trigger.branches.length === 0) this.warn(pr.node, `${prPath} has no branches: it never fires (use ["*"] for all)`);
      const types = this.optStringListNodes(pr.get('types'), `${prPath}.types`);
      if (types && types.length > 0) {
        trigger.types = [];
        types.forEach(({ value, node }, k) => {
          if ((PULL_REQUEST_TYPES as readonly string[]).includes(value)) trigger.types!.push(value as PullRequestType);
          else this.error(node, `${prPath}.types[${k}] "${value}" is not a pull_request type; use one of ${PULL_REQUEST_TYPES.join(', ')}`);
        });
      }
      const interval = this.optParsed(pr.get('merge_with_base_interval'), `${prPath}.merge_with_base_interval`, 'a duration like "1h"', (t) => {
        const ms = parseConfigDurationMs(t);
        if (ms <= 0) throw new Error(`must be greater than 0, got "${t}"`);
        if (ms > MAX_MERGE_WITH_BASE_INTERVAL_MS) throw new Error(`must be at most 3h, got "${t}"`);
        return ms;
      });
      if (interval) trigger.mergeWithBaseIntervalMs = interval.value;
      triggers.pullRequest = trigger;
    }

    const schedule = this.optMap(m.get('schedule'), `${path}.schedule`, SCHEDULE_KEYS);
    if (schedule) {
      const crons = this.optStringListNodes(schedule.get('crons'), `${path}.schedule.crons`) ?? [];
      crons.forEach(({ value, node }, k) => {
        if (value.trim().split(/\s+/).length !== 5) {
          this.error(node, `${path}.schedule.crons[${k}] must be a 5-field cron expression like "0 3 * * *", got "${value}"`);
        }
      });
      triggers.schedule = { crons: crons.map((c) => c.value) };
    }
    return triggers;
  }
}

/**
 * A legacy `bazel_commands` entry becomes a step: `bazel ` is prepended unless the command already
 * starts with the word `bazel` or `bazelisk` [spec §1.2]. (The reference checks a plain string
 * prefix; hearth checks the whole word, so `bazel-diff …` still gets `bazel ` prepended.)
 */
export function bazelCommandToStep(command: string): string {
  return /^(bazel|bazelisk)(\s|$)/.test(command) ? command : `bazel ${command}`;
}

function normalizeWorkspaceDir(text: string): string {
  const parts = text.split('/').filter((p) => p !== '' && p !== '.');
  if (text.startsWith('/') || parts.includes('..') || text.includes('\0')) {
    throw new Error(`must be a relative path inside the repository, got "${text}"`);
  }
  return parts.join('/');
}

/**
 * Parses a workflow config file (`hearth.yaml` or `buildbuddy.yaml`). `fileName` is used only in
 * diagnostics. Returns the normalized config and warnings (unknown keys, patterns that can never match,
 * …); throws {@link ConfigError} listing every error (YAML syntax, wrong types, invalid values).
 */
export function parseWorkflowConfig(text: string, fileName: string): { config: WorkflowConfig; warnings: ConfigDiagnostic[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const walker = new Walker(fileName, lines, doc as Document);
  const at = (offset: number): { line: number; column: number } => {
    const p = lines.linePos(offset);
    return { line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ file: fileName, ...at(e.pos[0]), message: `invalid YAML: ${e.message}` })),
    );
  }
  const yamlWarnings = doc.warnings.map((w) => ({ file: fileName, ...at(w.pos[0]), message: w.message }));
  let config: WorkflowConfig;
  try {
    config = walker.config();
  } catch (e) {
    if (!(e instanceof TooComplex)) throw e;
    throw new ConfigError([{ file: fileName, line: 1, column: 1, message: `the file uses aliases too many times (more than ${MAX_ALIAS_USES} expansions)` }]);
  }
  const byPosition = (a: ConfigDiagnostic, b: ConfigDiagnostic) => a.line - b.line || a.column - b.column;
  if (walker.errors.length > 0) throw new ConfigError([...walker.errors].sort(byPosition));
  return { config, warnings: [...yamlWarnings, ...walker.warnings].sort(byPosition) };
}
