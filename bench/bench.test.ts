/**
 * The benchmark harness end to end: `bench/main.ts --quick` really runs every available scenario
 * (real git, real Bazel, a real `hearth up`), and its report is well-formed. Times are never
 * asserted — only that they were measured and that the arithmetic over them is right.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { type BenchReport, type RunSample, SCENARIO_IDS, TABLE_HEADER, buildReport, renderMarkdown, scenarioInfo } from './report.ts';
import { REPO_ROOT, median } from './util.ts';

const MAIN = path.join(REPO_ROOT, 'bench', 'main.ts');

/** Command lines of every live process (Linux /proc). */
function processCmdlines(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      out.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {}
  }
  return out;
}

describe('bench/main.ts --quick', () => {
  test('runs every available scenario and writes a well-formed report', { timeout: 20 * 60_000 }, async (t) => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'hearth-bench-test-'));
    t.after(() => rm(out, { recursive: true, force: true }));

    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--quick', '--out', out], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: t.signal, // a test timeout SIGTERMs the bench, which then cleans up after itself
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const code = await new Promise<number | null>((resolve) => {
      child.on('exit', (c) => resolve(c));
      child.on('error', () => {});
    });
    assert.equal(code, 0, `bench exited ${code}:\n${stderr.slice(-8000)}`);

    // --- every process and temp dir the bench made is gone
    const work = /work dir: (\S+)/.exec(stderr)?.[1];
    assert.ok(work, 'the bench names its work dir');
    assert.equal(existsSync(work), false, `${work} was removed`);
    const leftovers = processCmdlines().filter((c) => c.includes(work));
    assert.deepEqual(leftovers, [], 'no process (Bazel server, hearth up, agent) still runs from the work dir');

    // --- files
    const files = await readdir(out);
    for (const f of ['latest.md', 'latest.json']) assert.ok(files.includes(f), `${f} written`);
    const stamped = files.filter((f) => /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.(md|json)$/.test(f));
    assert.equal(stamped.length, 2, `one timestamped .md and .json, got ${files.join(', ')}`);
    const md = await readFile(path.join(out, 'latest.md'), 'utf8');
    assert.ok(md.includes(TABLE_HEADER), 'the Markdown report has the results table');
    assert.ok(stdout.includes(TABLE_HEADER), 'the table is printed too');
    assert.equal(await readFile(path.join(out, stamped.find((f) => f.endsWith('.md'))!), 'utf8'), md);

    const report = JSON.parse(await readFile(path.join(out, 'latest.json'), 'utf8')) as BenchReport;
    assert.equal(report.kind, 'hearth-bench');
    assert.equal(report.options.quick, true);
    assert.equal(report.options.runs, 1);
    assert.ok(report.options.packages <= 5, 'quick uses a small workspace');
    assert.match(report.command, /--quick/);
    assert.equal(report.machine.node, process.version);
    assert.ok(report.machine.cores >= 1 && report.machine.memoryBytes > 0 && report.machine.cpuModel.length > 0);
    assert.match(report.machine.bazel ?? '', /2\.1\.0/);
    assert.ok(report.workspace.targets > 0 && report.workspace.sourceFileToTouch.endsWith('.cc'));

    // --- scenarios
    assert.deepEqual(report.scenarios.map((s) => s.id), [...SCENARIO_IDS], 'every scenario id, in order');
    const cold = report.scenarios.find((s) => s.id === 'cold')!;
    for (const s of report.scenarios) {
      if (!s.available) {
        assert.equal(s.status, 'not available', s.id);
        assert.deepEqual(s.runs, [], s.id);
        assert.match(s.unavailableReason ?? '', /not available/, s.id);
        assert.equal(s.medianMs, null, s.id);
        assert.ok(md.includes(s.unavailableReason!), `${s.id} is marked unavailable in the Markdown`);
        continue;
      }
      assert.equal(s.status, 'measured', s.id);
      assert.ok(s.runs.length >= 1, `${s.id} has runs`);
      for (const r of s.runs) assert.ok(Number.isFinite(r.ms) && r.ms > 0, `${s.id} run ${r.run}: ${r.ms}`);
      assert.ok(s.minMs! > 0 && s.minMs! <= s.medianMs! && s.medianMs! <= s.maxMs!, `${s.id}: min ≤ median ≤ max`);
      assert.equal(s.medianMs, median(s.runs.map((r) => r.ms)));
      assert.ok(Number.isFinite(s.ratioToCold) && s.ratioToCold! > 0, `${s.id} ratio to cold`);
      assert.ok(Math.abs(s.ratioToCold! - s.medianMs! / cold.medianMs!) < 1e-9, `${s.id} ratio = median / median(cold)`);
      assert.ok(Math.abs(s.speedupVsCold! * s.ratioToCold! - 1) < 1e-9, `${s.id} speedup = 1 / ratio`);
    }
    assert.equal(cold.ratioToCold, 1);

    // --- snapshot: a sandbox executor restored the default branch's snapshot onto a fresh runner
    // (bubblewrap is installed where this test runs; without it the scenario is reported unavailable)
    const snap = report.scenarios.find((s) => s.id === 'snapshot')!;
    assert.equal(snap.available, true, snap.unavailableReason);
    assert.ok(snap.runs.length >= 1, 'snapshot has runs');
    for (const r of snap.runs) {
      assert.equal(r.details?.runner_kind, 'snapshot', `snapshot run ${r.run}: ${r.details?.runner_reason}`);
      assert.ok(typeof r.details?.restore_ms === 'number' && r.details.restore_ms >= 0 && r.details.restore_ms <= r.ms, `restore_ms: ${r.details?.restore_ms}`);
      assert.ok(typeof r.details?.bytes_fetched === 'number' && r.details.bytes_fetched > 0, 'a fresh executor fetches the chunks from the server');
      assert.equal(r.phases?.restore, r.details?.restore_ms);
    }
    assert.deepEqual(report.derived.snapshotRestore.runnerKinds, { snapshot: snap.runs.length });
    assert.ok(report.derived.snapshotRestore.restoreMs!.median >= 0);

    // --- hearth details and derived numbers
    const warm = report.scenarios.find((s) => s.id === 'hearth-warm')!;
    for (const r of warm.runs) {
      const first = r.details?.first_log_byte_ms;
      assert.ok(typeof first === 'number' && first > 0 && first <= r.ms, `first log byte within the run: ${first}`);
      assert.equal(r.details?.runner_kind, 'recycled', 'a warm run gets the recycled runner');
    }
    const floor = report.scenarios.find((s) => s.id === 'floor')!;
    assert.ok(Math.abs(report.derived.orchestrationOverheadMs! - (warm.medianMs! - floor.medianMs!)) < 1e-9);
    assert.ok(report.derived.timeToFirstLogByte.firstLogByteMs!.median > 0);
    assert.match(report.derived.timeToFirstLogByte.method, /in-process/);
    const change = report.scenarios.find((s) => s.id === 'hearth-one-change')!;
    for (const r of change.runs) assert.ok(typeof r.details?.patch_ms === 'number', 'the one-file change went over as a patch');

    // --- targets
    assert.deepEqual(report.targets.map((x) => x.id), ['warm-50x-cold', 'overhead-under-500ms', 'snapshot-beats-disk-cache']);
    for (const x of report.targets) assert.ok(['met', 'not met', 'n/a'].includes(x.status), `${x.id}: ${x.status}`);
    assert.notEqual(report.targets[0]!.status, 'n/a');
    assert.notEqual(report.targets[1]!.status, 'n/a');
    assert.notEqual(report.targets[2]!.status, 'n/a', 'snapshot and disk-cache were both measured');
  });
});

describe('report arithmetic', () => {
  const sample = (run: number, ms: number): RunSample => ({ run, ms });
  const base = {
    startedAt: new Date(0),
    finishedAt: new Date(1000),
    totalWallMs: 1000,
    command: 'x',
    argv: [],
    machine: { cores: 2, cpuModel: 'cpu', memoryBytes: 1, os: 'os', kernel: 'k', node: 'v20', bazel: 'bazel 2.1.0', git: 'git', hostname: 'h', loadAverageAtStart: [0, 0, 0] },
    loadAverageAtEnd: [0, 0, 0],
    workspace: { packages: 1, targets: 2, seed: 1, sourceFileToTouch: 'a.cc' },
    notes: [],
  };

  test('medians, ratios, overhead and targets', () => {
    const r = buildReport({
      ...base,
      options: { packages: 1, runs: 4, seed: 1, scenarios: [...SCENARIO_IDS], quick: false, outDir: '/x' },
      order: ['cold', 'hearth-warm', 'floor'],
      samples: {
        cold: [sample(1, 60_000), sample(2, 62_000), sample(3, 58_000), sample(4, 100_000)],
        'hearth-warm': [sample(1, 1000), sample(2, 1200), sample(3, 1100), sample(4, 900)],
        floor: [sample(1, 700), sample(2, 800), sample(3, 750), sample(4, 650)],
      },
    });
    const by = (id: string) => r.scenarios.find((s) => s.id === id)!;
    assert.equal(by('cold').medianMs, 61_000); // even count: mean of the middle two
    assert.equal(by('hearth-warm').medianMs, 1050);
    assert.equal(by('hearth-warm').minMs, 900);
    assert.equal(by('hearth-warm').maxMs, 1200);
    assert.ok(Math.abs(by('hearth-warm').speedupVsCold! - 61_000 / 1050) < 1e-9);
    assert.equal(r.derived.orchestrationOverheadMs, 1050 - 725);
    assert.equal(r.targets.find((t) => t.id === 'warm-50x-cold')!.status, 'met');
    assert.equal(r.targets.find((t) => t.id === 'overhead-under-500ms')!.status, 'met');
    assert.equal(r.targets.find((t) => t.id === 'snapshot-beats-disk-cache')!.status, 'n/a');
    // A selected scenario that produced no runs (all failed) is still listed, with no numbers.
    assert.equal(by('disk-cache').runs.length, 0);
    assert.equal(by('disk-cache').medianMs, null);
    const md = renderMarkdown(r);
    assert.ok(md.includes(TABLE_HEADER));
  });

  test('snapshot vs disk-cache target, and a scenario found unavailable at run time', () => {
    const opts = { packages: 1, runs: 1, seed: 1, scenarios: [...SCENARIO_IDS], quick: false, outDir: '/x' };
    const measured = buildReport({
      ...base,
      options: opts,
      order: ['cold', 'disk-cache', 'snapshot'],
      samples: {
        cold: [sample(1, 60_000)],
        'disk-cache': [sample(1, 20_000)],
        snapshot: [{ run: 1, ms: 8000, phases: { restore: 1500 }, details: { runner_kind: 'snapshot', restore_ms: 1500, bytes_fetched: 1 << 20 } }],
      },
    });
    assert.equal(scenarioInfo('snapshot').available, true);
    assert.equal(measured.targets.find((t) => t.id === 'snapshot-beats-disk-cache')!.status, 'met');
    assert.deepEqual(measured.derived.snapshotRestore.runnerKinds, { snapshot: 1 });
    assert.equal(measured.derived.snapshotRestore.bytesFetched!.median, 1 << 20);
    assert.match(renderMarkdown(measured), /snapshot restore \(scenario 3\): runner kinds snapshot ×1/);

    const why = 'not available (bwrap not found: hearth snapshots need --isolation sandbox (apt-get install bubblewrap))';
    const r = buildReport({
      ...base,
      options: opts,
      order: ['cold', 'disk-cache'],
      samples: { cold: [sample(1, 60_000)], 'disk-cache': [sample(1, 20_000)], snapshot: [sample(1, 1)] },
      unavailable: { snapshot: why },
    });
    const snap = r.scenarios.find((s) => s.id === 'snapshot')!;
    assert.equal(snap.status, 'not available');
    assert.deepEqual(snap.runs, [], 'samples of an unavailable scenario are ignored');
    const target = r.targets.find((t) => t.id === 'snapshot-beats-disk-cache')!;
    assert.equal(target.status, 'n/a');
    assert.match(target.why!, /bwrap not found/);
    assert.ok(renderMarkdown(r).includes(why));
  });

  test('targets not met, and n/a without the scenarios they need', () => {
    const r = buildReport({
      ...base,
      options: { packages: 1, runs: 1, seed: 1, scenarios: ['cold', 'hearth-warm'], quick: false, outDir: '/x' },
      order: ['cold', 'hearth-warm'],
      samples: { cold: [sample(1, 10_000)], 'hearth-warm': [sample(1, 2000)] },
    });
    assert.equal(r.targets.find((t) => t.id === 'warm-50x-cold')!.status, 'not met');
    assert.equal(r.targets.find((t) => t.id === 'overhead-under-500ms')!.status, 'n/a');
    assert.equal(r.scenarios.find((s) => s.id === 'floor')!.status, 'not selected');
    assert.ok(renderMarkdown(r).includes('not selected'));
  });
});
