import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';

/**
 * Which Bazel runners use: `--bazel`, else $HEARTH_BAZEL, else `bazelisk`/`bazel` on PATH, else
 * the Bazel that hearth's own setup installed from npm (@bazel/bazel-linux_x64).
 */
export function findBazel(explicit?: string): string {
  const chosen = explicit ?? process.env.HEARTH_BAZEL;
  if (chosen) {
    if (!isExecutable(chosen)) throw new Error(`Bazel binary ${chosen} is not an executable file`);
    return chosen;
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of ['bazelisk', 'bazel']) {
      const p = join(dir, name);
      if (dir && isExecutable(p)) return p;
    }
  }
  try {
    const require = createRequire(import.meta.url);
    const pkg = require.resolve('@bazel/bazel-linux_x64/package.json');
    const p = join(dirname(pkg), 'bazel-2.1.0-linux-x86_64');
    if (isExecutable(p)) return p;
  } catch {}
  throw new Error('no Bazel found: put bazel or bazelisk on PATH, set HEARTH_BAZEL, or pass --bazel PATH');
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
