import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { snapshotInstance } from '@hearth/core';
import { HttpSnapshotIndex } from '@hearth/snapshot';
import pino from 'pino';
import { startServer } from '../server.ts';

test('snapshot index over HTTP: put/get/delete, and invalidating one repo leaves the others', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-snapidx-'));
  const server = await startServer({ dataDir: dir, host: '127.0.0.1', port: 0, cache: false, logger: pino({ level: 'silent' }) });
  try {
    const index = new HttpSnapshotIndex(server.url);
    const record = (repo: string, ref: string) => ({
      manifestDigest: { hash: 'a'.repeat(64), sizeBytes: 10 },
      createdAt: new Date(1_700_000_000_000).toISOString(),
      sizeBytes: 1234,
      instance: snapshotInstance(repo, 'k'),
      ref,
    });
    await index.put('k1', record('https://github.com/acme/widgets.git', 'main'));
    await index.put('k2', record('git@github.com:acme/widgets', 'feature'));
    await index.put('k3', record('https://github.com/acme/widgets-2', 'main'));
    assert.deepEqual(await index.get('k1'), record('https://github.com/acme/widgets.git', 'main'));
    assert.equal(await index.get('nope'), null);
    assert.equal(await index.delete('k3', { hash: 'b'.repeat(64), sizeBytes: 10 }), false, 'a different manifest is not deleted');

    const res = await fetch(`${server.url}/api/v1/InvalidateSnapshots`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ repo_url: 'https://github.com/acme/widgets' }),
    });
    assert.deepEqual(await res.json(), { invalidated: 2 });
    assert.equal(await index.get('k1'), null);
    assert.equal(await index.get('k2'), null);
    assert.notEqual(await index.get('k3'), null, 'widgets-2 is another repository');
    assert.equal(await index.delete('k3', { hash: 'a'.repeat(64), sizeBytes: 10 }), true);
    assert.deepEqual(await index.list(), []);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
