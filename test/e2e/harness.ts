/**
 * End-to-end harness: starts the real `hearth` CLI as child processes (so tests can kill them),
 * makes real git repositories from the bundled example workspaces, and cleans up every Bazel
 * server it caused. No mocks: real HTTP, SQLite, git and Bazel.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { HearthClient, type Invocation, type RunRequest } from '@hearth/api';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
const HEARTH_BIN = join(REPO_ROOT, 'packages/cli/bin/hearth.js');
/** Shared by all tests: Bazel's install base is extracted once, not per test. */
export const SHARED_BAZEL_USER_ROOT = join(tmpdir(), 'hearth-test-bazel-user-root');

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `hearth-${prefix}-`));
}

export interface Proc {
  child: ChildProcess;
  output(): string;
  /** SIGTERM and wait for exit (SIGKILL after 15 s). */
  stop(): Promise<void>;
  kill9(): void;
  exited: Promise<number | null>;
}

export function startHearth(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Proc {
  const child = spawn(process.execPath, [HEARTH_BIN, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, HEARTH_LOG_LEVEL: process.env.HEARTH_LOG_LEVEL ?? 'warn', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    output: () => out,
    exited,
    kill9: () => child.kill('SIGKILL'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

export async function waitForOutput(p: Proc, re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = p.output().match(re);
    if (m) return m;
    if (p.child.exitCode !== null) throw new Error(`process exited (${p.child.exitCode}) before printing ${re}:\n${p.output()}`);
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${re}; output so far:\n${p.output()}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const executorFlags = ['--bazel-user-root', SHARED_BAZEL_USER_ROOT, '--kill-grace-ms', '3000'];

/** `hearth up` on a free port in a fresh data dir. */
export async function startNode(extra: string[] = []): Promise<{ proc: Proc; url: string; client: HearthClient; dataDir: string; stop(): Promise<void> }> {
  const dataDir = tempDir('node');
  const proc = startHearth(['up', '--data-dir', dataDir, '--port', '0', '--cache-port', '0', ...executorFlags, ...extra]);
  const url = (await waitForOutput(proc, /hearth is up at (http:\/\/\S+)/))[1]!;
  return { proc, url, dataDir, client: new HearthClient({ baseUrl: url }), stop: () => stopAll([proc], dataDir) };
}

export async function startServerProc(dataDir: string, extra: string[] = []): Promise<{ proc: Proc; url: string; client: HearthClient }> {
  const proc = startHearth(['server', '--data-dir', dataDir, '--cache-port', '0', ...extra]);
  const url = (await waitForOutput(proc, /hearth server listening at (http:\/\/\S+)/))[1]!;
  return { proc, url, client: new HearthClient({ baseUrl: url }) };
}

export async function startExecutorProc(serverUrl: string, dataDir: string, extra: string[] = []): Promise<Proc> {
  const proc = startHearth(['executor', '--server', serverUrl, '--data-dir', dataDir, ...executorFlags, ...extra]);
  await waitForOutput(proc, /hearth executor \S+ pulling work/);
  return proc;
}

/** Stops processes, then kills any Bazel server left under `dataDir` (e.g. after a kill -9). */
export async function stopAll(procs: Proc[], dataDir?: string): Promise<void> {
  await Promise.all(procs.map((p) => p.stop()));
  if (dataDir) killBazelServersUnder(dataDir);
}

export function killBazelServersUnder(dir: string): void {
  const walk = (d: string, depth: number) => {
    if (depth > 6 || !existsSync(d)) return;
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (name === 'server.pid.txt') {
        const pid = Number(readFileSync(p, 'utf8'));
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      } else if (!name.startsWith('execroot') && !name.startsWith('external') && statSync(p, { throwIfNoEntry: false })?.isDirectory()) {
        walk(p, depth + 1);
      }
    }
  };
  walk(dir, 0);
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
  }).trim();
}

/** A git repository holding a copy of `examples/<name>` (or nothing), with one commit on `main`. */
export function makeRepo(example: string | null, files: Record<string, string> = {}): { dir: string; url: string; sha: string } {
  const dir = tempDir('repo');
  if (example) cpSync(join(REPO_ROOT, 'examples', example), dir, { recursive: true, filter: (src) => !/\/bazel-[^/]*$/.test(src) });
  for (const [path, content] of Object.entries(files)) {
    const p = join(dir, path);
    execFileSync('mkdir', ['-p', resolve(p, '..')]);
    execFileSync('tee', [p], { input: content, stdio: ['pipe', 'ignore', 'inherit'] });
  }
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'initial');
  return { dir, url: `file://${dir}`, sha: git(dir, 'rev-parse', 'HEAD') };
}

export async function runAndWait(client: HearthClient, req: RunRequest): Promise<Invocation> {
  const { invocation_id } = await client.run({ ...req, wait_until: 'COMPLETED' });
  return client.getInvocation(invocation_id);
}

export async function waitForStatus(client: HearthClient, id: string, pred: (inv: Invocation) => boolean, timeoutMs = 60_000): Promise<Invocation> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const inv = await client.getInvocation(id);
    if (pred(inv)) return inv;
    if (Date.now() > deadline) throw new Error(`timed out waiting on ${id}; last: ${JSON.stringify(inv)}`);
    await sleep(100);
  }
}

/** The whole log as a string (following the live stream until the run ends). */
export async function fullLog(client: HearthClient, id: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of client.followLog(id, 0)) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
