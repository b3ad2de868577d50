/**
 * Shared plumbing for the benchmark scripts: timed child processes, a LIFO cleanup stack that also
 * runs on Ctrl-C / SIGTERM / crashes, stopping Bazel servers by output base, machine facts and
 * result files.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..');
export const BAZEL = path.join(REPO_ROOT, 'node_modules/@bazel/bazel-linux_x64/bazel-2.1.0-linux-x86_64');
export const HEARTH_BIN = path.join(REPO_ROOT, 'packages/cli/bin/hearth.js');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Prints a progress line on stderr, prefixed with the time since the process started. */
export function progress(text: string): void {
  const s = performance.now() / 1000;
  const mm = String(Math.floor(s / 60)).padStart(2, '0');
  const ss = String(Math.floor(s % 60)).padStart(2, '0');
  process.stderr.write(`[bench ${mm}:${ss}] ${text}\n`);
}

// ---------------------------------------------------------------------------------------------
// Cleanup: everything started or created registers its undo here; it runs once, newest first.

type CleanupFn = () => Promise<void> | void;
const cleanups: { name: string; fn: CleanupFn }[] = [];
const liveChildren = new Set<ChildProcess>();
let cleaningUp: Promise<void> | null = null;

export function onCleanup(name: string, fn: CleanupFn): void {
  cleanups.push({ name, fn });
}

export function runCleanups(): Promise<void> {
  cleaningUp ??= (async () => {
    // Short-lived children (bazel clients, git, hearth remote) first; daemons have their own entries.
    for (const c of liveChildren) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    while (cleanups.length) {
      const { name, fn } = cleanups.pop()!;
      const t = performance.now();
      try {
        await fn();
        const ms = performance.now() - t;
        if (ms > 1000) progress(`cleanup: ${name} (${(ms / 1000).toFixed(1)} s)`);
      } catch (err) {
        process.stderr.write(`bench: cleanup "${name}" failed: ${(err as Error).message}\n`);
      }
    }
  })();
  return cleaningUp;
}

/**
 * Runs `main`, then the cleanups, whatever happens: normal end, a thrown error, Ctrl-C (SIGINT),
 * SIGTERM or SIGHUP. Exits with main's code (130/143/129 on signals, 1 on errors).
 */
export function runMain(main: (signal: AbortSignal) => Promise<number>): void {
  const abort = new AbortController();
  let exiting = false;
  const onSignal = (sig: NodeJS.Signals, code: number) => {
    if (exiting) {
      process.stderr.write(`bench: ${sig} again, exiting without finishing cleanup\n`);
      process.exit(code);
    }
    exiting = true;
    process.stderr.write(`\nbench: ${sig} received, stopping servers and removing temp dirs (again to force)\n`);
    abort.abort(new Error(`interrupted by ${sig}`));
    runCleanups().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => onSignal('SIGINT', 130));
  process.on('SIGTERM', () => onSignal('SIGTERM', 143));
  process.on('SIGHUP', () => onSignal('SIGHUP', 129));
  main(abort.signal)
    .then(
      async (code) => {
        await runCleanups();
        return code;
      },
      async (err) => {
        if (!abort.signal.aborted) process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
        await runCleanups();
        return 1;
      },
    )
    .then((code) => {
      if (!exiting) process.exit(code);
    });
}

// ---------------------------------------------------------------------------------------------
// Child processes

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Called with each stdout chunk and the ms since spawn. */
  onStdout?: (chunk: Buffer, atMs: number) => void;
  onStderr?: (chunk: Buffer, atMs: number) => void;
  /** Bytes of stdout/stderr kept for error messages (the tail). Default 64 KiB. */
  keepBytes?: number;
  input?: string | Buffer;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Wall time from just before spawn() to the process's exit. */
  ms: number;
  /** ms from spawn to the first stdout byte, or null if it wrote nothing. */
  firstStdoutMs: number | null;
  stdout: string;
  stderr: string;
}

/** Spawns `argv` and times it from just before spawn() until the process exits. Never throws on a non-zero exit. */
export function runTimed(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const keep = opts.keepBytes ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(opts.signal.reason);
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    liveChildren.add(child);
    let out = '';
    let err = '';
    let firstStdoutMs: number | null = null;
    let exitMs = 0;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    child.stdout!.on('data', (b: Buffer) => {
      const at = performance.now() - t0;
      firstStdoutMs ??= at;
      opts.onStdout?.(b, at);
      out = (out + b.toString('utf8')).slice(-keep);
    });
    child.stderr!.on('data', (b: Buffer) => {
      opts.onStderr?.(b, performance.now() - t0);
      err = (err + b.toString('utf8')).slice(-keep);
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    const onAbort = () => child.kill('SIGKILL');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      liveChildren.delete(child);
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      resolve({ code: exitCode, signal: exitSignal, ms: exitMs, firstStdoutMs, stdout: out, stderr: err });
    };
    child.on('error', (e) => {
      settled = true;
      clearTimeout(timer);
      liveChildren.delete(child);
      reject(e);
    });
    child.on('exit', (code, sig) => {
      exitMs = performance.now() - t0;
      exitCode = code;
      exitSignal = sig;
      // Normally 'close' follows at once; do not hang if a grandchild kept a pipe open.
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      }, 2000).unref();
    });
    child.on('close', finish);
  });
}

/** runTimed, but throws (with the output's tail) unless the exit code is 0. */
export async function runOk(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runTimed(argv, opts);
  if (r.code !== 0) {
    const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-40).join('\n');
    throw new Error(`\`${argv.map(shellQuote).join(' ')}\` exited ${r.code ?? r.signal} after ${(r.ms / 1000).toFixed(1)} s:\n${tail}`);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Bazel servers

// One implementation of "stop an output base's Bazel server", shared with the executor.
import { processAlive, stopBazelServer } from '@hearth/executor/runner.ts';
export { processAlive, stopBazelServer };

/** Finds every Bazel output base under `dir` (a `server/server.pid.txt` marks one) and stops its server. */
export async function stopBazelServersUnder(dir: string): Promise<number> {
  const found: string[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 7 || !existsSync(d)) return;
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    if (names.includes('server') && existsSync(path.join(d, 'server', 'server.pid.txt'))) found.push(d);
    for (const name of names) {
      if (name === 'execroot' || name === 'external' || name === 'install' || name === 'action_cache' || name === '.git') continue;
      const p = path.join(d, name);
      let st;
      try {
        st = statSync(p, { throwIfNoEntry: false });
      } catch {
        continue;
      }
      if (st?.isDirectory() && !st.isSymbolicLink()) walk(p, depth + 1);
    }
  };
  walk(dir, 0);
  await Promise.all(found.map((ob) => stopBazelServer(ob)));
  return found.length;
}

/** Removes a directory tree Bazel wrote into (it leaves read-only files and directories). */
export async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  await new Promise<void>((r) => execFile('chmod', ['-R', 'u+w', dir], () => r()));
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

// ---------------------------------------------------------------------------------------------
// Statistics and facts

export interface Summary {
  median: number;
  min: number;
  max: number;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarize(xs: readonly number[]): Summary | null {
  if (xs.length === 0) return null;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

export interface MachineFacts {
  cores: number;
  cpuModel: string;
  memoryBytes: number;
  os: string;
  kernel: string;
  node: string;
  bazel: string | null;
  git: string | null;
  hostname: string;
  loadAverageAtStart: number[];
}

export async function machineFacts(): Promise<MachineFacts> {
  const version = async (argv: string[]) => {
    try {
      const r = await runTimed(argv, { timeoutMs: 30_000 });
      return r.code === 0 ? r.stdout.trim().split('\n')[0]! : null;
    } catch {
      return null;
    }
  };
  const cpus = os.cpus();
  let osName = `${os.type()} ${os.release()}`;
  try {
    const rel = readFileSync('/etc/os-release', 'utf8');
    osName = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(rel)?.[1] ?? osName;
  } catch {}
  return {
    cores: os.availableParallelism?.() ?? cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryBytes: os.totalmem(),
    os: osName,
    kernel: os.release(),
    node: process.version,
    bazel: existsSync(BAZEL) ? await version([BAZEL, '--version']) : null,
    git: await version(['git', '--version']),
    hostname: os.hostname(),
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** `2024-05-01T12-34-56Z`: an ISO timestamp that is safe in file names. */
export function fileTimestamp(d = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

/** The command line as the user typed it, as near as we can tell. */
export function commandLine(npmScript: string | null): string {
  const args = process.argv.slice(2).map(shellQuote).join(' ');
  if (npmScript && process.env.npm_lifecycle_event === npmScript) return `npm run ${npmScript}${args ? ` -- ${args}` : ''}`;
  const script = path.relative(process.cwd(), process.argv[1] ?? '') || process.argv[1];
  return ['node', ...process.execArgv, script, ...process.argv.slice(2)].map((a) => shellQuote(a ?? '')).join(' ');
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Writes `<dir>/<base>.md` and `.json`, and the same content as `<dir>/<latest>.md/.json`. */
export async function writeResults(dir: string, base: string, latest: string, markdown: string, json: unknown): Promise<{ md: string; json: string }> {
  await mkdir(dir, { recursive: true });
  const text = `${JSON.stringify(json, null, 2)}\n`;
  const md = path.join(dir, `${base}.md`);
  const js = path.join(dir, `${base}.json`);
  await writeFile(md, markdown);
  await writeFile(js, text);
  await writeFile(path.join(dir, `${latest}.md`), markdown);
  await writeFile(path.join(dir, `${latest}.json`), text);
  return { md, json: js };
}

export function fmtSeconds(ms: number | null | undefined, digits = 2): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  return `${(ms / 1000).toFixed(digits)} s`;
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
