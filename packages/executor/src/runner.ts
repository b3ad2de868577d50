import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentClient } from './agent/agentClient.ts';

/**
 * One warm workspace: a git checkout, a Bazel output base whose server stays alive between runs,
 * and the runner's own HOME (its .bazelrc pins the output base and keeps the server alive).
 */
export interface RunnerPaths {
  dir: string;
  repoDir: string;
  outputBase: string;
  homeDir: string;
  tmpDir: string;
  artifactsDir: string;
}

export function runnerPaths(dir: string): RunnerPaths {
  return {
    dir,
    repoDir: join(dir, 'repo'),
    outputBase: join(dir, 'output-base'),
    homeDir: join(dir, 'home'),
    tmpDir: join(dir, 'tmp'),
    artifactsDir: join(dir, 'artifacts'),
  };
}

/**
 * One warm workspace: a git checkout, a Bazel output base whose server stays alive between runs,
 * and the runner's own HOME (its .bazelrc pins the output base and keeps the server alive).
 * The plain fields are host paths (for the executor's own file work); `inside` holds the same
 * places as the runner's processes see them (equal for bare runners, fixed for sandboxes).
 */
export class Runner implements RunnerPaths {
  readonly repoDir: string;
  readonly outputBase: string;
  readonly homeDir: string;
  readonly tmpDir: string;
  readonly artifactsDir: string;
  readonly inside: RunnerPaths;
  /** Runs this runner has served. */
  runs = 0;
  lastUsedMs = Date.now();
  busy = false;
  /** Bytes on disk, measured after each run. */
  diskBytes = 0;

  constructor(
    readonly id: string,
    readonly key: string,
    readonly dir: string,
    readonly agent: AgentClient,
    insideDir: string = dir,
  ) {
    ({ repoDir: this.repoDir, outputBase: this.outputBase, homeDir: this.homeDir, tmpDir: this.tmpDir, artifactsDir: this.artifactsDir } = runnerPaths(dir));
    this.inside = runnerPaths(insideDir);
  }

  async prepare(): Promise<void> {
    for (const d of [this.repoDir, this.outputBase, this.homeDir, this.tmpDir, this.artifactsDir]) await mkdir(d, { recursive: true });
  }

  /**
   * Writes the runner's home .bazelrc for the next run. It has lower precedence than the
   * workspace's own .bazelrc, so users can override anything here except what keeps the runner
   * warm. Build metadata changes per run without discarding Bazel's analysis cache.
   */
  async writeBazelrc(opts: { bazelUserRoot: string; remoteCache: string | null; metadata: Record<string, string> }): Promise<void> {
    const lines = [
      '# Written by hearth for each run: keeps this runner warm and points Bazel at the colocated cache.',
      `startup --output_base=${this.inside.outputBase}`,
      `startup --output_user_root=${opts.bazelUserRoot}`,
      'startup --max_idle_secs=0',
      'build --color=yes',
      'build --curses=no',
    ];
    if (opts.remoteCache) lines.push(`build --remote_cache=${opts.remoteCache}`);
    for (const [k, v] of Object.entries(opts.metadata)) {
      if (/^[A-Za-z0-9_.-]+$/.test(k) && !/[\s"'\\]/.test(v)) lines.push(`build --build_metadata=${k}=${v}`);
    }
    await writeFile(join(this.homeDir, '.bazelrc'), `${lines.join('\n')}\n`);
  }

  /** Each run starts with an empty artifacts directory. */
  async resetArtifacts(): Promise<void> {
    await rm(this.artifactsDir, { recursive: true, force: true });
    await mkdir(this.artifactsDir, { recursive: true });
  }

  /** PID of this runner's Bazel server, if its pid file names a live process. */
  bazelServerPid(): number | null {
    const pidFile = join(this.outputBase, 'server', 'server.pid.txt');
    if (!existsSync(pidFile)) return null;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return null;
    return processAlive(pid) ? pid : null;
  }

  /** True when a Bazel server had been started here and is now gone (it crashed or was killed). */
  bazelServerCrashed(): boolean {
    return existsSync(join(this.outputBase, 'server', 'server.pid.txt')) && this.bazelServerPid() === null;
  }

  async measureDisk(): Promise<number> {
    this.diskBytes = await diskUsageBytes(this.dir);
    return this.diskBytes;
  }

  /** Stops the Bazel server and the agent, and deletes the workspace. */
  async destroy(): Promise<void> {
    this.agent.close();
    await stopBazelServer(this.outputBase);
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGTERM the output base's Bazel server, SIGKILL after 5 s. Used on eviction and discards. */
export async function stopBazelServer(outputBase: string): Promise<void> {
  const pidFile = join(outputBase, 'server', 'server.pid.txt');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 5000;
  while (processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (processAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
}

function diskUsageBytes(dir: string): Promise<number> {
  return new Promise((resolve) => {
    execFile('du', ['-sb', dir], { maxBuffer: 1 << 20 }, (err, stdout) => {
      resolve(err ? 0 : Number(stdout.split('\t')[0]) || 0);
    });
  });
}
