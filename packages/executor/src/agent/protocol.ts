/**
 * The in-runner agent protocol: newline-delimited JSON over the agent's stdin/stdout. The executor
 * never spawns a runner's processes itself; it asks the agent, so the same protocol works when the
 * agent runs inside a sandbox or a microVM (over a virtio-serial or vsock stream instead of pipes).
 */

export type AgentRequest =
  | {
      op: 'exec';
      id: number;
      argv: string[];
      cwd: string;
      /** The complete environment of the process, passed byte-exact (never through a shell). */
      env: Record<string, string>;
    }
  /** Signals the whole process group of exec `id` (steps run as group leaders). */
  | { op: 'signal'; id: number; signal: NodeJS.Signals }
  /** Answers with `alive`: whether any process of exec `id`'s group is still running. */
  | { op: 'probe'; id: number; req: number }
  | { op: 'ping'; req: number };

export type AgentEvent =
  | { ev: 'ready'; pid: number }
  | { ev: 'out'; id: number; data: string /* base64 */ }
  | { ev: 'exit'; id: number; code: number | null; signal: string | null; error?: string }
  | { ev: 'probe'; req: number; alive: boolean }
  | { ev: 'pong'; req: number };
