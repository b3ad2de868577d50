#!/usr/bin/env node
// Runs inside a runner after a Bazel build: reads the build's event file (newline-delimited JSON
// from --build_event_json_file) and copies the top-level outputs of successful targets, with
// their runfiles trees, into $HEARTH_ARTIFACTS_DIR/outputs/, plus a manifest the CLI reads.
// Usage: hearth-collect-outputs BEP_JSON_FILE
import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [bepFile] = process.argv.slice(2);
const artifacts = process.env.HEARTH_ARTIFACTS_DIR;
if (!bepFile || !artifacts) {
  console.error('usage: HEARTH_ARTIFACTS_DIR=DIR hearth-collect-outputs BEP_JSON_FILE');
  process.exit(2);
}
const outDir = join(artifacts, 'outputs');
const manifest = [];
const seen = new Set();
// With --remote_cache Bazel names outputs bytestream://…; the file is still on local disk under the exec root.
let execRoot = null;
for (const line of readFileSync(bepFile, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const ev = JSON.parse(line);
  if (ev.workspaceInfo?.localExecRoot) execRoot = ev.workspaceInfo.localExecRoot;
  const done = ev.completed;
  if (!ev.id?.targetCompleted || !done?.success) continue;
  for (const f of done.importantOutput ?? []) {
    if (!f.name || seen.has(f.name)) continue;
    const src = f.uri?.startsWith('file://') ? fileURLToPath(f.uri) : execRoot ? join(execRoot, ...(f.pathPrefix ?? []), f.name) : null;
    if (!src || !existsSync(src)) continue;
    seen.add(f.name);
    const dest = join(outDir, f.name);
    mkdirSync(dirname(dest), { recursive: true });
    cpSync(src, dest, { dereference: true });
    const executable = (statSync(src).mode & 0o111) !== 0;
    const runfiles = `${src}.runfiles`;
    const hasRunfiles = existsSync(runfiles);
    if (hasRunfiles) cpSync(runfiles, `${dest}.runfiles`, { recursive: true, dereference: true });
    manifest.push({ name: f.name, label: ev.id.targetCompleted.label, executable, runfiles: hasRunfiles });
  }
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(artifacts, 'outputs.json'), JSON.stringify(manifest, null, 2));
console.log(`hearth: collected ${manifest.length} output${manifest.length === 1 ? '' : 's'}: ${manifest.map((m) => m.name).join(', ')}`);
