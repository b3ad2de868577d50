#!/usr/bin/env node
// Bundles the `hearth remote` code path into one plain-JS file, so the command developers run
// many times a day starts in ~0.2 s instead of paying for TypeScript transpilation at every start.
// Runs on `npm install` / `npm ci` (the root package's `prepare`). The launcher
// (packages/cli/bin/hearth.js) uses the bundle only while it is newer than every source it was
// built from, and otherwise runs the TypeScript directly: a stale bundle is never used.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'packages/cli/dist');
mkdirSync(outDir, { recursive: true });
const result = await build({
  entryPoints: [join(root, 'packages/cli/src/remote/remote.ts')],
  outfile: join(outDir, 'remote.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  metafile: true,
  logLevel: 'warning',
});
const inputs = Object.keys(result.metafile.inputs).map((p) => relative(outDir, join(root, p)));
writeFileSync(join(outDir, 'remote.inputs.json'), `${JSON.stringify(inputs, null, 1)}\n`);
console.log(`built packages/cli/dist/remote.mjs from ${inputs.length} sources`);
