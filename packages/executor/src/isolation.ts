import { spawn } from 'node:child_process';
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
  async startAgent(runnerDir: string): Promise<AgentClient> {
    const [cmd, ...args] = agentCommand();
    const proc = spawn(cmd!, args, { cwd: runnerDir, stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env } });
    const client = new AgentClient(proc);
    await client.ready;
    return client;
  }
}
