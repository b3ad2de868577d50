#!/usr/bin/env node
// Launcher. hearth is TypeScript run through tsx's loader, so there is no build step for daemons.
// `hearth remote` is the command people type all day, so it has a fast path: a plain-JS bundle
// (scripts/build.mjs, made by `npm install`), used only while it is newer than all its sources.
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

function freshRemoteBundle() {
  try {
    const bundleMs = statSync(join(dist, 'remote.mjs')).mtimeMs;
    const inputs = JSON.parse(readFileSync(join(dist, 'remote.inputs.json'), 'utf8'));
    return inputs.every((p) => statSync(join(dist, p)).mtimeMs <= bundleMs);
  } catch {
    return false;
  }
}

if (process.argv[2] === 'remote' && !process.env.HEARTH_NO_BUNDLE && freshRemoteBundle()) {
  const { runRemote } = await import(pathToFileURL(join(dist, 'remote.mjs')).href);
  process.exitCode = await runRemote(process.argv.slice(3), { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), env: process.env });
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
