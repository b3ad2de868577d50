import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { BareIsolation } from './isolation.ts';
import { RunnerPool } from './runnerPool.ts';

const log = pino({ level: 'silent' });

function pool(dir: string, over: Partial<ConstructorParameters<typeof RunnerPool>[0]> = {}) {
  return new RunnerPool({
    rootDir: dir,
    isolation: new BareIsolation(),
    maxRunners: 2,
    maxRunnerDiskBytes: 1 << 30,
    totalDiskBudgetBytes: 2 ** 40,
    log,
    ...over,
  });
}

test('recycles an idle runner of the same key, and says why a new one is cold', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-pool-'));
  const p = pool(dir);
  try {
    const a = await p.acquire('k1', { clean: false });
    assert.equal(a.recycled, false);
    assert.match(a.reason, /no warm runner for this key/);
    const r = await a.runner.agent.exec(['bash', '-c', 'echo $0; pwd', 'x'], { cwd: a.runner.repoDir, env: { PATH: process.env.PATH! } });
    assert.equal(r.code, 0);
    await p.release(a.runner, { keep: true, reason: '' });
    assert.deepEqual(p.idleKeys(), ['k1']);
    const b = await p.acquire('k1', { clean: false });
    assert.equal(b.recycled, true);
    assert.equal(b.runner.id, a.runner.id);
    // busy runner: the same key gets a second, cold runner
    const c = await p.acquire('k1', { clean: false });
    assert.equal(c.recycled, false);
    assert.match(c.reason, /busy/);
    await p.release(b.runner, { keep: false, reason: 'the run was cancelled' });
    assert.equal(existsSync(b.runner.dir), false, 'a discarded runner is deleted');
    await p.release(c.runner, { keep: true, reason: '' });
    const d = await p.acquire('k1', { clean: true });
    assert.equal(d.recycled, false);
    assert.match(d.reason, /clean run requested/);
    await p.release(d.runner, { keep: false, reason: 'test' });
  } finally {
    await p.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('evicts the least recently used idle runner beyond maxRunners and deletes its workspace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-pool-'));
  const p = pool(dir);
  try {
    const a = await p.acquire('a', { clean: false });
    await p.release(a.runner, { keep: true, reason: '' });
    await new Promise((r) => setTimeout(r, 5));
    const b = await p.acquire('b', { clean: false });
    await p.release(b.runner, { keep: true, reason: '' });
    const c = await p.acquire('c', { clean: false }); // evicts a (LRU)
    assert.equal(existsSync(a.runner.dir), false);
    assert.equal(existsSync(b.runner.dir), true);
    assert.deepEqual(p.idleKeys(), ['b']);
    await p.release(c.runner, { keep: true, reason: '' });
    const again = await p.acquire('a', { clean: false });
    assert.equal(again.recycled, false);
    assert.match(again.reason, /evicted to make room/);
    await p.release(again.runner, { keep: false, reason: 'test' });
  } finally {
    await p.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a runner over the per-runner disk limit is not kept; the disk budget evicts idle runners', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-pool-'));
  const p = pool(dir, { maxRunnerDiskBytes: 64 * 1024, totalDiskBudgetBytes: 1 });
  try {
    const a = await p.acquire('a', { clean: false });
    await a.runner.agent.exec(['bash', '-c', 'head -c 200000 /dev/zero > big'], { cwd: a.runner.repoDir, env: { PATH: process.env.PATH! } });
    await p.release(a.runner, { keep: true, reason: '' });
    assert.equal(existsSync(a.runner.dir), false);
    assert.deepEqual(p.idleKeys(), []);
    const b = await p.acquire('a', { clean: false });
    assert.match(b.reason, /more than the 65536 allowed per runner/);
    // budget of 1 byte: even a small idle runner is evicted after release
    await p.release(b.runner, { keep: true, reason: '' });
    assert.deepEqual(p.idleKeys(), []);
  } finally {
    await p.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});
