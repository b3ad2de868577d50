/**
 * Portable warm state: a run on `main` on executor A saves a snapshot; with A gone, a new branch on
 * executor B starts from main's snapshot (no recompilation), and its own later run finds its
 * own branch key. A corrupt chunk makes the lookup fall back, with the reason on the run.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { HearthClient, Invocation } from '@hearth/api';
import { cleanup, fullLog, git, makeRepo, type Proc, runAndWait, startExecutorProc, startServerProc, stopAll, tempDir, waitForStatus } from './harness.ts';

const SNAP = ['--isolation', 'sandbox', '--snapshots', '--max-runners', '2'];

describe('snapshots', () => {
  let serverDir: string;
  let server: { proc: Proc; url: string; client: HearthClient };
  const execDirs: string[] = [];
  const procs: Proc[] = [];
  let repo: ReturnType<typeof makeRepo>;
  before(async () => {
    serverDir = tempDir('snap-server');
    server = await startServerProc(serverDir, ['--port', '0']);
    procs.push(server.proc);
    repo = makeRepo('hello');
    git(repo.dir, 'branch', 'feature/x');
  });
  after(async () => {
    await stopAll(procs);
    for (const d of [serverDir, repo.dir, ...execDirs]) cleanup(d);
  });
  const executor = async () => {
    const dir = tempDir('snap-exec');
    execDirs.push(dir);
    const p = await startExecutorProc(server.url, dir, SNAP);
    procs.push(p);
    return p;
  };
  // remote-cache=false: the hits must come from the restored output base, not the remote cache.
  const run = (branch: string): Promise<Invocation> =>
    runAndWait(server.client, {
      repo: repo.url,
      branch,
      commit_sha: repo.sha,
      default_branch: 'main',
      platform_properties: { 'remote-cache': 'false' },
      steps: [{ run: 'bazel test //...' }],
    });

  test('main on A saves; feature/x on B restores main\'s snapshot, then finds its own key', async () => {
    const a = await executor();
    const first = await run('main');
    assert.equal(first.status, 'succeeded', first.status_reason);
    assert.equal(first.runner?.kind, 'cold');
    const saved = await waitForStatus(server.client, first.invocation_id, (i) => i.runner?.save !== undefined, 120_000);
    assert.equal(saved.runner?.save?.saved, true, saved.runner?.save?.why);
    await a.stop(); // A's runners (and their Bazel servers) are gone: only the snapshot remains

    await executor();
    const feature = await run('feature/x');
    assert.equal(feature.status, 'succeeded', feature.status_reason);
    assert.equal(feature.runner?.kind, 'snapshot', feature.runner?.reason);
    assert.equal(feature.runner?.snapshot?.level, 'default');
    assert.equal(feature.runner?.snapshot?.ref, 'main');
    assert.ok(feature.runner!.snapshot!.bytes_fetched > 0);
    const log = stripVTControlCharacters(await fullLog(server.client, feature.invocation_id));
    assert.match(log, /restored the default snapshot of main/);
    assert.match(log, /INFO: 0 processes\./, 'no action may run: everything comes from the restored action cache');
    const featureSaved = await waitForStatus(server.client, feature.invocation_id, (i) => i.runner?.save !== undefined, 120_000);
    assert.equal(featureSaved.runner?.save?.saved, true, featureSaved.runner?.save?.why);
    const { bytes_uploaded: up, bytes_total: total } = featureSaved.runner!.save!;
    // Only what the new Bazel server rewrote (action cache, logs) is new; the library's own test
    // measures the one-file-change ratio on a bigger tree.
    console.log(`re-save after restore uploaded ${up} of ${total} bytes (${((100 * up!) / total!).toFixed(1)}%)`);
    assert.ok(up! < total! / 2, `a re-save of a restored tree must reuse most chunks (uploaded ${up} of ${total})`);

    // Stop B (its warm runner goes with it) and start C: the feature branch now has its own key.
    await procs.at(-1)!.stop();
    await executor();
    const again = await run('feature/x');
    assert.equal(again.runner?.kind, 'snapshot', again.runner?.reason);
    assert.equal(again.runner?.snapshot?.level, 'branch');
  });

  test('a corrupt chunk makes the lookup fall back to the next key and says why', async () => {
    // Corrupt every stored chunk file of the server's store: branch and default snapshots both fail.
    const casRoot = join(serverDir, 'cache', 'cas');
    let corrupted = 0;
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else if (statSync(p).size > 1000) {
          writeFileSync(p, Buffer.alloc(statSync(p).size, 1));
          corrupted++;
        }
      }
    };
    walk(casRoot);
    assert.ok(corrupted > 0);
    await procs.at(-1)!.stop();
    await executor(); // a fresh executor: empty local chunk cache, so it must read the server's chunks
    const inv = await run('feature/x');
    assert.equal(inv.status, 'succeeded', inv.status_reason);
    assert.equal(inv.runner?.kind, 'cold');
    const attempts = inv.runner?.snapshot?.attempts ?? [];
    assert.ok(attempts.some((a) => a.outcome === 'unavailable'), JSON.stringify(attempts));
    assert.match(inv.runner!.reason, /no snapshot/);
  });

  test('a disk-full during save does not change the run\'s result; the failed save is recorded on the run', async (t) => {
    // A separate server whose blob store sits on a 300 KiB tmpfs: saving a snapshot runs out of space.
    const dir = tempDir('snap-full');
    execDirs.push(dir);
    mkdirSync(join(dir, 'cache'), { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=300k', 'tmpfs', join(dir, 'cache')]);
    } catch {
      t.skip('cannot mount a tmpfs here (needs root)');
      return;
    }
    const full = await startServerProc(dir, ['--port', '0']);
    procs.push(full.proc);
    const exDir = tempDir('snap-full-exec');
    execDirs.push(exDir);
    procs.push(await startExecutorProc(full.url, exDir, SNAP));
    try {
      const inv = await runAndWait(full.client, {
        repo: repo.url,
        branch: 'main',
        commit_sha: repo.sha,
        default_branch: 'main',
        platform_properties: { 'remote-cache': 'false' },
        steps: [{ run: 'head -c 2000000 /dev/urandom > big.bin && bazel build //lib:greet' }],
      });
      assert.equal(inv.status, 'succeeded', inv.status_reason);
      assert.equal(inv.exit_code, 0);
      const after = await waitForStatus(full.client, inv.invocation_id, (i) => i.runner?.save !== undefined, 120_000);
      assert.equal(after.runner?.save?.saved, false);
      assert.match(after.runner!.save!.why, /save failed \(the run's result is unaffected\)/);
      assert.equal(after.status, 'succeeded');
    } finally {
      await full.proc.stop();
      execFileSync('umount', ['-l', join(dir, 'cache')]);
    }
  });
});
