// Drift check: regenerating from proto/ must reproduce the committed src/gen byte for byte.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .sort();
}

test('generated code in src/gen matches proto/ (run scripts/gen.sh after editing protos)', async () => {
  const out = await mkdtemp(path.join(tmpdir(), 'hearth-cache-gen-'));
  try {
    await promisify(execFile)('bash', [path.join(pkgDir, 'scripts/gen.sh'), out]);
    const fresh = path.join(out, 'src/gen');
    const committed = path.join(pkgDir, 'src/gen');
    const files = await listFiles(fresh);
    assert.deepEqual(await listFiles(committed), files, 'same set of generated files');
    assert.ok(files.length > 0);
    for (const f of files) {
      const [a, b] = await Promise.all([readFile(path.join(fresh, f), 'utf8'), readFile(path.join(committed, f), 'utf8')]);
      assert.ok(a === b, `${f} is out of date: run packages/cache/scripts/gen.sh`);
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
