/**
 * Resilience of the server/executor split with real processes: a server restart keeps the queue,
 * a killed executor's run fails (and nothing of it keeps running), a run lost before its first
 * step is requeued and runs again elsewhere, affinity routing sends a repo back to its warm
 * runner, and an executor that lost a run can no longer write to it. Steps are tiny shell
 * commands: no Bazel here.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { after, describe, test } from 'node:test';
import type { HearthClient, Invocation, Task } from '@hearth/api';
import {
  type Proc,
  cleanup,
  fullLog,
  killBazelServersUnder,
  makeRepo,
  runAndWait,
  sleep,
  startExecutorProc,
  startServerProc,
  stopAll,
  tempDir,
  waitForStatus,
} from './harness.ts';

const procs: Proc[] = [];
const dirs: string[] = [];

after(async () => {
  await stopAll(procs);
  for (const d of dirs) killBazelServersUnder(d);
  for (const d of dirs) cleanup(d);
});

function dir(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
}

function repo(files: Record<string, string> = { 'README.md': 'x\n' }) {
  const r = makeRepo(null, files);
  dirs.push(r.dir);
  return r;
}

async function server(dataDir: string, extra: string[] = []) {
  const s = await startServerProc(dataDir, ['--port', '0', ...extra]);
  procs.push(s.proc);
  return s;
}

async function executor(url: string, dataDir: string, extra: string[] = []) {
  const p = await startExecutorProc(url, dataDir, extra);
  procs.push(p);
  return p;
}

async function logSoFar(client: HearthClient, id: string): Promise<string> {
  const r = await client.getLog({ invocation_id: id, offset: 0 });
  return Buffer.from(r.data, 'base64').toString('utf8');
}

async function waitForLog(client: HearthClient, id: string, needle: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await logSoFar(client, id)).includes(needle)) {
    if (Date.now() > deadline) throw new Error(`log of ${id} never showed ${JSON.stringify(needle)}: ${await logSoFar(client, id)}`);
    await sleep(100);
  }
}

/** POSTs JSON without the typed client, so tests can speak the executor protocol as anyone. */
async function post(url: string, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Live processes whose command line contains `needle`, or whose cwd is under `cwdPrefix`. */
function processes(match: { needle?: string; cwdPrefix?: string }): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      if (!cmd) continue; // zombie or kernel thread
      if (match.needle && cmd.includes(match.needle)) found.push(`${pid}: ${cmd}`);
      else if (match.cwdPrefix && readlinkSync(`/proc/${pid}/cwd`).startsWith(match.cwdPrefix)) found.push(`${pid}: ${cmd}`);
    } catch {
      // the process ended while we looked, or is not ours to inspect
    }
  }
  return found;
}

async function waitForNoProcesses(match: { needle?: string; cwdPrefix?: string }, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = processes(match);
    if (left.length === 0) return;
    if (Date.now() > deadline) assert.fail(`processes survived: ${left.join('\n')}`);
    await sleep(100);
  }
}

/**
 * Waits until `executorId` has told the server (by heartbeat) that the runner of `invocationId`'s
 * key is idle. Read from the server's database: the public API does not expose executors.
 */
async function waitForIdleKey(serverDir: string, executorId: string, invocationId: string, timeoutMs = 15_000): Promise<void> {
  const db = new Database(join(serverDir, 'hearth.db'), { readonly: true, fileMustExist: true });
  try {
    const { runner_key: key } = db.prepare('SELECT runner_key FROM invocations WHERE id = ?').get(invocationId) as { runner_key: string };
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const row = db.prepare('SELECT idle_runner_keys_json FROM executors WHERE id = ?').get(executorId) as { idle_runner_keys_json: string } | undefined;
      if (row && (JSON.parse(row.idle_runner_keys_json) as string[]).includes(key)) return;
      if (Date.now() > deadline) assert.fail(`executor ${executorId} never reported runner key ${key} idle (has ${row?.idle_runner_keys_json})`);
      await sleep(50);
    }
  } finally {
    db.close();
  }
}

const fakeExecutorInfo = (id: string) => ({ executor_id: id, hostname: hostname(), os: 'linux', arch: 'amd64', max_runners: 1, version: 'test' });
const fakeState = (id: string, active: string[] = []) => ({ executor_id: id, idle_runner_keys: [], active_invocations: active, free_slots: active.length > 0 ? 0 : 1 });

describe('resilience', () => {
  test('a queued run survives a server restart and runs once an executor joins', async () => {
    const serverDir = dir('srv');
    const r = repo();
    const first = await server(serverDir);
    const { invocation_id } = await first.client.run({ repo: r.url, commit_sha: r.sha, steps: [{ run: 'echo hi' }], async: true });
    assert.equal((await first.client.getInvocation(invocation_id)).status, 'queued');
    await first.proc.stop();
    assert.equal(first.proc.child.exitCode, 0, first.proc.output());

    const second = await server(serverDir);
    const queued = await second.client.getInvocation(invocation_id);
    assert.equal(queued.status, 'queued');
    assert.equal(queued.executor_id, null);
    assert.equal(queued.attempt, 0);
    assert.deepEqual(queued.steps, [{ run: 'echo hi' }]);
    // Nobody can take it yet: it stays queued.
    await sleep(500);
    assert.equal((await second.client.getInvocation(invocation_id)).status, 'queued');

    await executor(second.url, dir('exec'));
    const done = await waitForStatus(second.client, invocation_id, (i) => i.status !== 'queued' && i.status !== 'running', 30_000);
    assert.equal(done.status, 'succeeded', done.status_reason);
    assert.equal(done.exit_code, 0);
    assert.equal(done.attempt, 1);
    assert.match(await fullLog(second.client, invocation_id), /^hi$/m);
  });

  test('an executor killed mid-step: the run fails as "executor lost" naming the step, and no step process survives', async () => {
    const s = await server(dir('srv'), ['--executor-timeout-ms', '3000', '--heartbeat-interval-ms', '500']);
    const execDir = dir('exec');
    const ex = await executor(s.url, execDir);
    const r = repo();
    // A unique sleep duration marks the step's processes so we can look for survivors.
    const token = `600.${randomBytes(4).readUInt32BE(0)}`;
    const { invocation_id } = await s.client.run({ repo: r.url, commit_sha: r.sha, steps: [{ run: `echo started; sleep ${token}` }], async: true });
    await waitForLog(s.client, invocation_id, 'started');
    assert.notEqual(processes({ needle: `sleep ${token}` }).length, 0, 'the step should be running');
    const running = await s.client.getInvocation(invocation_id);
    assert.equal(running.status, 'running');

    const t0 = Date.now();
    ex.kill9();
    await ex.exited;
    const inv = await waitForStatus(s.client, invocation_id, (i) => i.status !== 'running', 15_000);
    assert.equal(inv.status, 'failed');
    assert.match(inv.status_reason, /executor lost/);
    assert.match(inv.status_reason, /step 1\b/);
    assert.equal(inv.failed_step, 0);
    assert.equal(inv.exit_code, null);
    assert.ok(Date.now() - t0 >= 2500, 'not declared lost before the executor timeout');
    // The in-runner agent kills its process groups when the executor's end of its stdin closes.
    await waitForNoProcesses({ needle: `sleep ${token}` }, 5000);
    await waitForNoProcesses({ cwdPrefix: execDir }, 5000);

    // The dead executor can no longer write to the run it lost, even with the right ids.
    const stale = { executor_id: running.executor_id!, invocation_id, attempt: running.attempt };
    assert.equal(inv.executor_id, stale.executor_id);
    const append = await post(s.url, '/internal/v1/runs/AppendLog', { ...stale, offset: 0, data: Buffer.from('late').toString('base64') });
    assert.equal(append.status, 409);
    assert.equal(append.body.code, 'stale');
    const update = await post(s.url, '/internal/v1/runs/Update', {
      ...stale,
      event: { type: 'finished', status: 'succeeded', exit_code: 0, reason: 'late', failed_step: null, timings: {} },
    });
    assert.equal(update.status, 409);
    assert.equal(update.body.code, 'stale');
    const later = await s.client.getInvocation(invocation_id);
    assert.equal(later.status, 'failed');
    assert.doesNotMatch(await logSoFar(s.client, invocation_id), /late/);
  });

  test('a run lost before its first step is requeued and completes on another executor as attempt 2', async () => {
    const s = await server(dir('srv'), ['--executor-timeout-ms', '2000', '--heartbeat-interval-ms', '500']);
    const r = repo();
    const fake = `fake-${randomBytes(3).toString('hex')}`;
    const reg = await post(s.url, '/internal/v1/executors/Register', fakeExecutorInfo(fake));
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    assert.equal(reg.body.heartbeat_interval_ms, 500);

    // Lease is a long poll: with nothing queued it answers "no task" after wait_ms, not at once.
    const t0 = Date.now();
    const empty = await post(s.url, '/internal/v1/executors/Lease', { ...fakeState(fake), wait_ms: 1500 });
    assert.equal(empty.status, 200, JSON.stringify(empty.body));
    assert.equal(empty.body.task, null);
    assert.ok(Date.now() - t0 >= 1400, `an empty lease returned after ${Date.now() - t0} ms instead of waiting`);
    // ...and a run queued while it waits is handed out at once.
    const pending = post(s.url, '/internal/v1/executors/Lease', { ...fakeState(fake), wait_ms: 20_000 });
    await sleep(300);
    const t1 = Date.now();
    const { invocation_id } = await s.client.run({ repo: r.url, commit_sha: r.sha, steps: [{ run: 'echo requeued-ok' }], async: true });
    const lease = await pending;
    assert.equal(lease.status, 200, JSON.stringify(lease.body));
    assert.ok(Date.now() - t1 < 5000, `the waiting lease took ${Date.now() - t1} ms to get the new run`);
    const task = lease.body.task as Task;
    assert.equal(task.invocation_id, invocation_id);
    assert.equal(task.attempt, 1);
    const taken = await s.client.getInvocation(invocation_id);
    assert.equal(taken.status, 'running');
    assert.equal(taken.executor_id, fake);

    // The fake executor now goes silent: no heartbeat, no step. The run goes back to the queue.
    const requeued = await waitForStatus(s.client, invocation_id, (i) => i.status !== 'running', 10_000);
    assert.equal(requeued.status, 'queued', requeued.status_reason);
    assert.match(requeued.status_reason, /requeued/);
    assert.match(requeued.status_reason, new RegExp(fake));
    assert.equal(requeued.executor_id, null);
    assert.equal(requeued.runner, null);

    // The lost executor is told to register again, and cannot write to the run any more.
    const hb = await post(s.url, '/internal/v1/executors/Heartbeat', fakeState(fake, [invocation_id]));
    assert.equal(hb.status, 200);
    assert.equal(hb.body.reregister, true);
    const leaseAgain = await post(s.url, '/internal/v1/executors/Lease', { ...fakeState(fake), wait_ms: 0 });
    assert.equal(leaseAgain.status, 409);
    assert.equal(leaseAgain.body.code, 'unregistered');
    const staleIds = { executor_id: fake, invocation_id, attempt: 1 };
    const append = await post(s.url, '/internal/v1/runs/AppendLog', { ...staleIds, offset: 0, data: Buffer.from('ghost').toString('base64') });
    assert.equal(append.status, 409);
    assert.equal(append.body.code, 'stale');
    const started = await post(s.url, '/internal/v1/runs/Update', {
      ...staleIds,
      event: { type: 'started', runner: { kind: 'cold', runner_id: 'ghost', executor_id: fake, reason: 'ghost', previous_runs: 0 } },
    });
    assert.equal(started.status, 409);
    assert.equal(started.body.code, 'stale');
    assert.equal((await s.client.getInvocation(invocation_id)).status, 'queued');

    await executor(s.url, dir('exec'));
    const done = await waitForStatus(s.client, invocation_id, (i) => i.status !== 'queued' && i.status !== 'running', 30_000);
    assert.equal(done.status, 'succeeded', done.status_reason);
    assert.equal(done.attempt, 2);
    assert.notEqual(done.executor_id, fake);
    assert.equal(done.runner?.kind, 'cold');
    const log = await fullLog(s.client, invocation_id);
    assert.match(log, /^requeued-ok$/m);
    assert.doesNotMatch(log, /ghost/);

    // Even after re-registering, the old attempt stays dead: attempt numbers fence it off.
    assert.equal((await post(s.url, '/internal/v1/executors/Register', fakeExecutorInfo(fake))).status, 200);
    const late = await post(s.url, '/internal/v1/runs/Update', {
      ...staleIds,
      event: { type: 'finished', status: 'failed', exit_code: 1, reason: 'ghost', failed_step: 0, timings: {} },
    });
    assert.equal(late.status, 409);
    assert.equal(late.body.code, 'stale');
    const real = { executor_id: done.executor_id!, invocation_id, attempt: 1 };
    const wrongAttempt = await post(s.url, '/internal/v1/runs/AppendLog', { ...real, offset: 0, data: Buffer.from('ghost').toString('base64') });
    assert.equal(wrongAttempt.status, 409, 'the right executor with the wrong attempt is stale too');
    const final = await s.client.getInvocation(invocation_id);
    assert.equal(final.status, 'succeeded');
    assert.equal(final.attempt, 2);
  });

  test('affinity: repeated runs of a repo go back to the executor holding its warm runner', async () => {
    const serverDir = dir('srv');
    const s = await server(serverDir, ['--heartbeat-interval-ms', '200']);
    await executor(s.url, dir('exec1'), ['--max-runners', '2']);
    await executor(s.url, dir('exec2'), ['--max-runners', '2']);
    const a = repo({ 'a.txt': 'a\n' });
    const b = repo({ 'b.txt': 'b\n' });
    const reqA = { repo: a.url, commit_sha: a.sha, steps: [{ run: 'cat a.txt' }] };

    const first = await runAndWait(s.client, reqA);
    assert.equal(first.status, 'succeeded', first.status_reason);
    assert.equal(first.runner?.kind, 'cold');
    const home = first.executor_id!;
    let last = first;
    for (let i = 0; i < 5; i++) {
      // The runner goes idle just after the result is reported; the server learns it from the
      // executor's next heartbeat (every 200 ms here). Only then is there a warm runner to route to.
      await waitForIdleKey(serverDir, home, last.invocation_id);
      if (i === 2) {
        // Another repo in between may land anywhere, and does not take A's warm runner.
        const other = await runAndWait(s.client, { repo: b.url, commit_sha: b.sha, steps: [{ run: 'cat b.txt' }] });
        assert.equal(other.status, 'succeeded', other.status_reason);
        assert.notEqual(other.runner?.runner_id, first.runner?.runner_id);
        await waitForIdleKey(serverDir, home, last.invocation_id);
      }
      const inv = await runAndWait(s.client, reqA);
      assert.equal(inv.status, 'succeeded', inv.status_reason);
      assert.equal(inv.executor_id, home, `run ${i + 2} went to ${inv.executor_id}, not to ${home} which holds the warm runner`);
      assert.equal(inv.runner?.kind, 'recycled', `run ${i + 2}: ${inv.runner?.reason}`);
      assert.equal(inv.runner?.runner_id, first.runner?.runner_id);
      assert.equal(inv.runner?.previous_runs, i + 1);
      last = inv;
    }

    // Stopping the server does not wait for the executors' long polls to expire.
    const t0 = Date.now();
    await s.proc.stop();
    assert.equal(s.proc.child.exitCode, 0, s.proc.output());
    assert.ok(Date.now() - t0 < 5000, `server took ${Date.now() - t0} ms to stop with executors polling`);
  });
});
