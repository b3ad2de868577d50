/**
 * The benchmark report: scenario catalogue, statistics over the samples, ratios to cold CI,
 * derived numbers, targets, and the Markdown rendering. Pure functions, no I/O.
 */
import { type MachineFacts, type Summary, fmtBytes, fmtSeconds, median, summarize } from './util.ts';

export const SCENARIO_IDS = ['cold', 'disk-cache', 'snapshot', 'hearth-warm', 'hearth-one-change', 'floor'] as const;
export type ScenarioId = (typeof SCENARIO_IDS)[number];

export interface ScenarioInfo {
  id: ScenarioId;
  /** The scenario's number in the design brief: (1) … (6). */
  number: number;
  title: string;
  /** What the stopwatch covers. */
  timed: string;
  available: boolean;
  /** Why an unavailable scenario cannot run. */
  unavailableReason?: string;
}

export const SCENARIOS: readonly ScenarioInfo[] = [
  {
    id: 'cold',
    number: 1,
    title: 'cold CI',
    timed: 'fresh `git clone` + `bazel test //...` with a fresh output base and a new Bazel server (install base reused)',
    available: true,
  },
  {
    id: 'disk-cache',
    number: 2,
    title: 'CI with a restored disk cache',
    timed: 'fresh clone + `tar -x` of the disk-cache tarball + `bazel test //... --disk_cache=DIR` (fresh output base, new server)',
    available: true,
  },
  {
    id: 'snapshot',
    number: 3,
    title: 'hearth disk snapshot restored onto a fresh runner',
    timed:
      '`hearth remote test //...` against a freshly started sandbox executor (no runners, empty chunk cache): snapshot lookup, chunk fetch and restore of checkout + output base, git sync, `bazel test //...` on a new Bazel server (CLI process spawn → exit)',
    available: true,
  },
  {
    id: 'hearth-warm',
    number: 4,
    title: 'hearth, recycled warm runner, unchanged tree',
    timed: '`hearth remote test //...` from a local clone (CLI process spawn → exit)',
    available: true,
  },
  {
    id: 'hearth-one-change',
    number: 5,
    title: 'hearth, recycled warm runner, one file changed',
    timed: '`hearth remote test //...` after editing one source file (uncommitted, mirrored as a patch)',
    available: true,
  },
  {
    id: 'floor',
    number: 6,
    title: 'floor: local warm Bazel no-op',
    timed: '`bazel test //...` on an already-warm local server, nothing changed',
    available: true,
  },
];

export function scenarioInfo(id: ScenarioId): ScenarioInfo {
  return SCENARIOS.find((s) => s.id === id)!;
}

/** One timed run of one scenario. */
export interface RunSample {
  /** 1-based round number. */
  run: number;
  ms: number;
  /** Sub-timings inside `ms` (e.g. clone, restore, bazel), in ms. */
  phases?: Record<string, number>;
  /** Anything else worth keeping (time to first byte, invocation id, runner provenance, hearth's own timings). */
  details?: Record<string, string | number | boolean | null>;
}

/** Scenarios that cannot run on this machine, with why (e.g. no bubblewrap for `snapshot`). */
export type Unavailable = Partial<Record<ScenarioId, string>>;

/** The catalogue entry, with `unavailable` applied. */
export function effectiveInfo(id: ScenarioId, unavailable: Unavailable = {}): ScenarioInfo {
  const info = scenarioInfo(id);
  const why = unavailable[id];
  return why === undefined ? info : { ...info, available: false, unavailableReason: why };
}

export interface ScenarioResult extends ScenarioInfo {
  selected: boolean;
  status: 'measured' | 'not available' | 'not selected';
  runs: RunSample[];
  medianMs: number | null;
  minMs: number | null;
  maxMs: number | null;
  /** median(this) / median(cold): the fraction of cold CI's time this scenario takes. */
  ratioToCold: number | null;
  /** median(cold) / median(this): how many times faster than cold CI. */
  speedupVsCold: number | null;
  /** Median of each phase over the runs that reported it. */
  phaseMediansMs: Record<string, number>;
}

export type TargetStatus = 'met' | 'not met' | 'n/a';

export interface Target {
  id: string;
  description: string;
  value: number | null;
  valueText: string;
  status: TargetStatus;
  why?: string;
}

export interface Derived {
  /** median(hearth-warm) − median(floor), ms. */
  orchestrationOverheadMs: number | null;
  timeToFirstLogByte: {
    method: string;
    /** spawn of `hearth remote` → first byte on its stdout (the run's log: hearth's runner line). */
    firstLogByteMs: Summary | null;
    /** spawn → first stdout byte that Bazel wrote (first line not from hearth). */
    firstBazelByteMs: Summary | null;
    /** spawn → the CLI printed "streaming remote run" (git state captured, run submitted). */
    submittedMs: Summary | null;
  };
  /** Where the time of a warm hearth run goes (medians over scenario 4's runs), ms. */
  hearthWarmBreakdownMs: Record<string, number>;
  /** Scenario 3, from each run's runner provenance. */
  snapshotRestore: {
    /** How many runs got which runner kind (all should be `snapshot`). */
    runnerKinds: Record<string, number>;
    /** The executor's own restore time (lookup, chunk fetch, unpack), part of the wall time. */
    restoreMs: Summary | null;
    /** Bytes fetched from the server's store (the rest came from the executor's local chunk cache). */
    bytesFetched: Summary | null;
  };
}

export interface BenchOptions {
  packages: number;
  runs: number;
  seed: number;
  scenarios: ScenarioId[];
  quick: boolean;
  outDir: string;
}

export interface BenchReport {
  kind: 'hearth-bench';
  schemaVersion: 1;
  startedAt: string;
  finishedAt: string;
  totalWallMs: number;
  command: string;
  argv: string[];
  options: BenchOptions;
  machine: MachineFacts;
  loadAverageAtEnd: number[];
  workspace: { packages: number; targets: number; seed: number; sourceFileToTouch: string };
  /** The order scenarios ran in within each round. */
  order: ScenarioId[];
  scenarios: ScenarioResult[];
  derived: Derived;
  targets: Target[];
  notes: string[];
}

export interface ReportInput {
  startedAt: Date;
  finishedAt: Date;
  totalWallMs: number;
  command: string;
  argv: string[];
  options: BenchOptions;
  machine: MachineFacts;
  loadAverageAtEnd: number[];
  workspace: BenchReport['workspace'];
  order: ScenarioId[];
  samples: Partial<Record<ScenarioId, RunSample[]>>;
  notes: string[];
  /** Scenarios found unusable at run time (overrides the catalogue's `available`). */
  unavailable?: Unavailable;
}

const BREAKDOWN_KEYS = [
  'created_ms',
  'submitted_ms',
  'first_log_byte_ms',
  'first_bazel_byte_ms',
  'queued_ms',
  'runner_acquire_ms',
  'git_sync_ms',
  'patch_ms',
  'bazel_step_ms',
  'executor_total_ms',
  'finished_to_exit_ms',
  'outside_executor_ms',
];

export const FIRST_BYTE_METHOD =
  'measured in-process: the bench spawns the `hearth remote` CLI as a child process and timestamps (performance.now) ' +
  'spawn() and the first chunk on the child\'s stdout pipe; stdout carries only the remote log (hearth\'s own messages go to stderr), ' +
  'so this includes node+tsx startup, git state capture, submitting the run, queueing, runner acquisition and the log round trip. ' +
  '"first Bazel byte" is the first stdout line that is not a `[hearth]` line.';

function numericDetails(samples: RunSample[], key: string): number[] {
  return samples.map((s) => s.details?.[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

export function buildReport(input: ReportInput): BenchReport {
  const coldRuns = input.samples.cold ?? [];
  const coldMedian = coldRuns.length ? median(coldRuns.map((r) => r.ms)) : null;
  const scenarios: ScenarioResult[] = SCENARIOS.map(({ id }) => {
    const info = effectiveInfo(id, input.unavailable);
    const selected = input.options.scenarios.includes(info.id);
    const runs = info.available && selected ? (input.samples[info.id] ?? []) : [];
    const s = summarize(runs.map((r) => r.ms));
    const phaseNames = [...new Set(runs.flatMap((r) => Object.keys(r.phases ?? {})))];
    const phaseMediansMs: Record<string, number> = {};
    for (const p of phaseNames) {
      const xs = runs.map((r) => r.phases?.[p]).filter((v): v is number => typeof v === 'number');
      if (xs.length) phaseMediansMs[p] = median(xs);
    }
    return {
      ...info,
      selected,
      status: !info.available ? 'not available' : selected ? 'measured' : 'not selected',
      runs,
      medianMs: s?.median ?? null,
      minMs: s?.min ?? null,
      maxMs: s?.max ?? null,
      ratioToCold: s && coldMedian ? s.median / coldMedian : null,
      speedupVsCold: s && coldMedian && s.median > 0 ? coldMedian / s.median : null,
      phaseMediansMs,
    };
  });
  const byId = (id: ScenarioId) => scenarios.find((s) => s.id === id)!;

  const warm = byId('hearth-warm');
  const floor = byId('floor');
  const overhead = warm.medianMs !== null && floor.medianMs !== null ? warm.medianMs - floor.medianMs : null;
  const breakdown: Record<string, number> = {};
  for (const key of BREAKDOWN_KEYS) {
    const xs = numericDetails(warm.runs, key);
    if (xs.length) breakdown[key] = median(xs);
  }
  const derived: Derived = {
    orchestrationOverheadMs: overhead,
    timeToFirstLogByte: {
      method: FIRST_BYTE_METHOD,
      firstLogByteMs: summarize(numericDetails(warm.runs, 'first_log_byte_ms')),
      firstBazelByteMs: summarize(numericDetails(warm.runs, 'first_bazel_byte_ms')),
      submittedMs: summarize(numericDetails(warm.runs, 'submitted_ms')),
    },
    hearthWarmBreakdownMs: breakdown,
    snapshotRestore: (() => {
      const snap = scenarios.find((s) => s.id === 'snapshot')!;
      const runnerKinds: Record<string, number> = {};
      for (const r of snap.runs) {
        const k = String(r.details?.runner_kind ?? 'unknown');
        runnerKinds[k] = (runnerKinds[k] ?? 0) + 1;
      }
      return { runnerKinds, restoreMs: summarize(numericDetails(snap.runs, 'restore_ms')), bytesFetched: summarize(numericDetails(snap.runs, 'bytes_fetched')) };
    })(),
  };

  const targets: Target[] = [];
  {
    const sp = warm.speedupVsCold;
    targets.push({
      id: 'warm-50x-cold',
      description: '(4) hearth-warm is at least 50× faster than (1) cold CI',
      value: sp,
      valueText: sp === null ? '–' : `${sp.toFixed(1)}×`,
      status: sp === null ? 'n/a' : sp >= 50 ? 'met' : 'not met',
      ...(sp === null ? { why: 'needs both cold and hearth-warm' } : {}),
    });
  }
  targets.push({
    id: 'overhead-under-500ms',
    description: '(4) − (6): hearth orchestration overhead is under 0.5 s',
    value: overhead,
    valueText: overhead === null ? '–' : fmtSeconds(overhead, 3),
    status: overhead === null ? 'n/a' : overhead < 500 ? 'met' : 'not met',
    ...(overhead === null ? { why: 'needs both hearth-warm and floor' } : {}),
  });
  {
    const snap = byId('snapshot');
    const dc = byId('disk-cache');
    const ok = snap.medianMs !== null && dc.medianMs !== null;
    targets.push({
      id: 'snapshot-beats-disk-cache',
      description: '(3) snapshot restore is faster than (2) disk-cache restore',
      value: ok ? dc.medianMs! - snap.medianMs! : null,
      valueText: ok ? `${fmtSeconds(snap.medianMs)} vs ${fmtSeconds(dc.medianMs)}` : '–',
      status: ok ? (snap.medianMs! < dc.medianMs! ? 'met' : 'not met') : 'n/a',
      ...(ok
        ? {}
        : { why: snap.available ? 'needs both snapshot and disk-cache' : `the snapshot scenario is ${snap.unavailableReason!.replace(/^not available \((.*)\)$/, 'not available: $1')}` }),
    });
  }

  return {
    kind: 'hearth-bench',
    schemaVersion: 1,
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    totalWallMs: input.totalWallMs,
    command: input.command,
    argv: input.argv,
    options: input.options,
    machine: input.machine,
    loadAverageAtEnd: input.loadAverageAtEnd,
    workspace: input.workspace,
    order: input.order,
    scenarios,
    derived,
    targets,
    notes: input.notes,
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown

export const TABLE_HEADER = '| # | scenario | runs | median | min | max | ratio to cold | speedup vs cold |';

const ratio = (x: number | null) => (x === null ? '–' : x >= 0.1 ? x.toFixed(3) : x.toPrecision(2));
const speed = (x: number | null) => (x === null ? '–' : `${x >= 10 ? x.toFixed(0) : x.toFixed(1)}×`);
const cell = (s: string) => s.replace(/\|/g, '\\|');

export function renderMarkdown(r: BenchReport): string {
  const m = r.machine;
  const L: string[] = [];
  L.push(`# hearth benchmark — ${r.startedAt}`, '');
  L.push(`Command: \`${r.command}\``, '');
  L.push(
    `Workspace: ${r.workspace.packages} generated C++ packages (${r.workspace.targets} targets, seed ${r.workspace.seed}); ` +
      `${r.options.runs} timed run${r.options.runs === 1 ? '' : 's'} per scenario, interleaved round-robin (${r.order.join(' → ')}). ` +
      `Total wall time ${fmtSeconds(r.totalWallMs, 0)}.`,
    '',
  );
  L.push(
    `Machine: ${m.cores} cores (${m.cpuModel}), ${fmtBytes(m.memoryBytes)} RAM, ${m.os} (kernel ${m.kernel}), node ${m.node}, ` +
      `${m.bazel ?? 'bazel ?'}, ${m.git ?? 'git ?'}; load average ${m.loadAverageAtStart.join(' / ')} at start, ${r.loadAverageAtEnd.join(' / ')} at end.`,
    '',
  );
  L.push(TABLE_HEADER, '|---|---|---|---|---|---|---|---|');
  for (const s of r.scenarios) {
    const name = `${s.id} — ${s.title}`;
    if (s.status === 'not available') {
      L.push(`| ${s.number} | ${cell(name)} | – | ${s.unavailableReason} | – | – | – | – |`);
    } else if (s.status === 'not selected') {
      L.push(`| ${s.number} | ${cell(name)} | – | not selected | – | – | – | – |`);
    } else {
      L.push(
        `| ${s.number} | ${cell(name)} | ${s.runs.length} | ${fmtSeconds(s.medianMs, 3)} | ${fmtSeconds(s.minMs, 3)} | ${fmtSeconds(s.maxMs, 3)} | ${ratio(s.ratioToCold)} | ${speed(s.speedupVsCold)} |`,
      );
    }
  }
  L.push('', 'Ratio to cold = median(scenario) / median(cold): the share of cold CI\'s wall time it takes. Speedup = the inverse.', '');

  L.push('## What is timed', '');
  for (const s of r.scenarios) L.push(`- **(${s.number}) ${s.id}**: ${s.timed}.${s.available ? '' : ` — ${s.unavailableReason}.`}`);
  L.push('');

  const phased = r.scenarios.filter((s) => Object.keys(s.phaseMediansMs).length > 0);
  if (phased.length) {
    L.push('## Phases (medians)', '');
    for (const s of phased) {
      L.push(`- ${s.id}: ${Object.entries(s.phaseMediansMs).map(([k, v]) => `${k} ${fmtSeconds(v, 3)}`).join(', ')}`);
    }
    L.push('');
  }

  L.push('## Derived', '');
  const d = r.derived;
  L.push(`- hearth orchestration overhead = median(hearth-warm) − median(floor) = **${fmtSeconds(d.orchestrationOverheadMs, 3)}**`);
  const fb = d.timeToFirstLogByte;
  const sum = (x: Summary | null) => (x ? `median ${fmtSeconds(x.median, 3)} (min ${fmtSeconds(x.min, 3)}, max ${fmtSeconds(x.max, 3)})` : '–');
  L.push(`- time to first log byte (hearth-warm): **${sum(fb.firstLogByteMs)}**; first Bazel byte: ${sum(fb.firstBazelByteMs)}; run submitted: ${sum(fb.submittedMs)}`);
  L.push(`  - ${fb.method}`);
  const b = d.hearthWarmBreakdownMs;
  if (Object.keys(b).length) {
    L.push('', '### Where a warm hearth run\'s time goes (medians of scenario 4)', '');
    L.push('| phase | time | source |', '|---|---|---|');
    const rows: [string, string, string][] = [
      ['created_ms', 'CLI start → the server recorded the run (node+tsx startup, git state capture, POST /Run)', 'server created_at − spawn time'],
      ['submitted_ms', 'CLI start → the CLI printed "streaming remote run"', 'bench (stderr of the CLI)'],
      ['first_log_byte_ms', 'CLI start → first log byte on stdout', 'bench'],
      ['first_bazel_byte_ms', 'CLI start → first Bazel output byte', 'bench'],
      ['queued_ms', 'queued on the server until an executor leased it', 'hearth timings'],
      ['runner_acquire_ms', 'runner acquisition (pool lookup, .bazelrc)', 'hearth timings'],
      ['git_sync_ms', 'git sync on the runner (clean, checkout)', 'hearth timings'],
      ['patch_ms', 'applying the mirrored patch', 'hearth timings'],
      ['bazel_step_ms', 'the `bazel test` step itself', 'hearth timings'],
      ['executor_total_ms', 'executor total (git sync + steps)', 'hearth timings'],
      ['finished_to_exit_ms', 'run finished on the server → CLI exited (log tail, final status, process exit)', 'CLI exit − server finished_at'],
      ['outside_executor_ms', 'wall time − executor total (everything but git sync and Bazel)', 'derived'],
    ];
    for (const [k, what, src] of rows) if (b[k] !== undefined) L.push(`| ${what} | ${fmtSeconds(b[k], 3)} | ${src} |`);
  }
  const sr = d.snapshotRestore;
  if (Object.keys(sr.runnerKinds).length) {
    const bytes = (x: Summary | null) => (x ? `median ${fmtBytes(x.median)} (min ${fmtBytes(x.min)}, max ${fmtBytes(x.max)})` : '–');
    L.push(
      '',
      `- snapshot restore (scenario 3): runner kinds ${Object.entries(sr.runnerKinds).map(([k, n]) => `${k} ×${n}`).join(', ')}; ` +
        `executor restore time ${sum(sr.restoreMs)}; bytes fetched from the server ${bytes(sr.bytesFetched)}`,
    );
  }
  L.push('');

  L.push('## Targets (reported, not asserted)', '');
  L.push('| target | value | status |', '|---|---|---|');
  for (const t of r.targets) L.push(`| ${cell(t.description)} | ${cell(t.valueText)} | ${t.status}${t.why ? ` (${cell(t.why)})` : ''} |`);
  L.push('');

  L.push('## Runs', '');
  L.push('| round | scenario | wall | details |', '|---|---|---|---|');
  for (let run = 1; run <= r.options.runs; run++) {
    for (const id of r.order) {
      const s = r.scenarios.find((x) => x.id === id)!;
      const sample = s.runs.find((x) => x.run === run);
      if (!sample) continue;
      const parts = [
        ...Object.entries(sample.phases ?? {}).map(([k, v]) => `${k} ${fmtSeconds(v, 3)}`),
        ...Object.entries(sample.details ?? {}).map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v) : v}`),
      ];
      L.push(`| ${run} | ${id} | ${fmtSeconds(sample.ms, 3)} | ${cell(parts.join(', '))} |`);
    }
  }
  L.push('');
  if (r.notes.length) {
    L.push('## Notes', '');
    for (const n of r.notes) L.push(`- ${n}`);
    L.push('');
  }
  L.push('Cache throughput (REAPI CAS/ByteStream, FindMissingBlobs) is a separate script: `node --import tsx bench/cache.ts` (see bench/README.md).', '');
  return L.join('\n');
}
