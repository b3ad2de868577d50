import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { AgentClient } from './agent/agentClient.ts';

/**
 * How a runner is isolated from the host. Each backend starts the in-runner agent in its own
 * way; everything after that speaks the agent protocol, whatever the isolation.
 * `bare` runs the agent as a plain child process (runner = a directory on the host).
 * Later: `sandbox` (bubblewrap, fixed in-runner paths) and `microvm` (QEMU).
 */
export interface Isolation {
  readonly name: 'bare' | 'sandbox' | 'microvm';
  startAgent(runnerDir: string): Promise<AgentClient>;
  /**
   * Where the runner sees its own directory. Bazel bakes absolute paths into its output base, so
   * isolations that can give every runner the same path make warm state portable (snapshots).
   */
  runnerPathInside(runnerDir: string): string;
  /** Where the runner sees the executor's shared Bazel output_user_root. */
  bazelUserRootInside(hostPath: string): string;
  /** Where the runner sees the executor's bin/ (`bazel`, helpers): on PATH, which Bazel puts in action keys. */
  binDirInside(hostPath: string): string;
}

const agentMain = fileURLToPath(new URL('./agent/main.ts', import.meta.url));
const require = createRequire(import.meta.url);

/** `node --import <tsx> agent/main.ts`: the agent is TypeScript run through tsx like the rest of hearth. */
export function agentCommand(): string[] {
  const tsxLoader = require.resolve('tsx');
  return [process.execPath, '--import', pathToImportSpecifier(tsxLoader), agentMain];
}

function pathToImportSpecifier(p: string): string {
  return new URL(`file://${p}`).href;
}

export class BareIsolation implements Isolation {
  readonly name = 'bare' as const;
  runnerPathInside(runnerDir: string): string {
    return runnerDir;
  }
  bazelUserRootInside(hostPath: string): string {
    return hostPath;
  }
  binDirInside(hostPath: string): string {
    return hostPath;
  }
  async startAgent(runnerDir: string): Promise<AgentClient> {
    const [cmd, ...args] = agentCommand();
    const proc = spawn(cmd!, args, { cwd: runnerDir, stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env } });
    const client = new AgentClient(proc);
    await client.ready;
    return client;
  }
}

/** Fixed in-runner paths: the same on every executor, so a restored output base finds its files. */
export const SANDBOX_RUNNER_PATH = '/tmp/hearth-runner';
export const SANDBOX_BAZEL_USER_ROOT = '/tmp/hearth-bazel-user-root';
/** Bazel hashes PATH into action keys (without --incompatible_strict_action_env): it must not vary by executor. */
export const SANDBOX_BIN_DIR = '/tmp/hearth-bin';

/**
 * bubblewrap: the runner gets a mount namespace in which its directory is always at
 * SANDBOX_RUNNER_PATH and the shared Bazel user root at SANDBOX_BAZEL_USER_ROOT. The rest of the
 * host file system is visible as is (toolchains, caches); processes stay in the host's pid
 * namespace so the executor can still find and stop a runner's Bazel server.
 */
export class SandboxIsolation implements Isolation {
  readonly name = 'sandbox' as const;
  constructor(
    private readonly bazelUserRoot: string,
    private readonly binDir: string,
    private readonly bwrap = 'bwrap',
  ) {}

  runnerPathInside(): string {
    return SANDBOX_RUNNER_PATH;
  }
  bazelUserRootInside(): string {
    return SANDBOX_BAZEL_USER_ROOT;
  }
  binDirInside(): string {
    return SANDBOX_BIN_DIR;
  }

  async startAgent(runnerDir: string): Promise<AgentClient> {
    // Mount points must exist on the host; they stay empty there.
    await mkdir(SANDBOX_RUNNER_PATH, { recursive: true });
    await mkdir(SANDBOX_BAZEL_USER_ROOT, { recursive: true });
    await mkdir(SANDBOX_BIN_DIR, { recursive: true });
    await mkdir(this.bazelUserRoot, { recursive: true });
    const args = [
      '--die-with-parent',
      '--dev-bind', '/', '/',
      '--bind', runnerDir, SANDBOX_RUNNER_PATH,
      '--bind', this.bazelUserRoot, SANDBOX_BAZEL_USER_ROOT,
      '--ro-bind', this.binDir, SANDBOX_BIN_DIR,
      '--chdir', SANDBOX_RUNNER_PATH,
      '--',
      ...agentCommand(),
    ];
    const proc = spawn(this.bwrap, args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env } });
    const client = new AgentClient(proc);
    try {
      await client.ready;
    } catch (err) {
      throw new Error(`cannot start a bubblewrap sandbox (is bwrap installed? apt-get install bubblewrap): ${(err as Error).message}`);
    }
    return client;
  }
}
