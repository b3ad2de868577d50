import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Isolation } from './isolation.ts';
import { Runner, stopBazelServer } from './runner.ts';

export interface RunnerPoolOptions {
  rootDir: string;
  isolation: Isolation;
  /** Runners alive at once (busy + idle). */
  maxRunners: number;
  /** A runner bigger than this after a run is not kept. */
  maxRunnerDiskBytes: number;
  /** Idle runners are evicted, least recently used first, while all runners together exceed this. */
  totalDiskBudgetBytes: number;
  log: Logger;
}

export interface Acquired {
  runner: Runner;
  recycled: boolean;
  /** Why the run got this runner, in words a user can act on. */
  reason: string;
}

/**
 * Warm runners keyed by RunnerKey. A runner serves one run at a time; after a clean run it goes
 * back idle and the next run with the same key reuses it (warm Bazel server + warm disk).
 */
export class RunnerPool {
  private readonly runners = new Map<string, Runner>();
  /** Why the last runner of a key was not kept: the next cold start says so. */
  private readonly lastDiscard = new Map<string, string>();

  constructor(private readonly opts: RunnerPoolOptions) {}

  /** Removes runner dirs left by a previous executor process (their servers would otherwise leak). */
  async cleanStale(): Promise<void> {
    await mkdir(this.opts.rootDir, { recursive: true });
    for (const name of await readdir(this.opts.rootDir)) {
      const dir = join(this.opts.rootDir, name);
      if (existsSync(join(dir, 'output-base'))) await stopBazelServer(join(dir, 'output-base'));
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    }
  }

  idleKeys(): string[] {
    return [...new Set([...this.runners.values()].filter((r) => !r.busy).map((r) => r.key))];
  }

  get size(): number {
    return this.runners.size;
  }

  async acquire(key: string, opts: { clean: boolean }): Promise<Acquired> {
    const idle = [...this.runners.values()].filter((r) => !r.busy && r.key === key && r.agent.alive).sort((a, b) => b.lastUsedMs - a.lastUsedMs);
    if (idle[0] && !opts.clean) {
      const runner = idle[0];
      runner.busy = true;
      return { runner, recycled: true, reason: `recycled warm runner (served ${runner.runs} earlier run${runner.runs === 1 ? '' : 's'})` };
    }
    let reason: string;
    if (opts.clean) reason = 'clean run requested';
    else if ([...this.runners.values()].some((r) => r.key === key)) reason = 'every warm runner for this key is busy';
    else reason = this.lastDiscard.get(key) ?? 'no warm runner for this key on this executor';
    await this.makeRoom();
    const id = `r-${randomBytes(5).toString('hex')}`;
    const dir = join(this.opts.rootDir, id);
    await mkdir(dir, { recursive: true });
    const agent = await this.opts.isolation.startAgent(dir);
    const runner = new Runner(id, key, dir, agent, this.opts.isolation.runnerPathInside(dir));
    await runner.prepare();
    runner.busy = true;
    this.runners.set(id, runner);
    return { runner, recycled: false, reason: `cold runner: ${reason}` };
  }

  /**
   * Returns a runner after a run, synchronously, so the next run of its key can take it at once
   * (the caller reports the result after this). A kept runner is idle immediately; a discarded
   * one is out of the pool immediately. Slow work (stopping Bazel, deleting, measuring disk)
   * happens in `settle`, which the caller runs after reporting.
   */
  giveBack(runner: Runner, decision: { keep: boolean; reason: string }): void {
    runner.runs++;
    runner.lastUsedMs = Date.now();
    if (decision.keep) {
      runner.busy = false;
      return;
    }
    this.lastDiscard.set(runner.key, `previous runner ${runner.id} was not kept: ${decision.reason}`);
    this.opts.log.info({ runner: runner.id, reason: decision.reason }, 'discarding runner');
    this.runners.delete(runner.id);
  }

  /** After `giveBack`: destroys a discarded runner, or enforces the disk limits on a kept one. */
  async settle(runner: Runner): Promise<void> {
    if (!this.runners.has(runner.id)) {
      await runner.destroy();
      return;
    }
    const bytes = await runner.measureDisk();
    if (bytes > this.opts.maxRunnerDiskBytes && !runner.busy && this.runners.has(runner.id)) {
      await this.evict(runner, `too big: it used ${bytes} bytes of disk, more than the ${this.opts.maxRunnerDiskBytes} allowed per runner`);
      return;
    }
    await this.enforceDiskBudget();
  }

  /** `giveBack` then `settle`, for callers with nothing to do in between. */
  async release(runner: Runner, decision: { keep: boolean; reason: string }): Promise<void> {
    this.giveBack(runner, decision);
    await this.settle(runner);
  }

  /** Evicts idle runners (LRU) until a new one fits under maxRunners. */
  private async makeRoom(): Promise<void> {
    while (this.runners.size >= this.opts.maxRunners) {
      const victim = this.lruIdle();
      if (!victim) break; // all busy: the executor never leases more than it has slots for
      await this.evict(victim, `evicted to make room (max ${this.opts.maxRunners} runners)`);
    }
  }

  private async enforceDiskBudget(): Promise<void> {
    const total = () => [...this.runners.values()].reduce((n, r) => n + r.diskBytes, 0);
    while (total() > this.opts.totalDiskBudgetBytes) {
      const victim = this.lruIdle();
      if (!victim) break;
      await this.evict(victim, `evicted: runners use ${total()} bytes, over the ${this.opts.totalDiskBudgetBytes}-byte disk budget`);
    }
  }

  private lruIdle(): Runner | undefined {
    return [...this.runners.values()].filter((r) => !r.busy).sort((a, b) => a.lastUsedMs - b.lastUsedMs)[0];
  }

  async evict(runner: Runner, reason: string): Promise<void> {
    this.lastDiscard.set(runner.key, `previous runner ${runner.id} was ${reason}`);
    this.opts.log.info({ runner: runner.id, reason }, 'evicting runner');
    this.runners.delete(runner.id);
    await runner.destroy();
  }

  /** Evicts every idle runner (e.g. for tests and `--evict`); returns how many. */
  async evictAllIdle(reason = 'evicted on request'): Promise<number> {
    const idle = [...this.runners.values()].filter((r) => !r.busy);
    for (const r of idle) await this.evict(r, reason);
    return idle.length;
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.runners.values()].map((r) => r.destroy()));
    this.runners.clear();
  }
}
