/**
 * hearth's in-runner agent. Started by the executor inside a runner (bare, sandbox or VM); runs
 * the processes the executor asks for, each as the leader of its own process group, and streams
 * their output back. When its stdin closes (the executor died), it kills every group it started:
 * nothing of a run outlives the executor that owns it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { AgentEvent, AgentRequest } from './protocol.ts';

const children = new Map<number, ChildProcess>();
/** Process group ids of every exec, kept after exit so probes and cleanup can still reach stragglers. */
const groups = new Map<number, number>();

function send(ev: AgentEvent): void {
  process.stdout.write(`${JSON.stringify(ev)}\n`);
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function handle(req: AgentRequest): void {
  switch (req.op) {
    case 'exec': {
      let child: ChildProcess;
      try {
        child = spawn(req.argv[0]!, req.argv.slice(1), {
          cwd: req.cwd,
          env: req.env,
          detached: true, // own process group, so cancel reaches every descendant
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (err) {
        send({ ev: 'exit', id: req.id, code: null, signal: null, error: (err as Error).message });
        return;
      }
      children.set(req.id, child);
      if (child.pid) groups.set(req.id, child.pid);
      const forward = (chunk: Buffer) => send({ ev: 'out', id: req.id, data: chunk.toString('base64') });
      child.stdout!.on('data', forward);
      child.stderr!.on('data', forward);
      let spawnError: string | undefined;
      child.on('error', (err) => {
        spawnError = err.message;
      });
      // 'close' fires after both pipes drained, so every output byte is sent before the exit.
      child.on('close', (code, signal) => {
        children.delete(req.id);
        send({ ev: 'exit', id: req.id, code, signal, ...(spawnError ? { error: spawnError } : {}) });
      });
      return;
    }
    case 'signal': {
      const pgid = groups.get(req.id);
      if (pgid) {
        try {
          process.kill(-pgid, req.signal);
        } catch {
          // group already gone
        }
      }
      return;
    }
    case 'probe': {
      const pgid = groups.get(req.id);
      send({ ev: 'probe', req: req.req, alive: pgid !== undefined && groupAlive(pgid) });
      return;
    }
    case 'ping':
      send({ ev: 'pong', req: req.req });
      return;
  }
}

function killAll(): void {
  for (const pgid of groups.values()) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {}
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (!line.trim()) return;
  try {
    handle(JSON.parse(line) as AgentRequest);
  } catch (err) {
    process.stderr.write(`hearth-agent: bad request: ${(err as Error).message}\n`);
  }
});
rl.on('close', () => {
  killAll();
  process.exit(0);
});
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(0);
  });
}
send({ ev: 'ready', pid: process.pid });
