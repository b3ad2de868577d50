/**
 * CLI: write a synthetic Bazel workspace for benchmarks.
 *
 *   node --import tsx bench/genWorkspace.ts [--packages N] [--seed S] OUT_DIR
 *
 * Prints a JSON summary (packages, targets, sourceFileToTouch, dir) on stdout.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { generateWorkspace } from "./workspaceGen.ts";

const USAGE = "usage: node --import tsx bench/genWorkspace.ts [--packages N] [--seed S] OUT_DIR";

function intArg(name: string, raw: string | undefined, dflt: number, min: number): number {
  if (raw === undefined) return dflt;
  if (!/^-?\d+$/.test(raw)) throw new Error(`--${name} must be an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min) throw new Error(`--${name} must be >= ${min}, got ${n}`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        packages: { type: "string", short: "n" },
        seed: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  let packages: number;
  let seed: number;
  try {
    packages = intArg("packages", values.packages, 150, 1);
    seed = intArg("seed", values.seed, 1, 0);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const dir = path.resolve(positionals[0]!);
  const result = await generateWorkspace(dir, { packages, seed });
  process.stdout.write(`${JSON.stringify({ dir, ...result }, null, 2)}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
