/**
 * Parses `hearth remote [hearth flags] [bazel startup flags] <command> [args] [-- run args]`.
 * Parsing stops at the Bazel command: everything after it is passed to Bazel untouched. Before
 * it, hearth's own flags are taken out and anything else starting with `-` is a Bazel startup
 * flag (those always use the `--name=value` / `--[no]name` form, so they never take a separate value).
 */

export interface RemoteArgs {
  server?: string;
  env: string[];
  timeout?: string;
  runnerExecProperties: string[];
  remoteRunHeaders: string[];
  os?: string;
  arch?: string;
  script?: string;
  runFromBranch?: string;
  runFromCommit?: string;
  fetchOutputs: boolean;
  runRemotely: boolean;
  /** Which git remote mirrors local state (default: chosen automatically). */
  remote?: string;
  help: boolean;
  startupFlags: string[];
  /** The Bazel command (`test`, `build`, `run`, …); absent with --script. */
  command?: string;
  /** Everything after the command, including `--` and what follows it. */
  commandArgs: string[];
}

export class UsageError extends Error {}

type FlagKind = 'string' | 'list' | 'bool';
const FLAGS: Record<string, { kind: FlagKind; key: keyof RemoteArgs }> = {
  server: { kind: 'string', key: 'server' },
  env: { kind: 'list', key: 'env' },
  timeout: { kind: 'string', key: 'timeout' },
  runner_exec_properties: { kind: 'list', key: 'runnerExecProperties' },
  remote_run_header: { kind: 'list', key: 'remoteRunHeaders' },
  os: { kind: 'string', key: 'os' },
  arch: { kind: 'string', key: 'arch' },
  script: { kind: 'string', key: 'script' },
  run_from_branch: { kind: 'string', key: 'runFromBranch' },
  run_from_commit: { kind: 'string', key: 'runFromCommit' },
  fetch_outputs: { kind: 'bool', key: 'fetchOutputs' },
  run_remotely: { kind: 'bool', key: 'runRemotely' },
  remote: { kind: 'string', key: 'remote' },
};

export function parseRemoteArgs(argv: readonly string[]): RemoteArgs {
  const out: RemoteArgs = {
    env: [],
    runnerExecProperties: [],
    remoteRunHeaders: [],
    fetchOutputs: false,
    runRemotely: true,
    help: false,
    startupFlags: [],
    commandArgs: [],
  };
  const rec = out as unknown as Record<string, unknown>;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      out.help = true;
      continue;
    }
    if (!arg.startsWith('-')) {
      out.command = arg;
      out.commandArgs = argv.slice(i + 1);
      break;
    }
    if (arg === '--') throw new UsageError('"--" before the Bazel command: put run arguments after the command, e.g. `hearth remote run //app -- arg`');
    const m = /^--(no)?([A-Za-z_][A-Za-z0-9_-]*)(?:=(.*))?$/s.exec(arg);
    const name = m?.[2]?.replace(/-/g, '_');
    const spec = name ? FLAGS[name] : undefined;
    if (!m || !spec) {
      out.startupFlags.push(arg); // a Bazel startup flag
      continue;
    }
    const negated = m[1] === 'no';
    let value = m[3];
    if (spec.kind === 'bool') {
      if (value === undefined) rec[spec.key] = !negated;
      else if (/^(true|1|yes)$/i.test(value)) rec[spec.key] = !negated;
      else if (/^(false|0|no)$/i.test(value)) rec[spec.key] = negated;
      else throw new UsageError(`--${name} takes true or false, got ${JSON.stringify(value)}`);
      continue;
    }
    if (negated) {
      out.startupFlags.push(arg);
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
    }
    if (spec.kind === 'list') (rec[spec.key] as string[]).push(value);
    else rec[spec.key] = value;
  }
  if (!out.help && !out.command && out.script === undefined) {
    throw new UsageError('missing Bazel command: e.g. `hearth remote test //...` (or pass --script)');
  }
  if (out.runFromBranch && out.runFromCommit) throw new UsageError('--run_from_branch and --run_from_commit exclude each other');
  return out;
}

/** Quotes one argument for bash so that it reaches Bazel as exactly these bytes. */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** `KEY=VALUE` list → object, with a clear error naming the flag. */
export function parseKeyValues(items: string[], flag: string, localEnv: NodeJS.ProcessEnv = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq === 0) throw new UsageError(`${flag} ${JSON.stringify(item)}: the name is empty`);
    if (eq < 0) {
      if (flag !== '--env') throw new UsageError(`${flag} takes NAME=VALUE, got ${JSON.stringify(item)}`);
      const v = localEnv[item];
      if (v === undefined) throw new UsageError(`--env ${item}: ${item} is not set in the local environment`);
      out[item] = v;
    } else {
      out[item.slice(0, eq)] = item.slice(eq + 1);
    }
  }
  return out;
}

export const REMOTE_HELP = `Usage: hearth remote [hearth flags] [bazel startup flags] <command> [bazel args] [-- run args]

Runs Bazel on a warm remote runner as if it ran here: your local git state (unpushed commits,
staged, unstaged and untracked files) is mirrored onto the runner, the output streams back live,
and hearth exits with Bazel's exit code. Ctrl-C cancels the remote run (exit 8, like Bazel).

Examples:
  hearth remote test //...
  hearth remote --env CC=clang build //app:server
  hearth remote --fetch_outputs build //app:hello        # outputs land in hearth-out/
  hearth remote --run_remotely=false run //app:hello -- --port 8080
  hearth remote --script 'bazel query //... | wc -l'

Hearth flags (before the Bazel command; --flag=value or --flag value):
  --server URL                  hearth server (default: $HEARTH_SERVER, \`git config hearth.server\`,
                                then http://127.0.0.1:8080)
  --env NAME=VALUE | NAME       environment variable for the remote run (NAME alone copies the
                                local value); repeatable
  --timeout DURATION            e.g. 30m, 1h; the run is stopped and reported timed_out after it
  --runner_exec_properties N=V  runner platform property; part of the runner key, so e.g.
                                salt=x gets a separate warm runner; repeatable
  --remote_run_header H         not part of the runner key, never shown: use for secrets, e.g.
                                x-hearth-env.TOKEN=abc (masked in logs); repeatable
  --os OS, --arch ARCH          runner platform (default: this machine's)
  --script BASH                 run this bash script instead of a Bazel command
  --run_from_branch BRANCH      run the remote branch as pushed (no local mirroring)
  --run_from_commit SHA         run the remote commit as pushed (no local mirroring)
  --remote NAME                 git remote to mirror against (default: the only one, the branch's
                                upstream, or origin)
  --fetch_outputs               after a successful build, download the top-level outputs into
                                hearth-out/
  --run_remotely=false          with \`run\`: build remotely, download the binary and its runfiles,
                                run it locally with the args after --
  -h, --help                    this help

Exit codes: Bazel's (0 ok, 1 build failed, 2 bad command line, 3 tests failed, 4 no tests,
8 interrupted, 36-39 infrastructure); 128+N when the remote step was killed by signal N;
37 when the executor running it was lost.
`;
