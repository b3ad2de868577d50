/** Lifecycle of one invocation (a Remote Bazel run or a workflow action run). */
export const RUN_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out'] as const;
export type RunState = (typeof RUN_STATES)[number];

export const TERMINAL_STATES: ReadonlySet<RunState> = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);

export function isTerminal(state: RunState): boolean {
  return TERMINAL_STATES.has(state);
}

/**
 * Bazel exit codes that mean "the infrastructure broke", not "your build is wrong".
 * 36: local environmental issue, 37: internal error / crashed server, 38: transient remote error,
 * 39: remote cache evicted blobs. A runner that produced one of these is never recycled.
 */
export function isInfraExitCode(code: number): boolean {
  return code >= 36 && code <= 39;
}

/** Bazel's own exit code for an interrupted command; the CLI also uses it for Ctrl-C. */
export const EXIT_INTERRUPTED = 8;

const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9,
  SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGXCPU: 24, SIGXFSZ: 25,
};

/** Shell convention: a process killed by signal N reports 128+N. */
export function exitCodeForSignal(signal: string): number {
  const n = SIGNAL_NUMBERS[signal];
  return 128 + (n ?? 0);
}

/**
 * The exit code a CLI reports for a finished run: 8 (interrupted, like Bazel) for every cancelled
 * or timed-out run, whatever its killed step returned; otherwise the remote step's own code when
 * there is one, 37 (infrastructure) when the executor running it was lost, and 1 for other
 * failures before any step (bad patch, unknown commit).
 */
export function exitCodeForRun(status: RunState, exitCode: number | null, reason: string): number {
  if (status === 'cancelled' || status === 'timed_out') return EXIT_INTERRUPTED;
  if (exitCode !== null) return exitCode;
  if (status === 'succeeded') return 0;
  if (reason.startsWith('executor lost')) return 37;
  return 1;
}
