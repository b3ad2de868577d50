import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { ApiError, HearthClient } from '@hearth/api/client.ts';
import type { Invocation, RunRequest } from '@hearth/api/schemas.ts';
import { exitCodeForRun, isTerminal } from '@hearth/core/runState.ts';
import { captureGitState, GitStateError } from '../gitstate/gitState.ts';
import { parseKeyValues, parseRemoteArgs, REMOTE_HELP, type RemoteArgs, shellQuote, UsageError } from './args.ts';

export interface RemoteIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  cwd: string;
  env: NodeJS.ProcessEnv;
}

const say = (io: RemoteIo, text: string) => io.stderr.write(io.stderr.isTTY ? `\x1b[36mhearth:\x1b[0m ${text}\n` : `hearth: ${text}\n`);

/** Where to find the server: flag, env, `git config hearth.server`, then the local default. */
export function resolveServer(args: RemoteArgs, io: RemoteIo): string {
  if (args.server) return args.server;
  if (io.env.HEARTH_SERVER) return io.env.HEARTH_SERVER;
  try {
    const v = execFileSync('git', ['config', '--get', 'hearth.server'], { cwd: io.cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (v) return v;
  } catch {}
  return 'http://127.0.0.1:8080';
}

/** Runs `hearth remote …` and returns the process exit code. */
export async function runRemote(argv: string[], io: RemoteIo): Promise<number> {
  let args: RemoteArgs;
  try {
    args = parseRemoteArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`hearth remote: ${err.message}\n(run \`hearth remote --help\` for usage)\n`);
      return 2;
    }
    throw err;
  }
  if (args.help) {
    io.stdout.write(REMOTE_HELP);
    return 0;
  }
  const client = new HearthClient({ baseUrl: resolveServer(args, io) });
  const localRun = args.command === 'run' && !args.runRemotely;
  const fetchOutputs = args.fetchOutputs || localRun;
  if (args.script !== undefined && fetchOutputs) {
    io.stderr.write('hearth remote: --fetch_outputs and --run_remotely=false need a Bazel command, not --script\n');
    return 2;
  }

  // --- what to run
  const { steps, runArgs } = buildSteps(args, io, fetchOutputs, localRun);
  let req: RunRequest;
  let workspaceRoot: string;
  try {
    const git = await captureGitState(io.cwd, { remote: args.remote });
    workspaceRoot = join(git.repoRoot, git.relativeDir);
    const mirror = !args.runFromBranch && !args.runFromCommit;
    const platform = parseKeyValues(args.runnerExecProperties, '--runner_exec_properties');
    req = {
      repo: git.repoUrl,
      branch: args.runFromCommit ? undefined : (args.runFromBranch ?? git.branch),
      commit_sha: args.runFromBranch ? undefined : (args.runFromCommit ?? git.baseCommit),
      default_branch: git.defaultBranch,
      patches: mirror && git.patch ? [git.patch.toString('base64')] : [],
      steps,
      env: { ...parseKeyValues(args.env, '--env', io.env) },
      platform_properties: platform,
      remote_headers: args.remoteRunHeaders,
      workspace_dir: git.relativeDir,
      name: args.script !== undefined ? 'remote --script' : `remote ${[args.command, firstTarget(args.commandArgs)].filter(Boolean).join(' ')}`,
      async: true,
      ...(args.timeout ? { timeout: args.timeout } : {}),
      ...(args.os ? { os: args.os } : {}),
      ...(args.arch ? { arch: args.arch } : {}),
    };
  } catch (err) {
    if (err instanceof GitStateError || err instanceof UsageError) {
      io.stderr.write(`hearth remote: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  // --- submit
  let invocationId: string;
  try {
    const res = await client.run(req);
    invocationId = res.invocation_id;
    say(io, `streaming remote run: ${res.url ?? `${client.baseUrl}/invocations/${invocationId}`}`);
  } catch (err) {
    io.stderr.write(`hearth remote: ${err instanceof ApiError ? err.message : (err as Error).message}\n`);
    return err instanceof ApiError && err.httpStatus === 400 ? 2 : 37;
  }

  // --- Ctrl-C cancels the remote run; a second one stops waiting.
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(8);
    interrupted = true;
    say(io, 'cancelling the remote run (Ctrl-C again to stop waiting)');
    client.cancelInvocation(invocationId).catch((err) => say(io, `cancel failed: ${(err as Error).message}`));
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    const inv = await streamUntilDone(client, invocationId, io);
    if (interrupted) return 8;
    if (!inv) {
      say(io, `lost contact with the hearth server for ${SERVER_LOST_MS / 1000}s; the run may still be going: ${client.baseUrl}/invocations/${invocationId}`);
      return 37;
    }
    const code = exitCodeForRun(inv.status, inv.exit_code, inv.status_reason);
    if (inv.status !== 'succeeded') say(io, `remote run ${inv.status}: ${inv.status_reason}`);
    if (code !== 0 || !fetchOutputs) return code;
    const outputs = await downloadOutputs(client, invocationId, workspaceRoot, io);
    if (!localRun) return 0;
    return await runLocally(outputs, workspaceRoot, runArgs, io);
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

function firstTarget(args: string[]): string | undefined {
  return args.find((a) => !a.startsWith('-'));
}

/** The remote steps: the Bazel command as the user typed it (or their script), plus output collection. */
function buildSteps(args: RemoteArgs, io: RemoteIo, fetchOutputs: boolean, localRun: boolean): { steps: { run: string }[]; runArgs: string[] } {
  if (args.script !== undefined) return { steps: [{ run: args.script }], runArgs: [] };
  let bazelArgs = [...args.commandArgs];
  let runArgs: string[] = [];
  let command = args.command!;
  const dash = bazelArgs.indexOf('--');
  if (localRun) {
    // Build remotely, run here: the args after -- are for the local process.
    if (dash >= 0) {
      runArgs = bazelArgs.slice(dash + 1);
      bazelArgs = bazelArgs.slice(0, dash);
    }
    command = 'build';
  }
  const color = bazelArgs.some((a) => /^--(no)?color(=|$)/.test(a)) ? [] : [`--color=${io.stdout.isTTY ? 'yes' : 'no'}`];
  const bep = fetchOutputs ? ['--build_event_json_file=$TMPDIR/hearth-bep.json'] : [];
  const insertAt = bazelArgs.indexOf('--') >= 0 ? bazelArgs.indexOf('--') : bazelArgs.length;
  const finalArgs = [...bazelArgs.slice(0, insertAt), ...color, ...bazelArgs.slice(insertAt)];
  const line = ['bazel', ...args.startupFlags, command, ...finalArgs].map(shellQuote).join(' ') + (bep.length ? ` ${bep[0]!.replace('$TMPDIR', '"$TMPDIR"')}` : '');
  const steps = [{ run: line }];
  if (fetchOutputs) steps.push({ run: 'hearth-collect-outputs "$TMPDIR/hearth-bep.json"' });
  return { steps, runArgs };
}

/**
 * Follows the log until the run ends, resuming after dropped connections from the byte offset
 * already written, so nothing is printed twice or skipped.
 */
const SERVER_LOST_MS = 120_000;

/** Returns null when the server stayed unreachable for SERVER_LOST_MS. */
async function streamUntilDone(client: HearthClient, id: string, io: RemoteIo): Promise<Invocation | null> {
  let offset = 0;
  let failingSince: number | null = null;
  const strip = !io.stdout.isTTY;
  let pendingEscape = '';
  const decoder = new TextDecoder();
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const chunk of client.followLog(id, offset)) {
        offset += chunk.length;
        if (!strip) {
          io.stdout.write(chunk);
          continue;
        }
        // Strip colours for pipes and files; hold back an escape sequence split across chunks.
        let text = pendingEscape + decoder.decode(chunk, { stream: true });
        const cut = text.lastIndexOf('\x1b');
        pendingEscape = '';
        if (cut >= 0 && !/^\x1b\[[0-9;?]*[A-Za-z]/.test(text.slice(cut))) {
          pendingEscape = text.slice(cut);
          text = text.slice(0, cut);
        }
        io.stdout.write(stripVTControlCharacters(text));
      }
      const inv = await client.getInvocation(id);
      failingSince = null;
      if (isTerminal(inv.status)) {
        if (pendingEscape) io.stdout.write(stripVTControlCharacters(pendingEscape));
        return inv;
      }
    } catch (err) {
      failingSince ??= Date.now();
      if (Date.now() - failingSince > SERVER_LOST_MS) return null;
      if (attempt > 0 && attempt % 10 === 0) say(io, `lost the log stream (${(err as Error).message}); retrying`);
    }
    await new Promise((r) => setTimeout(r, Math.min(200 * (attempt + 1), 2000)));
  }
}

interface OutputEntry {
  name: string;
  label: string;
  executable: boolean;
  runfiles: boolean;
}

async function downloadOutputs(client: HearthClient, id: string, workspaceRoot: string, io: RemoteIo): Promise<OutputEntry[]> {
  const tar = await client.downloadArtifacts(id);
  if (!tar) {
    say(io, 'the remote run produced no outputs to fetch');
    return [];
  }
  const outDir = join(workspaceRoot, 'hearth-out');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const staging = join(outDir, '.incoming');
  mkdirSync(staging);
  execFileSync('tar', ['-x', '-C', staging], { input: tar, maxBuffer: 2 * 1024 ** 3 });
  const manifestFile = join(staging, 'outputs.json');
  const manifest: OutputEntry[] = existsSync(manifestFile) ? JSON.parse(readFileSync(manifestFile, 'utf8')) : [];
  // (No `mv dir/*`: with no outputs the glob is empty and mv fails.)
  const incoming = join(staging, 'outputs');
  if (existsSync(incoming)) for (const name of readdirSync(incoming)) renameSync(join(incoming, name), join(outDir, name));
  rmSync(staging, { recursive: true, force: true });
  say(io, `downloaded ${manifest.length} output${manifest.length === 1 ? '' : 's'} into ${outDir}:`);
  for (const m of manifest) io.stderr.write(`  hearth-out/${m.name}\n`);
  return manifest;
}

async function runLocally(outputs: OutputEntry[], workspaceRoot: string, runArgs: string[], io: RemoteIo): Promise<number> {
  const exes = outputs.filter((o) => o.executable);
  if (exes.length !== 1) {
    io.stderr.write(`hearth remote: \`run\` needs exactly one executable output, got ${exes.length}${exes.length ? `: ${exes.map((e) => e.label).join(', ')}` : ''}\n`);
    return 2;
  }
  const exe = exes[0]!;
  const bin = resolve(workspaceRoot, 'hearth-out', exe.name);
  // Like `bazel run`: start in the binary's runfiles tree (main repository) when it has one.
  let cwd = io.cwd;
  const runfiles = `${bin}.runfiles`;
  if (exe.runfiles && existsSync(runfiles)) {
    const wsName = /^@([^/]+)\/\//.exec(exe.label)?.[1] ?? readWorkspaceName(workspaceRoot);
    cwd = existsSync(join(runfiles, wsName)) ? join(runfiles, wsName) : runfiles;
  }
  say(io, `running ${exe.label} locally`);
  return await new Promise<number>((done) => {
    const child = spawn(bin, runArgs, { cwd, stdio: 'inherit', env: { ...io.env, ...(exe.runfiles ? { RUNFILES_DIR: runfiles } : {}) } });
    child.on('error', (err) => {
      io.stderr.write(`hearth remote: cannot run ${bin}: ${err.message}\n`);
      done(1);
    });
    child.on('exit', (code, signal) => done(code ?? 128 + (signal ? ({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 0 : 0)));
  });
}

function readWorkspaceName(root: string): string {
  try {
    const m = /workspace\(\s*name\s*=\s*["']([^"']+)["']/.exec(readFileSync(join(root, 'WORKSPACE'), 'utf8'));
    if (m) return m[1]!;
  } catch {}
  return '__main__';
}

