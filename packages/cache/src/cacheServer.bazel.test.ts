// End-to-end: a real Bazel (2.1.0 from @bazel/bazel-linux_x64, offline) uses the cache server with
// --remote_cache. Build, `bazel clean`, build again → every action is a remote cache hit. Then one
// output blob is deleted from the CAS → exactly that action misses and runs again.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { LocalDiskStore } from '@hearth/blobstore';
import { FileActionCacheStore, startCacheServer } from './index.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BAZEL = path.join(repoRoot, 'node_modules/@bazel/bazel-linux_x64/bazel-2.1.0-linux-x86_64');
const BIG_BYTES = 9_000_000; // > 4 MiB: must go through ByteStream in both directions

/** A tiny offline workspace: C++ library + cc_test, sh_test, and a 9 MB genrule output. */
const WORKSPACE_FILES: Record<string, string> = {
  WORKSPACE: `workspace(name = "hearth_cache_e2e")
local_repository(name = "rules_cc", path = "offline/rules_cc")
local_repository(name = "rules_java", path = "offline/rules_java")
local_repository(name = "remote_coverage_tools", path = "offline/remote_coverage_tools")
`,
  'lib/BUILD': `cc_library(name = "add", srcs = ["add.cc"], hdrs = ["add.h"])
cc_test(name = "add_test", srcs = ["add_test.cc"], deps = [":add"])
sh_test(name = "sh_test", srcs = ["t.sh"])
genrule(name = "big", outs = ["big.bin"], cmd = "head -c ${BIG_BYTES} /dev/zero | tr '\\\\0' 'h' > $@")
sh_test(name = "big_test", srcs = ["big_test.sh"], data = [":big"])
`,
  'lib/add.h': 'int add(int a, int b);\n',
  'lib/add.cc': '#include "lib/add.h"\nint add(int a, int b) { return a + b; }\n',
  'lib/add_test.cc': '#include "lib/add.h"\nint main() { return add(2, 2) == 4 ? 0 : 1; }\n',
  'lib/t.sh': '#!/bin/bash\necho hi\n',
  'lib/big_test.sh': `#!/bin/bash\ntest "$(wc -c < lib/big.bin)" -eq ${BIG_BYTES}\n`,
  'offline/rules_cc/WORKSPACE': '',
  'offline/rules_cc/BUILD': '',
  'offline/rules_cc/cc/BUILD': 'exports_files(["defs.bzl"])\n',
  'offline/rules_cc/cc/defs.bzl': [
    'cc_binary', 'cc_library', 'cc_test', 'cc_import', 'cc_proto_library', 'fdo_profile',
    'fdo_prefetch_hints', 'cc_toolchain', 'cc_toolchain_suite', 'objc_library', 'objc_import',
  ].map((r) => `def ${r}(**kw): native.${r}(**kw)\n`).join(''),
  'offline/rules_java/WORKSPACE': '',
  'offline/rules_java/BUILD': '',
  'offline/rules_java/java/BUILD': 'exports_files(["defs.bzl"])\n',
  'offline/rules_java/java/defs.bzl': [
    'java_binary', 'java_library', 'java_import', 'java_test', 'java_toolchain', 'java_runtime',
    'java_plugin', 'java_proto_library', 'java_lite_proto_library', 'java_package_configuration',
  ].map((r) => `def ${r}(**kw): native.${r}(**kw)\n`).join(''),
  'offline/remote_coverage_tools/WORKSPACE': '',
  'offline/remote_coverage_tools/BUILD':
    'filegroup(name = "coverage_report_generator", srcs = [], visibility = ["//visibility:public"])\n' +
    'filegroup(name = "lcov_merger", srcs = [], visibility = ["//visibility:public"])\n',
};

interface RunResult {
  code: number | null;
  output: string;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** Parses Bazel's "INFO: 9 processes: 8 remote cache hit, 1 linux-sandbox." into {total, kinds}. */
function processSummary(output: string): { line: string; total: number; kinds: Record<string, number> } {
  const line = output.split('\n').findLast((l) => /INFO: \d+ process(es)?[:.]/.test(l));
  assert.ok(line, `no process summary in Bazel output:\n${output}`);
  const m = /INFO: (\d+) process(?:es)?(?:: (.*?))?\.?$/.exec(line.trim());
  assert.ok(m, line);
  const kinds: Record<string, number> = {};
  for (const part of (m[2] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const pm = /^(\d+) (.+)$/.exec(part);
    if (pm) kinds[pm[2]!] = Number(pm[1]);
  }
  return { line: line.trim(), total: Number(m[1]), kinds };
}

test('real Bazel gets remote cache hits for every action after `bazel clean`', { timeout: 180_000 }, async (t) => {
  if (!existsSync(BAZEL)) {
    t.skip(`Bazel binary not found at ${BAZEL}`);
    return;
  }
  const tmp = await mkdtemp(path.join(tmpdir(), 'hearth-cache-bazel-'));
  const ws = path.join(tmp, 'ws');
  for (const [rel, content] of Object.entries(WORKSPACE_FILES)) {
    const file = path.join(ws, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content, { mode: rel.endsWith('.sh') ? 0o755 : 0o644 });
  }
  const store = await LocalDiskStore.open({ rootDir: path.join(tmp, 'cas') });
  const server = await startCacheServer({ store, acStore: new FileActionCacheStore(path.join(tmp, 'ac')) });
  const env = { ...process.env, HOME: tmp };
  const startup = [`--output_user_root=${path.join(tmp, 'bazel-root')}`, '--nohome_rc', '--nosystem_rc'];
  const bazel = (...args: string[]) => run(BAZEL, [...startup, ...args], ws, env);
  const flags = [`--remote_cache=${server.address}`, '--color=no', '--curses=no', '--show_progress_rate_limit=5'];
  try {
    const first = await bazel('test', '//...', ...flags);
    assert.equal(first.code, 0, first.output);
    const cold = processSummary(first.output);
    t.diagnostic(`cold build:  ${cold.line}`);
    assert.equal(cold.kinds['remote cache hit'] ?? 0, 0);
    assert.ok(cold.total >= 5, cold.line);
    assert.ok(server.stats().casBytesUploaded >= BIG_BYTES, 'the 9 MB output was uploaded');

    assert.equal((await bazel('clean')).code, 0);
    const second = await bazel('test', '//...', ...flags);
    assert.equal(second.code, 0, second.output);
    const warm = processSummary(second.output);
    t.diagnostic(`after clean: ${warm.line}`);
    assert.equal(warm.kinds['remote cache hit'], warm.total, `every action should be a remote cache hit: ${warm.line}`);
    assert.equal(warm.total, cold.total);
    assert.doesNotMatch(second.output, /WARNING: .*(Remote Cache|remote cache)/i);
    const big = await readFile(path.join(ws, 'bazel-bin/lib/big.bin'));
    assert.equal(big.length, BIG_BYTES);
    assert.ok(big.equals(Buffer.alloc(BIG_BYTES, 'h')), 'the 9 MB output came back intact');

    // Evict the big output from the CAS: its action result must now be a miss (not a failed download).
    const bigDigest = { hash: createHash('sha256').update(big).digest('hex'), sizeBytes: BIG_BYTES };
    assert.equal(await store.delete(bigDigest), true);
    assert.equal((await bazel('clean')).code, 0);
    const third = await bazel('test', '//...', ...flags);
    assert.equal(third.code, 0, third.output);
    const partial = processSummary(third.output);
    t.diagnostic(`after evicting big.bin: ${partial.line}`);
    assert.equal(partial.kinds['remote cache hit'], partial.total - 1, partial.line);
    assert.ok(server.stats().acStaleMisses >= 1);
  } finally {
    await bazel('shutdown').catch(() => undefined);
    await server.close();
    await run('chmod', ['-R', 'u+w', tmp], tmp, env).catch(() => undefined); // Bazel leaves read-only dirs
    await rm(tmp, { recursive: true, force: true });
  }
});
