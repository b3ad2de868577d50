import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HearthClient } from '@hearth/api';
import { runnerKey } from '@hearth/core';
import pino from 'pino';
import { localPlatform, startServer } from './server.ts';

/** Executors here are raw protocol clients: the test decides exactly what each one reports. */
test('routing: warm runner first, then the executor holding the run\'s snapshot chunks, then anyone after the affinity window', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-sched-'));
  const server = await startServer({ dataDir: dir, host: '127.0.0.1', port: 0, cache: false, affinityWaitMs: 1500, logger: pino({ level: 'silent' }) });
  try {
    const client = new HearthClient({ baseUrl: server.url });
    const info = (id: string) => ({ executor_id: id, hostname: id, os: 'linux', arch: 'amd64', max_runners: 1, version: 't' });
    const repo = 'https://example.invalid/org/repo.git';
    const key = runnerKey({ repoUrl: repo, instance: '', platformProperties: {}, ...localPlatform() });
    const state = (id: string, extra: { idle?: string[]; snaps?: string[] } = {}) => ({
      executor_id: id,
      idle_runner_keys: extra.idle ?? [],
      active_invocations: [],
      free_slots: 1,
      snapshot_refs: extra.snaps ?? [],
    });
    for (const id of ['warm', 'snap', 'plain']) await client.registerExecutor(info(id));

    const run = async (branch: string) => (await client.run({ repo, branch, default_branch: 'main', steps: [{ run: 'true' }], async: true })).invocation_id;

    // 1. A warm runner elsewhere beats a local snapshot.
    await client.heartbeat(state('warm', { idle: [key] }));
    await client.heartbeat(state('snap', { snaps: [`${key}@main`] }));
    const a = await run('feature');
    assert.equal((await client.lease({ ...state('plain'), wait_ms: 0 })).task, null);
    assert.equal((await client.lease({ ...state('snap', { snaps: [`${key}@main`] }), wait_ms: 0 })).task, null);
    assert.equal((await client.lease({ ...state('warm', { idle: [key] }), wait_ms: 0 })).task?.invocation_id, a);

    // 2. With no warm runner anywhere, the executor holding the default branch's snapshot wins.
    await client.heartbeat(state('warm'));
    const b = await run('feature');
    assert.equal((await client.lease({ ...state('plain'), wait_ms: 0 })).task, null);
    assert.equal((await client.lease({ ...state('snap', { snaps: [`${key}@main`] }), wait_ms: 0 })).task?.invocation_id, b);

    // 3. After the affinity window anyone may take it.
    const c = await run('feature');
    assert.equal((await client.lease({ ...state('plain'), wait_ms: 0 })).task, null);
    await new Promise((r) => setTimeout(r, 1600));
    assert.equal((await client.lease({ ...state('plain'), wait_ms: 0 })).task?.invocation_id, c);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
