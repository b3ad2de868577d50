/**
 * hearth's end-to-end benchmark: how long `bazel test //...` takes on a generated N-package C++
 * workspace in each state a CI runner can be in, from cold CI to a recycled warm hearth runner.
 *
 *   npm run bench -- [--packages N] [--runs K] [--scenarios a,b,…] [--quick] [--seed S] [--out DIR]
 *
 * All scenarios run in this one process, interleaved round-robin (round 1: every scenario, round 2:
 * every scenario, …) so that drift in the machine's load hits all of them alike. Setup (workspace,
 * install base, disk-cache tarball, the first snapshot, warming hearth's runner and the local floor
 * server) is untimed. Every Bazel server and hearth process (up, server, executor) started here is
 * stopped at the end — also on a failure, Ctrl-C or SIGTERM — and the temp directory is removed.
 * See bench/README.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs, stripVTControlCharacters } from 'node:util';
import { HearthClient, type Invocation, type SnapshotSave } from '@hearth/api';
import { type BenchOptions, type RunSample, SCENARIO_IDS, type ScenarioId, type Unavailable, buildReport, effectiveInfo, renderMarkdown } from './report.ts';
import {
  BAZEL,
  HEARTH_BIN,
  REPO_ROOT,
  commandLine,
  fileTimestamp,
  fmtBytes,
  fmtSeconds,
  machineFacts,
  onCleanup,
  progress,
  removeTree,
  runMain,
  runOk,
  runTimed,
  sleep,
  stopBazelServer,
  stopBazelServersUnder,
} from './util.ts';
import { generateWorkspace } from './workspaceGen.ts';

const USAGE = `usage: npm run bench -- [--packages N] [--runs K] [--scenarios ${SCENARIO_IDS.join(',')}] [--quick] [--seed S] [--out DIR]

  --packages N     generated C++ packages (default 150; --quick: 3)
  --runs K         timed runs per scenario (default 3; --quick: 1)
  --scenarios LIST comma-separated scenario ids (default: all)
  --quick          small and fast: 3 packages, 1 run, every available scenario
  --seed S         workspace generator seed (default 1)
  --out DIR        where <timestamp>.md/.json and latest.md/.json go (default bench/results)
`;

class UsageError extends Error {}

function parseOptions(argv: string[]): BenchOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        packages: { type: 'string' },
        runs: { type: 'string' },
        scenarios: { type: 'string' },
        quick: { type: 'boolean', default: false },
        seed: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const int = (name: string, raw: string | undefined, dflt: number, min: number) => {
    if (raw === undefined) return dflt;
    if (!/^\d+$/.test(raw) || Number(raw) < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return Number(raw);
  };
  const quick = v.quick === true;
  let scenarios: ScenarioId[] = [...SCENARIO_IDS];
  if (v.scenarios !== undefined) {
    const ids = v.scenarios.split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = ids.filter((id) => !(SCENARIO_IDS as readonly string[]).includes(id));
    if (unknown.length || ids.length === 0) throw new UsageError(`unknown scenario ${unknown.join(', ') || '(none given)'}; known: ${SCENARIO_IDS.join(', ')}`);
    scenarios = SCENARIO_IDS.filter((id) => ids.includes(id));
  }
  return {
    packages: int('packages', v.packages, quick ? 3 : 150, 1),
    runs: int('runs', v.runs, quick ? 1 : 3, 1),
    seed: int('seed', v.seed, 1, 0),
    scenarios,
    quick,
    outDir: path.resolve(v.out ?? path.join(REPO_ROOT, 'bench', 'results')),
  };
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'hearth-bench',
  GIT_AUTHOR_EMAIL: 'bench@hearth.invalid',
  GIT_COMMITTER_NAME: 'hearth-bench',
  GIT_COMMITTER_EMAIL: 'bench@hearth.invalid',
  GIT_TERMINAL_PROMPT: '0',
};

/** Safety net only: a server orphaned by a `kill -9` of the bench exits by itself after this. */
const BAZEL_MAX_IDLE_SECS = 1800;
const BAZEL_TIMEOUT_MS = 30 * 60_000;

interface Ctx {
  opts: BenchOptions;
  signal: AbortSignal;
  work: string;
  originUrl: string;
  userRoot: string;
  /** Environment of local Bazel runs: an empty HOME, so no user .bazelrc changes what is measured. */
  bazelEnv: NodeJS.ProcessEnv;
  sourceFileToTouch: string;
  notes: string[];
}

async function main(signal: AbortSignal): Promise<number> {
  let opts: BenchOptions | 'help';
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\n${USAGE}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const startedAt = new Date();
  const t0 = performance.now();
  const selected = new Set(opts.scenarios);
  // Scenario 3 needs bubblewrap (hearth's sandbox isolation, which snapshots require).
  const unavailable: Unavailable = {};
  if (selected.has('snapshot')) {
    const why = await bwrapProblem();
    if (why) unavailable.snapshot = `not available (${why})`;
  }
  const order = opts.scenarios.filter((id) => effectiveInfo(id, unavailable).available);
  const wants = (...ids: ScenarioId[]) => ids.some((id) => selected.has(id));
  progress(`${opts.packages} packages, ${opts.runs} run(s) of: ${order.join(', ') || '(nothing available)'}`);

  const machine = await machineFacts();
  const work = await mkdtemp(path.join(os.tmpdir(), 'hearth-bench-'));
  progress(`work dir: ${work}`);
  // Cleanups run newest first: servers are stopped before the tree they live in is removed.
  onCleanup('remove the temp dir', () => removeTree(work));
  onCleanup('stop Bazel servers left in the temp dir', async () => {
    const n = await stopBazelServersUnder(work);
    if (n) progress(`stopped ${n} leftover Bazel server(s)`);
  });
  const home = path.join(work, 'home');
  await mkdir(home);
  const ctx: Ctx = {
    opts,
    signal,
    work,
    originUrl: '',
    userRoot: path.join(work, 'bazel-user-root'),
    bazelEnv: { ...process.env, HOME: home, ...GIT_ENV },
    sourceFileToTouch: '',
    notes: [],
  };

  // --- the workspace, in a bare "origin" repository every scenario clones from
  const src = path.join(work, 'src');
  const gen = await generateWorkspace(src, { packages: opts.packages, seed: opts.seed });
  ctx.sourceFileToTouch = gen.sourceFileToTouch;
  await git(ctx, src, 'init', '-q', '-b', 'main');
  await git(ctx, src, 'add', '-A');
  await git(ctx, src, 'commit', '-q', '-m', `bench workspace: ${opts.packages} packages, seed ${opts.seed}`);
  const origin = path.join(work, 'origin.git');
  await runOk(['git', 'clone', '-q', '--bare', src, origin], { env: ctx.bazelEnv, signal });
  ctx.originUrl = `file://${origin}`;
  progress(`workspace: ${gen.targets} targets; touch file ${gen.sourceFileToTouch}`);

  // --- setup (not timed). hearth up starts while Bazel's install base is extracted (once, shared
  // by every scenario); then the local warm-up and hearth's warm-up run side by side.
  const hearthNode = wants('hearth-warm', 'hearth-one-change') ? startHearthNode(ctx) : null;
  hearthNode?.catch(() => {}); // awaited below; avoid an unhandled rejection meanwhile
  await runOk([BAZEL, `--output_user_root=${ctx.userRoot}`, '--batch', 'version'], { cwd: work, env: ctx.bazelEnv, signal });
  const [local, hearth, snapshot] = await Promise.all([
    wants('disk-cache', 'floor') ? setupLocalWarm(ctx, { seedDiskCache: selected.has('disk-cache'), keepFloor: selected.has('floor') }) : null,
    hearthNode ? hearthNode.then((node) => setupHearth(ctx, node)) : null,
    // A setup failure here drops only scenario 3 (with a note), not the whole bench.
    order.includes('snapshot')
      ? setupSnapshot(ctx).catch((err: Error) => {
          if (signal.aborted) throw err;
          progress(`setup: snapshot scenario FAILED: ${err.message}`);
          ctx.notes.push(`snapshot: setup failed, so the scenario has no runs: ${err.message.split('\n')[0]}`);
          return null;
        })
      : null,
  ]);
  if (order.includes('snapshot') && !snapshot) order.splice(order.indexOf('snapshot'), 1);
  progress('setup done; timing starts');

  const runners: Partial<Record<ScenarioId, (run: number) => Promise<RunSample>>> = {
    cold: (run) => runCold(ctx, run),
    'disk-cache': (run) => runDiskCache(ctx, run, local!.diskCacheTar!),
    snapshot: (run) => runSnapshot(ctx, run, snapshot!),
    'hearth-warm': (run) => runHearthWarm(ctx, run, hearth!),
    'hearth-one-change': (run) => runHearthOneChange(ctx, run, hearth!),
    floor: (run) => runFloor(ctx, run, local!),
  };

  // --- the timed part: round-robin
  const samples: Partial<Record<ScenarioId, RunSample[]>> = {};
  for (let run = 1; run <= opts.runs; run++) {
    for (const id of order) {
      signal.throwIfAborted();
      try {
        const sample = await runners[id]!(run);
        (samples[id] ??= []).push(sample);
        progress(`round ${run}/${opts.runs} ${id}: ${fmtSeconds(sample.ms, 3)}`);
      } catch (err) {
        if (signal.aborted) throw err;
        const msg = (err as Error).message;
        progress(`round ${run}/${opts.runs} ${id}: FAILED: ${msg}`);
        ctx.notes.push(`round ${run} of ${id} failed and is not counted: ${msg.split('\n')[0]}`);
      }
    }
  }

  // --- report
  const finishedAt = new Date();
  const report = buildReport({
    startedAt,
    finishedAt,
    totalWallMs: performance.now() - t0,
    command: commandLine('bench'),
    argv: process.argv.slice(2),
    options: opts,
    machine,
    loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    workspace: { packages: gen.packages, targets: gen.targets, seed: opts.seed, sourceFileToTouch: gen.sourceFileToTouch },
    order,
    samples,
    notes: [...standardNotes(ctx, local, hearth, snapshot), ...ctx.notes],
    unavailable,
  });
  const md = renderMarkdown(report);
  await mkdir(opts.outDir, { recursive: true });
  const base = fileTimestamp(startedAt);
  const files = {
    md: path.join(opts.outDir, `${base}.md`),
    json: path.join(opts.outDir, `${base}.json`),
  };
  const json = `${JSON.stringify(report, null, 2)}\n`;
  await writeFile(files.md, md);
  await writeFile(files.json, json);
  await writeFile(path.join(opts.outDir, 'latest.md'), md);
  await writeFile(path.join(opts.outDir, 'latest.json'), json);
  process.stdout.write(`${md}\n`);
  progress(`wrote ${files.md} and ${files.json} (also latest.md/json)`);
  return 0;
}

function standardNotes(ctx: Ctx, local: LocalWarm | null, hearth: HearthSession | null, snapshot: SnapshotSession | null): string[] {
  const n = [
    'Local Bazel runs (cold, disk-cache, floor) use an empty HOME (no user .bazelrc), one shared --output_user_root whose install base was extracted once before timing, and a fresh --output_base per cold/disk-cache run; their servers are shut down after each run (untimed).',
    'Clones use the file:// git transport from a bare repository on the same disk (no network); a real CI clone would also pay for the network.',
  ];
  if (local?.diskCacheTar) {
    n.push(
      `disk-cache: the tarball (${fmtBytes(local.diskCacheTarBytes)}, uncompressed) was made once from a full build's --disk_cache, untimed; each run restores it from local disk with tar -x (a real CI would first download it).`,
    );
  }
  if (hearth) {
    n.push(
      "hearth-warm/hearth-one-change: one `hearth up` node (--port 0 --cache-port 0) in a temp data dir, sharing the bench's install base; its runner's .bazelrc adds --remote_cache (the colocated cache) and --build_metadata, which the local floor run does not have.",
      'hearth-one-change: before each timed run, touch_value() in the touched file gets a constant never used before; after the timed run the edit is reverted and an untimed hearth run brings the runner back to the committed tree, so every hearth-warm run is a true no-op and every one-change run starts from the same state.',
    );
  }
  if (snapshot) {
    const w = snapshot.warmupSave;
    n.push(
      `snapshot: a separate \`hearth server\` (--port 0 --cache-port 0) and \`hearth executor --isolation sandbox --snapshots\` (bubblewrap; default save policy), both in temp dirs. ` +
        `One untimed cold run on the default branch (${fmtSeconds(snapshot.warmupMs, 1)}) saved the snapshot (${w.bytes_uploaded !== undefined ? fmtBytes(w.bytes_uploaded) : '?'} uploaded of ${w.bytes_total !== undefined ? fmtBytes(w.bytes_total) : '?'}, save took ${fmtSeconds(w.duration_ms ?? null, 1)}).`,
      'snapshot: before each timed run a NEW executor process is started (untimed) in a NEW, empty data dir — no runners and an empty local chunk cache, i.e. "restored on another executor": every chunk is fetched from the server (over loopback HTTP). It reuses the executor id, so the server does not hold the run back for the previous executor\'s advertised runner. ' +
        'After the timed run the executor\'s snapshot save (every default-branch run saves; it happens after the result, so it is not in the wall time) is awaited, then the executor is stopped and its data dir removed (untimed).',
      `snapshot: runs use \`--runner_exec_properties ${SNAPSHOT_RUN_FLAGS[0]!.split('=').slice(1).join('=')}\`, so Bazel\'s hits come from the restored output base alone, not from the server\'s remote cache (as in hearth\'s e2e snapshot test); the sandbox runner shares the bench\'s Bazel install base.`,
    );
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// helpers

function git(ctx: Ctx, cwd: string, ...args: string[]) {
  return runOk(['git', ...args], { cwd, env: ctx.bazelEnv, signal: ctx.signal });
}

function bazelArgv(ctx: Ctx, outputBase: string, args: string[]): string[] {
  return [BAZEL, `--output_user_root=${ctx.userRoot}`, `--output_base=${outputBase}`, `--max_idle_secs=${BAZEL_MAX_IDLE_SECS}`, ...args];
}

function bazel(ctx: Ctx, cwd: string, outputBase: string, args: string[]) {
  return runOk(bazelArgv(ctx, outputBase, args), { cwd, env: ctx.bazelEnv, signal: ctx.signal, timeoutMs: BAZEL_TIMEOUT_MS });
}

/** `bazel shutdown`, then make sure the server is really gone. */
async function shutdownBazel(ctx: Ctx, cwd: string, outputBase: string): Promise<void> {
  await runTimed(bazelArgv(ctx, outputBase, ['shutdown']), { cwd, env: ctx.bazelEnv, timeoutMs: 60_000 }).catch(() => {});
  await stopBazelServer(outputBase);
}

async function clone(ctx: Ctx, dest: string): Promise<number> {
  return (await runOk(['git', 'clone', '-q', ctx.originUrl, dest], { env: ctx.bazelEnv, signal: ctx.signal })).ms;
}

// ---------------------------------------------------------------------------------------------
// (1) cold CI

async function runCold(ctx: Ctx, run: number): Promise<RunSample> {
  const dir = path.join(ctx.work, `cold-${run}`);
  const ws = path.join(dir, 'ws');
  const ob = path.join(dir, 'output-base');
  await mkdir(dir);
  try {
    const t = performance.now();
    const cloneMs = await clone(ctx, ws);
    const b = await bazel(ctx, ws, ob, ['test', '//...']);
    const ms = performance.now() - t;
    return { run, ms, phases: { clone: cloneMs, bazel: b.ms } };
  } finally {
    await shutdownBazel(ctx, ws, ob);
    await removeTree(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// (2) CI with a disk cache restored from a tarball

interface LocalWarm {
  ws: string;
  outputBase: string;
  diskCacheTar: string | null;
  diskCacheTarBytes: number;
  keep: boolean;
}

/**
 * One untimed full build in a clone of its own. With `seedDiskCache` it writes a --disk_cache that
 * becomes the tarball scenario 2 restores; with `keepFloor` its server stays up, warmed by one more
 * untimed no-op build, as scenario 6's floor.
 */
async function setupLocalWarm(ctx: Ctx, o: { seedDiskCache: boolean; keepFloor: boolean }): Promise<LocalWarm> {
  const ws = path.join(ctx.work, 'floor-ws');
  const ob = path.join(ctx.work, 'floor-output-base');
  await clone(ctx, ws);
  const local: LocalWarm = { ws, outputBase: ob, diskCacheTar: null, diskCacheTarBytes: 0, keep: o.keepFloor };
  onCleanup('stop the floor Bazel server', () => stopBazelServer(ob));
  if (o.seedDiskCache) {
    const seed = path.join(ctx.work, 'disk-cache-seed');
    progress('setup: full build to seed the disk cache (untimed)');
    const b = await bazel(ctx, ws, ob, ['test', '//...', `--disk_cache=${seed}`]);
    progress(`setup: seed build took ${fmtSeconds(b.ms, 1)}`);
    const tar = path.join(ctx.work, 'disk-cache.tar');
    await runOk(['tar', '-C', seed, '-cf', tar, '.'], { signal: ctx.signal });
    await removeTree(seed);
    local.diskCacheTar = tar;
    local.diskCacheTarBytes = (await stat(tar)).size;
  }
  if (o.keepFloor) {
    progress('setup: warming the local floor server (untimed)');
    const b = await bazel(ctx, ws, ob, ['test', '//...']);
    progress(`setup: floor warm-up took ${fmtSeconds(b.ms, 1)}`);
  } else {
    await shutdownBazel(ctx, ws, ob);
  }
  return local;
}

async function runDiskCache(ctx: Ctx, run: number, tarball: string): Promise<RunSample> {
  const dir = path.join(ctx.work, `disk-cache-${run}`);
  const ws = path.join(dir, 'ws');
  const ob = path.join(dir, 'output-base');
  const dc = path.join(dir, 'disk-cache');
  await mkdir(dc, { recursive: true });
  try {
    const t = performance.now();
    const cloneMs = await clone(ctx, ws);
    const restore = await runOk(['tar', '-C', dc, '-xf', tarball], { signal: ctx.signal });
    const b = await bazel(ctx, ws, ob, ['test', '//...', `--disk_cache=${dc}`]);
    const ms = performance.now() - t;
    return { run, ms, phases: { clone: cloneMs, restore: restore.ms, bazel: b.ms } };
  } finally {
    await shutdownBazel(ctx, ws, ob);
    await removeTree(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// (4) and (5) hearth

interface HearthNode {
  url: string;
  dataDir: string;
  proc: ChildProcess;
  output(): string;
}

/** Where `hearth remote` runs: the server it talks to and the developer clone it runs in. */
interface RemoteTarget {
  url: string;
  client: HearthClient;
  /** The developer's clone `hearth remote` runs in. */
  dev: string;
}

interface HearthSession extends RemoteTarget {
  node: HearthNode;
  touchFile: string;
  original: string;
  warmupMs: number;
}

/** A long-running `hearth …` process (up, server, executor) the bench started. */
interface Daemon {
  proc: ChildProcess;
  /** The match of the readiness line. */
  ready: RegExpExecArray;
  output(): string;
  /** Graceful stop (SIGTERM; SIGKILL of its process group after 10 s), then sweeps Bazel servers under its data dir. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts `hearth <args>` in its own process group (so a terminal Ctrl-C reaches only us) and waits
 * for the line matching `ready` on its stdout/stderr. Its stop is registered as a cleanup too.
 */
async function startDaemon(ctx: Ctx, what: string, args: string[], ready: RegExp, dataDir: string): Promise<Daemon> {
  const proc = spawn(process.execPath, [HEARTH_BIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, HEARTH_LOG_LEVEL: process.env.HEARTH_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  proc.stdout!.on('data', (b) => (out = (out + b).slice(-64 * 1024)));
  proc.stderr!.on('data', (b) => (out = (out + b).slice(-64 * 1024)));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM'); // graceful: an executor stops its runners' Bazel servers
        // An executor stops its runners (and their Bazel servers) first, then a server's HTTP
        // listener closes; that last part can wait a long time on keep-alive connections, and the
        // Bazel servers are swept below anyway, so do not wait for it forever.
        const timer = setTimeout(() => {
          try {
            process.kill(-proc.pid!, 'SIGKILL');
          } catch {}
        }, 10_000);
        await exited;
        clearTimeout(timer);
      }
      await stopBazelServersUnder(dataDir);
    })());
  onCleanup(`stop ${what}`, stop);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const m = ready.exec(out);
    if (m) return { proc, ready: m, output: () => out, stop };
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${what} exited (${proc.exitCode ?? proc.signalCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`${what} did not start within 120 s:\n${out}`);
    ctx.signal.throwIfAborted();
    await sleep(50);
  }
}

/** `hearth up` in a temp data dir; stopped once, at the end. */
async function startHearthNode(ctx: Ctx): Promise<HearthNode> {
  const dataDir = path.join(ctx.work, 'hearth-node');
  await mkdir(dataDir);
  const d = await startDaemon(
    ctx,
    'hearth up',
    ['up', '--data-dir', dataDir, '--port', '0', '--cache-port', '0', '--bazel', BAZEL, '--bazel-user-root', ctx.userRoot],
    /hearth is up at (http:\/\/\S+)/,
    dataDir,
  );
  return { url: d.ready[1]!, dataDir, proc: d.proc, output: d.output };
}

async function setupHearth(ctx: Ctx, node: HearthNode): Promise<HearthSession> {
  progress(`setup: hearth is up at ${node.url}`);
  const dev = path.join(ctx.work, 'dev');
  await clone(ctx, dev);
  const touchFile = path.join(dev, ctx.sourceFileToTouch);
  const original = await readFile(touchFile, 'utf8');
  if (!/_touch_value\(\) \{ return \d+; \}/.test(original)) throw new Error(`${ctx.sourceFileToTouch} has no touch_value() to edit`);
  const session: HearthSession = { node, url: node.url, client: new HearthClient({ baseUrl: node.url }), dev, touchFile, original, warmupMs: 0 };
  progress('setup: warming hearth\'s runner with one untimed `hearth remote test //...`');
  const w = await hearthRemote(ctx, session);
  session.warmupMs = w.ms;
  progress(`setup: hearth warm-up run took ${fmtSeconds(w.ms, 1)} (runner ${w.details?.runner_kind})`);
  return session;
}

/**
 * Spawns `hearth remote test //...` in the dev clone and times it from spawn() to exit, noting when
 * the run was submitted (the CLI's "streaming remote run" line on stderr), the first stdout byte
 * (the remote log) and the first byte Bazel wrote. Then reads the invocation's own timings.
 */
async function hearthRemote(ctx: Ctx, s: RemoteTarget, hearthFlags: string[] = []): Promise<RunSample & { run: 0 }> {
  let submittedMs: number | null = null;
  let invocationId: string | null = null;
  let stderrText = '';
  let stdoutText = '';
  let lineStart = 0;
  let firstBazelMs: number | null = null;
  const spawnEpochMs = Date.now();
  const r = await runTimed([process.execPath, HEARTH_BIN, 'remote', ...hearthFlags, 'test', '//...'], {
    cwd: s.dev,
    env: { ...process.env, ...GIT_ENV, HEARTH_SERVER: s.url, HEARTH_LOG_LEVEL: 'warn' },
    signal: ctx.signal,
    timeoutMs: BAZEL_TIMEOUT_MS,
    onStderr: (b, at) => {
      stderrText += b.toString('utf8');
      if (submittedMs === null) {
        const m = /streaming remote run: \S*\/invocations\/([A-Za-z0-9_-]+)/.exec(stderrText);
        if (m) {
          submittedMs = at;
          invocationId = m[1]!;
        }
      }
    },
    onStdout: (b, at) => {
      if (firstBazelMs !== null) return;
      stdoutText += b.toString('utf8');
      // Look at each line start: the first line that is not one of hearth's "[hearth] …" notes is Bazel's.
      for (;;) {
        const rest = stdoutText.slice(lineStart);
        const nl = rest.indexOf('\n');
        const decidable = nl >= 0 || rest.length >= '[hearth]'.length;
        if (!decidable) break;
        if (!rest.startsWith('[hearth]') && rest.length > 0) {
          firstBazelMs = at;
          break;
        }
        if (nl < 0) break;
        lineStart += nl + 1;
      }
    },
  });
  const exitEpochMs = spawnEpochMs + r.ms;
  if (r.code !== 0) {
    const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-40).join('\n');
    throw new Error(`hearth remote test //... exited ${r.code ?? r.signal} after ${fmtSeconds(r.ms, 1)}:\n${tail}`);
  }
  // Bazel's summary line: "INFO: 0 processes." on a no-op / full cache hit, "INFO: 12 processes: …" otherwise.
  const processes = /INFO: (\d+) process(?:es)?\b/.exec(stripVTControlCharacters(r.stdout).split('\n').reverse().join('\n'));
  const details: Record<string, string | number | boolean | null> = {
    bazel_processes: processes ? Number(processes[1]) : null,
    first_log_byte_ms: r.firstStdoutMs,
    first_bazel_byte_ms: firstBazelMs,
    submitted_ms: submittedMs,
    invocation_id: invocationId,
  };
  if (invocationId) {
    let inv: Invocation | null = null;
    try {
      inv = await s.client.getInvocation(invocationId);
    } catch (err) {
      ctx.notes.push(`could not read invocation ${invocationId}: ${(err as Error).message}`);
    }
    if (inv) {
      const t = inv.timings;
      const step = t.steps?.[0];
      Object.assign(details, {
        runner_kind: inv.runner?.kind ?? null,
        created_ms: Date.parse(inv.created_at) - spawnEpochMs,
        queued_ms: t.queued_ms ?? null,
        runner_acquire_ms: t.runner_acquire_ms ?? null,
        git_sync_ms: t.git_sync_ms ?? null,
        patch_ms: t.patch_ms ?? null,
        bazel_step_ms: step?.duration_ms ?? null,
        executor_total_ms: t.total_ms ?? null,
        outside_executor_ms: t.total_ms !== undefined ? r.ms - t.total_ms : null,
        finished_to_exit_ms: inv.finished_at ? exitEpochMs - Date.parse(inv.finished_at) : null,
      });
      const snap = inv.runner?.snapshot;
      if (snap) {
        Object.assign(details, {
          runner_reason: inv.runner!.reason,
          snapshot_level: snap.level,
          snapshot_ref: snap.ref,
          restore_ms: snap.restore_ms,
          bytes_fetched: snap.bytes_fetched,
          bytes_reused_locally: snap.bytes_reused_locally,
        });
      }
    }
  }
  return { run: 0, ms: r.ms, details };
}

async function runHearthWarm(ctx: Ctx, run: number, s: HearthSession): Promise<RunSample> {
  const sample = await hearthRemote(ctx, s);
  if (sample.details?.runner_kind && sample.details.runner_kind !== 'recycled') {
    ctx.notes.push(`round ${run} of hearth-warm did not get a recycled runner (${sample.details.runner_kind})`);
  }
  return { ...sample, run };
}

async function runHearthOneChange(ctx: Ctx, run: number, s: HearthSession): Promise<RunSample> {
  // A constant no run has built before, so neither Bazel nor the remote cache has its outputs.
  const value = 1000 + run * 7 + (Date.now() % 1000) * 10_000;
  const edited = s.original.replace(/(_touch_value\(\) \{ return )\d+(; \})/, `$1${value}$2`);
  await writeFile(s.touchFile, edited);
  let sample: RunSample;
  try {
    sample = { ...(await hearthRemote(ctx, s)), run };
    if (sample.details?.runner_kind && sample.details.runner_kind !== 'recycled') {
      ctx.notes.push(`round ${run} of hearth-one-change did not get a recycled runner (${sample.details.runner_kind})`);
    }
    sample.details = { ...sample.details, touch_value: value };
  } finally {
    // Back to the committed tree, and the runner with it (untimed).
    await writeFile(s.touchFile, s.original);
  }
  const restore = await hearthRemote(ctx, s);
  sample.details = { ...sample.details, untimed_restore_ms: restore.ms };
  return sample;
}

// ---------------------------------------------------------------------------------------------
// (3) hearth snapshot restored onto a fresh runner

/** Same runner key for the warm-up and every timed run; no remote cache, so hits come from the restored output base. */
const SNAPSHOT_RUN_FLAGS = ['--runner_exec_properties=remote-cache=false'];
/** The executor id every fresh scenario-3 executor registers under (see the note on it). */
const SNAPSHOT_EXECUTOR_ID = 'hearth-bench-snapshot';
const SNAPSHOT_SAVE_TIMEOUT_MS = 15 * 60_000;

interface SnapshotSession extends RemoteTarget {
  server: Daemon;
  /** The executor now running, if any, and its data dir. */
  executor: { daemon: Daemon; dataDir: string } | null;
  executorsStarted: number;
  warmupMs: number;
  warmupSave: SnapshotSave;
}

/** Why hearth's sandbox isolation cannot work here, or null if bubblewrap runs. */
async function bwrapProblem(): Promise<string | null> {
  try {
    const r = await runTimed(['bwrap', '--die-with-parent', '--dev-bind', '/', '/', '--', 'true'], { timeoutMs: 30_000 });
    if (r.code === 0) return null;
    const line = r.stderr.trim().split('\n').at(-1) ?? '';
    return `bwrap does not work here: exited ${r.code ?? r.signal}${line ? `: ${line}` : ''}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'bwrap not found: hearth snapshots need --isolation sandbox (apt-get install bubblewrap)';
    return `cannot run bwrap: ${(err as Error).message}`;
  }
}

/** A new `hearth executor --isolation sandbox --snapshots` in a new, empty data dir (no runners, empty chunk cache). */
async function startSnapshotExecutor(ctx: Ctx, s: SnapshotSession): Promise<number> {
  if (s.executor) throw new Error('a snapshot executor is already running');
  const t = performance.now();
  const dataDir = path.join(ctx.work, `snapshot-executor-${++s.executorsStarted}`);
  await mkdir(dataDir);
  const args = ['executor', '--server', s.url, '--data-dir', dataDir, '--id', SNAPSHOT_EXECUTOR_ID, '--bazel', BAZEL, '--bazel-user-root', ctx.userRoot];
  const daemon = await startDaemon(ctx, `hearth executor #${s.executorsStarted}`, [...args, '--isolation', 'sandbox', '--snapshots'], /hearth executor \S+ pulling work/, dataDir);
  s.executor = { daemon, dataDir };
  return performance.now() - t;
}

/** Stops the executor (its runners' Bazel servers with it) and removes its data dir. */
async function stopSnapshotExecutor(s: SnapshotSession): Promise<void> {
  const e = s.executor;
  if (!e) return;
  s.executor = null;
  await e.daemon.stop();
  await removeTree(e.dataDir);
}

/** Polls the invocation until its runner's snapshot save is recorded (it arrives after the result). */
async function waitForSave(ctx: Ctx, s: SnapshotSession, invocationId: string): Promise<SnapshotSave | null> {
  const deadline = Date.now() + SNAPSHOT_SAVE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    ctx.signal.throwIfAborted();
    const inv = await s.client.getInvocation(invocationId);
    if (inv.runner?.save) return inv.runner.save;
    await sleep(200);
  }
  return null;
}

/**
 * A `hearth server` and a sandbox executor with snapshots; one untimed cold run on the default
 * branch, whose snapshot save is awaited; then that executor is stopped (its warm runner with it).
 */
async function setupSnapshot(ctx: Ctx): Promise<SnapshotSession> {
  const serverDir = path.join(ctx.work, 'snapshot-server');
  await mkdir(serverDir);
  const server = await startDaemon(ctx, 'hearth server (snapshot)', ['server', '--data-dir', serverDir, '--port', '0', '--cache-port', '0'], /hearth server listening at (http:\/\/\S+)/, serverDir);
  const url = server.ready[1]!;
  progress(`setup: snapshot server at ${url}`);
  const dev = path.join(ctx.work, 'snapshot-dev');
  await clone(ctx, dev);
  const s: SnapshotSession = {
    server,
    url,
    client: new HearthClient({ baseUrl: url }),
    dev,
    executor: null,
    executorsStarted: 0,
    warmupMs: 0,
    warmupSave: { saved: false, why: '' },
  };
  await startSnapshotExecutor(ctx, s);
  try {
    progress('setup: snapshot warm-up: one untimed cold `hearth remote test //...` on a sandbox executor');
    const w = await hearthRemote(ctx, s, SNAPSHOT_RUN_FLAGS);
    s.warmupMs = w.ms;
    const id = w.details?.invocation_id;
    if (typeof id !== 'string') throw new Error('the warm-up run printed no invocation id');
    const save = await waitForSave(ctx, s, id);
    if (!save) throw new Error(`the warm-up run's snapshot save was not recorded within ${SNAPSHOT_SAVE_TIMEOUT_MS / 60_000} min`);
    if (!save.saved) throw new Error(`the warm-up run's snapshot was not saved: ${save.why}`);
    s.warmupSave = save;
    progress(
      `setup: snapshot warm-up took ${fmtSeconds(w.ms, 1)} (runner ${w.details?.runner_kind}); snapshot saved: ` +
        `${fmtBytes(save.bytes_uploaded ?? 0)} uploaded of ${fmtBytes(save.bytes_total ?? 0)} in ${fmtSeconds(save.duration_ms ?? null, 1)}`,
    );
  } finally {
    await stopSnapshotExecutor(s);
  }
  return s;
}

async function runSnapshot(ctx: Ctx, run: number, s: SnapshotSession): Promise<RunSample> {
  const executorStartMs = await startSnapshotExecutor(ctx, s); // untimed
  try {
    const sample: RunSample = { ...(await hearthRemote(ctx, s, SNAPSHOT_RUN_FLAGS)), run };
    const d = sample.details ?? {};
    if (d.runner_kind !== 'snapshot') {
      ctx.notes.push(`round ${run} of snapshot did not restore a snapshot: runner ${d.runner_kind ?? '?'}${d.runner_reason ? ` (${d.runner_reason})` : ''}`);
    }
    const phases: Record<string, number> = {};
    if (typeof d.restore_ms === 'number') phases.restore = d.restore_ms;
    if (typeof d.bazel_step_ms === 'number') phases.bazel = d.bazel_step_ms;
    sample.phases = phases;
    // The run saves again after its result (untimed): wait, so it does not overlap the next scenario.
    const t = performance.now();
    const save = typeof d.invocation_id === 'string' ? await waitForSave(ctx, s, d.invocation_id) : null;
    sample.details = {
      ...d,
      untimed_executor_start_ms: executorStartMs,
      untimed_save_wait_ms: performance.now() - t,
      save_saved: save?.saved ?? null,
      save_bytes_uploaded: save?.bytes_uploaded ?? null,
    };
    return sample;
  } finally {
    await stopSnapshotExecutor(s);
  }
}

// ---------------------------------------------------------------------------------------------
// (6) floor

async function runFloor(ctx: Ctx, run: number, local: LocalWarm): Promise<RunSample> {
  const b = await bazel(ctx, local.ws, local.outputBase, ['test', '//...']);
  return { run, ms: b.ms };
}

runMain(main);
