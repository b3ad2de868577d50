/**
 * Generator for synthetic Bazel workspaces used by the hearth benchmarks.
 *
 * `generateWorkspace(dir, { packages: N })` writes a WORKSPACE-style workspace with N C++ packages
 * (`pkg0000` … `pkgNNNN`). Every package has a `cc_library` of 2–3 sources that depends on 1–4
 * earlier packages (a deterministic DAG with a few "hub" packages that many others depend on), a
 * `cc_test`, and every ~10th package also has a `genrule` whose output is compiled into the library.
 *
 * The workspace builds fully offline with Bazel 2.1.0: the three external repositories Bazel
 * would otherwise download (`rules_cc`, `rules_java`, `remote_coverage_tools`) are replaced by tiny
 * local stub repositories under `tools/offline/` (see `writeOfflineStubs`).
 *
 * Output is a pure function of (packages, seed): running it twice gives byte-identical files.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

export interface GenerateOptions {
  /** Number of C++ packages to generate (>= 1). */
  packages: number;
  /** Seed for the deterministic PRNG that shapes the dependency graph. Default 1. */
  seed?: number;
}

export interface GenerateResult {
  packages: number;
  /** Number of Bazel targets written under `//...` (libraries + tests + genrules). */
  targets: number;
  /**
   * Workspace-relative path of a .cc file in the middle of the graph. A benchmark can simulate a
   * one-file change by editing it: the file ends with a `// hearth-bench-touch` line, and appending
   * a comment or changing the constant returned by `touch_value()` keeps it compiling and its tests
   * passing (no test checks that constant).
   */
  sourceFileToTouch: string;
}

/** The dependency graph the generator uses: `deps[i]` lists the (earlier) packages package i depends on. */
export interface WorkspacePlan {
  packages: number;
  seed: number;
  deps: number[][];
  /** Packages that carry a genrule. */
  genrulePackages: number[];
  /** Number of .cc sources (besides the header) of each package's library: 2 or 3. */
  sourceCounts: number[];
  /** Index of the package whose source is `sourceFileToTouch`. */
  touchPackage: number;
}

const DEFAULT_SEED = 1;

/** mulberry32: tiny deterministic 32-bit PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pkgName(i: number): string {
  return `pkg${String(i).padStart(4, "0")}`;
}

/**
 * Plans the dependency DAG. Package i (i >= 1) depends on 1–4 distinct packages with smaller indices,
 * so the graph is acyclic by construction. About half of the picks go to "hub" packages (every
 * ~12th package, plus pkg0000), the rest are biased towards recent packages, which gives a realistic
 * mix of long chains and wide fan-in.
 */
export function planWorkspace(opts: GenerateOptions): WorkspacePlan {
  const n = opts.packages;
  if (!Number.isInteger(n) || n < 1) throw new Error(`packages must be a positive integer, got ${n}`);
  const seed = opts.seed ?? DEFAULT_SEED;
  const rand = prng(seed);
  const pick = (k: number): number => Math.floor(rand() * k);

  const hubs: number[] = [];
  const deps: number[][] = [];
  const sourceCounts: number[] = [];
  const genrulePackages: number[] = [];
  for (let i = 0; i < n; i++) {
    sourceCounts.push(2 + pick(2));
    if (i % 10 === 5) genrulePackages.push(i);
    const mine = new Set<number>();
    if (i > 0) {
      const want = Math.min(i, 1 + pick(4));
      while (mine.size < want) {
        const r = rand();
        let d: number;
        if (r < 0.45 && hubs.length > 0) {
          d = hubs[pick(hubs.length)]!;
        } else if (r < 0.8) {
          // a recent package: within the last 8
          d = i - 1 - pick(Math.min(i, 8));
        } else {
          d = pick(i);
        }
        mine.add(d);
      }
    }
    deps.push([...mine].sort((a, b) => a - b));
    if (i === 0 || i % 12 === 3) hubs.push(i);
  }
  return { packages: n, seed, deps, genrulePackages, sourceCounts, touchPackage: pickTouchPackage(deps, hubs) };
}

/** Number of packages that depend on `t`, directly or transitively. */
export function transitiveDependents(deps: number[][], t: number): number {
  const reached = new Set([t]);
  for (let i = t + 1; i < deps.length; i++) if ((deps[i] ?? []).some((d) => reached.has(d))) reached.add(i);
  return reached.size - 1;
}

/**
 * The touched file sits mid-graph, but not in a hub and not in a leaf: a one-file edit should
 * invalidate a realistic slice of the graph (a few percent of the packages), not most of it and
 * not nothing. Scans outwards from the middle package.
 */
function pickTouchPackage(deps: number[][], hubs: number[]): number {
  const n = deps.length;
  const mid = Math.floor(n / 2);
  const hubSet = new Set(hubs);
  const want = Math.max(1, Math.floor(n / 20));
  let best = mid;
  let bestCount = -1;
  for (let off = 0; off <= n; off++) {
    for (const c of off === 0 ? [mid] : [mid + off, mid - off]) {
      if (c < 0 || c >= n || hubSet.has(c)) continue;
      const count = transitiveDependents(deps, c);
      if (count >= want) return c;
      if (count > bestCount) {
        best = c;
        bestCount = count;
      }
    }
  }
  return best;
}

/** Contents of the three offline stub repositories, keyed by path relative to `tools/offline/`. */
export function offlineStubFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  const stubRepo = (repo: string, pkg: string, rules: string[]): void => {
    files[`${repo}/WORKSPACE`] = `workspace(name = "${repo}")\n`;
    files[`${repo}/BUILD`] = "";
    files[`${repo}/${pkg}/BUILD`] = `exports_files(["defs.bzl"])\n`;
    files[`${repo}/${pkg}/defs.bzl`] =
      `# Offline stub: forwards to the native rules built into Bazel.\n` +
      rules.map((r) => `def ${r}(**kw): native.${r}(**kw)\n`).join("");
  };
  stubRepo("rules_cc", "cc", [
    "cc_binary",
    "cc_library",
    "cc_test",
    "cc_import",
    "cc_proto_library",
    "fdo_profile",
    "fdo_prefetch_hints",
    "cc_toolchain",
    "cc_toolchain_suite",
    "objc_library",
    "objc_import",
  ]);
  stubRepo("rules_java", "java", [
    "java_binary",
    "java_library",
    "java_import",
    "java_test",
    "java_toolchain",
    "java_runtime",
    "java_plugin",
    "java_proto_library",
    "java_lite_proto_library",
    "java_package_configuration",
  ]);
  files["remote_coverage_tools/WORKSPACE"] = `workspace(name = "remote_coverage_tools")\n`;
  files["remote_coverage_tools/BUILD"] =
    `package(default_visibility = ["//visibility:public"])\n\n` +
    `filegroup(name = "coverage_report_generator", srcs = [])\n\n` +
    `filegroup(name = "lcov_merger", srcs = [])\n`;
  return files;
}

/** WORKSPACE lines that point Bazel at the offline stubs in `tools/offline/`. */
export function offlineWorkspaceStanza(): string {
  return (
    `# Offline stubs for the repositories Bazel 2.x would otherwise download (see tools/offline/).\n` +
    ["rules_cc", "rules_java", "remote_coverage_tools"]
      .map((r) => `local_repository(\n    name = "${r}",\n    path = "tools/offline/${r}",\n)\n`)
      .join("\n")
  );
}

/** Writes the three offline stub repositories under `<dir>/tools/offline/`. */
export async function writeOfflineStubs(dir: string): Promise<void> {
  for (const [rel, text] of Object.entries(offlineStubFiles())) {
    await writeText(path.join(dir, "tools", "offline", rel), text);
  }
}

async function writeText(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}

/** Renders every file of the workspace (path relative to the workspace root → contents). */
export function renderWorkspace(plan: WorkspacePlan): Map<string, string> {
  const files = new Map<string, string>();
  files.set(
    "WORKSPACE",
    `workspace(name = "hearth_bench")\n\n` +
      `# Generated by bench/workspaceGen.ts: ${plan.packages} packages, seed ${plan.seed}.\n\n` +
      offlineWorkspaceStanza(),
  );
  files.set("BUILD", "");
  files.set(".bazelrc", "build --color=no --curses=no\ntest --test_output=errors\n");
  for (const [rel, text] of Object.entries(offlineStubFiles())) files.set(`tools/offline/${rel}`, text);

  const genrules = new Set(plan.genrulePackages);
  const values = expectedValues(plan);
  for (let i = 0; i < plan.packages; i++) {
    const name = pkgName(i);
    const deps = plan.deps[i] ?? [];
    const nsrc = plan.sourceCounts[i] ?? 2;
    const hasGen = genrules.has(i);
    const touch = i === plan.touchPackage;
    const srcs = Array.from({ length: nsrc }, (_, k) => `${name}_${k}.cc`);

    // BUILD
    let build = `load("@rules_cc//cc:defs.bzl", "cc_library", "cc_test")\n\n`;
    if (hasGen) {
      build +=
        `genrule(\n` +
        `    name = "${name}_gen",\n` +
        `    outs = ["${name}_gen.cc"],\n` +
        `    cmd = "printf '%s\\\\n' '// generated' 'int ${name}_generated() { return ${1000 + i}; }' > $@",\n` +
        `)\n\n`;
    }
    const libSrcs = hasGen ? [...srcs, `:${name}_gen`] : srcs;
    build +=
      `cc_library(\n` +
      `    name = "${name}",\n` +
      `    srcs = [${libSrcs.map((s) => `"${s}"`).join(", ")}],\n` +
      `    hdrs = ["${name}.h"],\n` +
      `    visibility = ["//visibility:public"],\n` +
      `    deps = [${deps.map((d) => `"//${pkgName(d)}"`).join(", ")}],\n` +
      `)\n\n` +
      `cc_test(\n` +
      `    name = "${name}_test",\n` +
      `    size = "small",\n` +
      `    srcs = ["${name}_test.cc"],\n` +
      `    deps = [":${name}"],\n` +
      `)\n`;
    files.set(`${name}/BUILD`, build);

    // Header.
    const guard = `${name.toUpperCase()}_H_`;
    let hdr = `#ifndef ${guard}\n#define ${guard}\n\n`;
    for (let k = 0; k < nsrc; k++) hdr += `int ${name}_part${k}(int x);\n`;
    hdr += `// Checksum of this package and all its transitive deps; equals ${name}_expected().\n`;
    hdr += `long ${name}_value();\nlong ${name}_expected();\n`;
    if (touch) hdr += `int ${name}_touch_value();\n`;
    hdr += `\n#endif  // ${guard}\n`;
    files.set(`${name}/${name}.h`, hdr);

    // Source 0: the package's value combines its parts and its deps' values.
    // Expected value is computed here in TS and baked in, so the test really checks the deps' code.
    const expected = values[i]!;
    let s0 = `#include "${name}/${name}.h"\n`;
    for (const d of deps) s0 += `#include "${pkgName(d)}/${pkgName(d)}.h"\n`;
    if (hasGen) s0 += `\nint ${name}_generated();\n`;
    s0 += `\nint ${name}_part0(int x) { return x * 3 + ${i % 97}; }\n\n`;
    s0 += `long ${name}_value() {\n  long v = ${i + 1};\n`;
    for (let k = 0; k < nsrc; k++) s0 += `  v += ${name}_part${k}(${k + 1});\n`;
    if (hasGen) s0 += `  v += ${name}_generated();\n`;
    for (const d of deps) s0 += `  v = (v * 31 + ${pkgName(d)}_value()) % 1000003;\n`;
    s0 += `  return v;\n}\n\nlong ${name}_expected() { return ${expected}L; }\n`;
    files.set(`${name}/${srcs[0]}`, s0);

    for (let k = 1; k < nsrc; k++) {
      let sk = `#include "${name}/${name}.h"\n\n`;
      sk += `int ${name}_part${k}(int x) {\n  int acc = 0;\n  for (int j = 0; j < x + ${k}; ++j) acc += j * ${k + 1};\n  return acc;\n}\n`;
      if (touch && k === 1) {
        sk += `\n// Benchmarks may change this constant or append comments to simulate a one-file edit.\n`;
        sk += `int ${name}_touch_value() { return 42; }\n// hearth-bench-touch\n`;
      }
      files.set(`${name}/${srcs[k]}`, sk);
    }

    // Test.
    let t = `#include <cstdio>\n\n#include "${name}/${name}.h"\n\nint main() {\n`;
    t += `  long got = ${name}_value();\n  long want = ${name}_expected();\n`;
    t += `  if (got != want) {\n    std::printf("${name}: got %ld want %ld\\n", got, want);\n    return 1;\n  }\n`;
    if (touch) t += `  std::printf("touch_value=%d\\n", ${name}_touch_value());\n`;
    t += `  std::printf("${name}: ok (%ld)\\n", got);\n  return 0;\n}\n`;
    files.set(`${name}/${name}_test.cc`, t);
  }
  return files;
}

/**
 * Mirrors the C++ arithmetic of every `<pkg>_value()`; deps always have smaller indices, so one
 * forward pass suffices. All intermediate values stay far below 2^53 (and below 2^63 in C++).
 */
export function expectedValues(plan: WorkspacePlan): number[] {
  const genrules = new Set(plan.genrulePackages);
  const values: number[] = [];
  for (let i = 0; i < plan.packages; i++) {
    const nsrc = plan.sourceCounts[i] ?? 2;
    let v = i + 1;
    for (let k = 0; k < nsrc; k++) {
      const x = k + 1;
      if (k === 0) {
        v += x * 3 + (i % 97);
      } else {
        let acc = 0;
        for (let j = 0; j < x + k; ++j) acc += j * (k + 1);
        v += acc;
      }
    }
    if (genrules.has(i)) v += 1000 + i;
    for (const d of plan.deps[i] ?? []) v = (v * 31 + values[d]!) % 1000003;
    values.push(v);
  }
  return values;
}

/**
 * Writes the workspace into `dir` (created if missing; existing files with the same names are
 * overwritten, others are left alone — pass an empty directory for a clean workspace).
 */
export async function generateWorkspace(dir: string, opts: GenerateOptions): Promise<GenerateResult> {
  const plan = planWorkspace(opts);
  const files = renderWorkspace(plan);
  for (const [rel, text] of files) await writeText(path.join(dir, rel), text);
  const touchName = pkgName(plan.touchPackage);
  return {
    packages: plan.packages,
    targets: plan.packages * 2 + plan.genrulePackages.length,
    sourceFileToTouch: `${touchName}/${touchName}_1.cc`,
  };
}
