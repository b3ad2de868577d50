import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { generateWorkspace, pkgName, planWorkspace } from "./workspaceGen.ts";

const execFileP = promisify(execFile);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..");
const BAZEL = path.join(REPO, "node_modules/@bazel/bazel-linux_x64/bazel-2.1.0-linux-x86_64");

const tmpDirs: string[] = [];
async function tmpDir(prefix: string): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), `hearth-${prefix}-`));
  tmpDirs.push(d);
  return d;
}

after(async () => {
  for (const d of tmpDirs) {
    // Bazel leaves read-only files and directories in its output root.
    await execFileP("chmod", ["-R", "u+w", d]).catch(() => {});
    await rm(d, { recursive: true, force: true });
  }
});

async function listFiles(root: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(root, r)));
    else out.push(r);
  }
  return out.sort();
}

async function snapshot(root: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const f of await listFiles(root)) m.set(f, await readFile(path.join(root, f), "utf8"));
  return m;
}

/** Reads the `//pkgNNNN` deps of every generated package from its BUILD file. */
async function buildGraph(root: string): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  for (const e of await readdir(root, { withFileTypes: true })) {
    if (!e.isDirectory() || !/^pkg\d{4}$/.test(e.name)) continue;
    const build = await readFile(path.join(root, e.name, "BUILD"), "utf8");
    const lib = /cc_library\(([\s\S]*?)\n\)/.exec(build);
    assert.ok(lib, `${e.name}/BUILD has a cc_library`);
    const depsAttr = /deps = \[([^\]]*)\]/.exec(lib[1]!);
    assert.ok(depsAttr, `${e.name}: cc_library has deps`);
    const deps = [...depsAttr[1]!.matchAll(/"\/\/(pkg\d{4})"/g)].map((m) => m[1]!);
    graph.set(e.name, deps);
  }
  return graph;
}

describe("generateWorkspace", () => {
  test("is deterministic for a seed, and the seed matters", async () => {
    const a = await tmpDir("gen-a");
    const b = await tmpDir("gen-b");
    const c = await tmpDir("gen-c");
    const ra = await generateWorkspace(a, { packages: 5, seed: 7 });
    const rb = await generateWorkspace(b, { packages: 5, seed: 7 });
    await generateWorkspace(c, { packages: 5, seed: 8 });
    assert.deepEqual(ra, rb);
    const sa = await snapshot(a);
    const sb = await snapshot(b);
    assert.deepEqual([...sa.keys()], [...sb.keys()]);
    assert.deepEqual(sa, sb);
    assert.notDeepEqual(await snapshot(c), sa);

    assert.equal(ra.packages, 5);
    for (const f of ["WORKSPACE", "BUILD", "tools/offline/rules_cc/cc/defs.bzl",
      "tools/offline/rules_java/java/defs.bzl", "tools/offline/remote_coverage_tools/BUILD"]) {
      assert.ok(sa.has(f), `${f} is generated`);
    }
    for (let i = 0; i < 5; i++) assert.ok(sa.has(`${pkgName(i)}/BUILD`));
    assert.ok(sa.has(ra.sourceFileToTouch), "sourceFileToTouch exists");
    assert.match(ra.sourceFileToTouch, /^pkg\d{4}\/pkg\d{4}_\d\.cc$/);
    // targets = one library + one test per package + the genrules
    const genrules = [...sa.entries()].filter(([f, t]) => f.endsWith("/BUILD") && t.includes("genrule(")).length;
    assert.equal(ra.targets, 5 * 2 + genrules);
  });

  test("the dependency graph is a DAG over existing packages, with hubs", async () => {
    for (const packages of [5, 150]) {
      const dir = await tmpDir("gen-dag");
      await generateWorkspace(dir, { packages, seed: 1 });
      const graph = await buildGraph(dir);
      assert.equal(graph.size, packages);
      for (const [pkg, deps] of graph) {
        assert.equal(new Set(deps).size, deps.length, `${pkg}: no duplicate deps`);
        for (const d of deps) assert.ok(graph.has(d), `${pkg} depends on missing package ${d}`);
        if (pkg !== "pkg0000") {
          assert.ok(deps.length >= 1 && deps.length <= 4, `${pkg} has 1-4 deps, got ${deps.length}`);
        }
      }
      // Kahn's algorithm: every node gets removed iff there is no cycle.
      const indeg = new Map([...graph.keys()].map((k) => [k, graph.get(k)!.length]));
      const dependents = new Map<string, string[]>();
      for (const [pkg, deps] of graph) for (const d of deps) dependents.set(d, [...(dependents.get(d) ?? []), pkg]);
      const ready = [...indeg].filter(([, n]) => n === 0).map(([k]) => k);
      let removed = 0;
      while (ready.length > 0) {
        const k = ready.pop()!;
        removed++;
        for (const r of dependents.get(k) ?? []) {
          const n = indeg.get(r)! - 1;
          indeg.set(r, n);
          if (n === 0) ready.push(r);
        }
      }
      assert.equal(removed, packages, "dependency graph has a cycle");
      if (packages === 150) {
        const fanIn = [...dependents.values()].map((v) => v.length).sort((x, y) => y - x);
        assert.ok((fanIn[0] ?? 0) >= 10, `expected hub packages, max fan-in ${fanIn[0]}`);
      }
    }
  });

  test("the planned graph agrees with the BUILD files", async () => {
    const dir = await tmpDir("gen-plan");
    await generateWorkspace(dir, { packages: 20, seed: 3 });
    const graph = await buildGraph(dir);
    const plan = planWorkspace({ packages: 20, seed: 3 });
    for (let i = 0; i < 20; i++) assert.deepEqual(graph.get(pkgName(i)), plan.deps[i]!.map(pkgName));
  });

  test("rejects a non-positive package count", async () => {
    const dir = await tmpDir("gen-bad");
    await assert.rejects(generateWorkspace(dir, { packages: 0 }), /positive integer/);
  });

  test("CLI writes the workspace and prints a JSON summary", async () => {
    const dir = await tmpDir("gen-cli");
    const out = path.join(dir, "ws");
    const { stdout } = await execFileP(
      process.execPath,
      ["--import", "tsx", path.join(HERE, "genWorkspace.ts"), "--packages", "4", "--seed", "2", out],
      { cwd: REPO },
    );
    const summary = JSON.parse(stdout) as { dir: string; packages: number; sourceFileToTouch: string };
    assert.equal(summary.dir, out);
    assert.equal(summary.packages, 4);
    assert.ok(existsSync(path.join(out, summary.sourceFileToTouch)));
    const expected = await tmpDir("gen-cli-expected");
    await generateWorkspace(expected, { packages: 4, seed: 2 });
    assert.deepEqual(await snapshot(out), await snapshot(expected));
  });
});

describe("generated workspace under real Bazel 2.1.0 (offline)", { skip: !existsSync(BAZEL) && "bazel binary not installed" }, () => {
  let root = "";
  let ws = "";
  let bazelEnv: NodeJS.ProcessEnv = {};
  let started = false;

  async function bazel(...args: string[]): Promise<{ code: number; out: string }> {
    const startup = [`--output_user_root=${path.join(root, "out")}`, "--max_idle_secs=120"];
    try {
      const { stdout, stderr } = await execFileP(BAZEL, [...startup, ...args], {
        cwd: ws,
        env: bazelEnv,
        maxBuffer: 64 * 1024 * 1024,
      });
      return { code: 0, out: stdout + stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === "number" ? e.code : -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
    }
  }

  before(async () => {
    root = await tmpDir("bazel");
    ws = path.join(root, "ws");
    const home = path.join(root, "home");
    await execFileP("mkdir", ["-p", home]);
    bazelEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, TMPDIR: os.tmpdir() };
  });

  after(async () => {
    if (started) await bazel("shutdown");
  });

  test("bazel test //... passes on a 3-package workspace, also after touching sourceFileToTouch", { timeout: 300_000 }, async () => {
    const gen = await generateWorkspace(ws, { packages: 3, seed: 1 });
    started = true;
    const cold = await bazel("test", "//...");
    assert.equal(cold.code, 0, cold.out);
    assert.match(cold.out, /Executed 3 out of 3 tests: 3 tests pass/);

    // Simulated one-file edit: change the touch constant and append a comment.
    const touch = path.join(ws, gen.sourceFileToTouch);
    const src = await readFile(touch, "utf8");
    assert.match(src, /return 42;/);
    await writeFile(touch, src.replace("return 42;", "return 7;"));
    await appendFile(touch, "// touched by workspaceGen.test.ts\n");
    const edited = await bazel("test", "//...");
    assert.equal(edited.code, 0, edited.out);
    assert.match(edited.out, /3 tests pass/);
    assert.doesNotMatch(edited.out, /Executed 0 out of 3/, "the edit must invalidate at least one test");
  });
});
