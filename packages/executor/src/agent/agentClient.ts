import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { AgentEvent, AgentRequest } from './protocol.ts';

export interface ExecOptions {
  cwd: string;
  env: Record<string, string>;
  onOutput?: (chunk: Buffer) => void;
  /** Aborting sends `abortSignal` (default SIGINT) to the process group, then SIGKILL after `killGraceMs`. */
  signal?: AbortSignal;
  abortSignalName?: NodeJS.Signals;
  killGraceMs?: number;
}

export interface ExecResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: string | null;
  /** Set when the process could not be started at all (e.g. binary not found). */
  error?: string;
  /** Handle to probe the process group afterwards. */
  execId: number;
}

/** Executor-side end of the agent protocol: one instance per runner, over the agent's stdio. */
export class AgentClient {
  private nextId = 1;
  private readonly running = new Map<number, { onOutput?: (b: Buffer) => void; resolve: (r: ExecResult) => void }>();
  private readonly pending = new Map<number, (ev: AgentEvent) => void>();
  private closedError: Error | undefined;
  readonly ready: Promise<void>;

  constructor(private readonly proc: ChildProcess) {
    let markReady!: () => void;
    let failReady!: (e: Error) => void;
    this.ready = new Promise((res, rej) => {
      markReady = res;
      failReady = rej;
    });
    const rl = createInterface({ input: proc.stdout!, crlfDelay: Infinity });
    rl.on('line', (line) => {
      let ev: AgentEvent;
      try {
        ev = JSON.parse(line) as AgentEvent;
      } catch {
        return;
      }
      if (ev.ev === 'ready') markReady();
      else if (ev.ev === 'out') this.running.get(ev.id)?.onOutput?.(Buffer.from(ev.data, 'base64'));
      else if (ev.ev === 'exit') {
        const r = this.running.get(ev.id);
        this.running.delete(ev.id);
        r?.resolve({ code: ev.code, signal: ev.signal, execId: ev.id, ...(ev.error ? { error: ev.error } : {}) });
      } else if (ev.ev === 'probe' || ev.ev === 'pong') {
        const p = this.pending.get(ev.req);
        this.pending.delete(ev.req);
        p?.(ev);
      }
    });
    proc.on('exit', (code, signal) => {
      this.closedError = new Error(`runner agent exited (code ${code}, signal ${signal})`);
      failReady(this.closedError);
      for (const [id, r] of this.running) r.resolve({ code: null, signal: 'SIGKILL', error: this.closedError.message, execId: id });
      this.running.clear();
      for (const p of this.pending.values()) p({ ev: 'probe', req: -1, alive: false });
      this.pending.clear();
    });
  }

  get alive(): boolean {
    return !this.closedError;
  }

  private send(req: AgentRequest): void {
    if (this.closedError) throw this.closedError;
    this.proc.stdin!.write(`${JSON.stringify(req)}\n`);
  }

  async exec(argv: string[], opts: ExecOptions): Promise<ExecResult> {
    await this.ready;
    const id = this.nextId++;
    const result = new Promise<ExecResult>((resolve) => this.running.set(id, { onOutput: opts.onOutput, resolve }));
    this.send({ op: 'exec', id, argv, cwd: opts.cwd, env: opts.env });
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      this.trySignal(id, opts.abortSignalName ?? 'SIGINT');
      killTimer = setTimeout(() => this.trySignal(id, 'SIGKILL'), opts.killGraceMs ?? 5000);
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await result;
    } finally {
      clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  private trySignal(id: number, signal: NodeJS.Signals): void {
    try {
      this.send({ op: 'signal', id, signal });
    } catch {}
  }

  /** Signals every process left in exec `execId`'s group (e.g. a background job a step left behind). */
  killGroup(execId: number): void {
    this.trySignal(execId, 'SIGKILL');
  }

  /** Whether any process of exec `execId`'s process group is still alive. */
  async groupAlive(execId: number): Promise<boolean> {
    const req = this.nextId++;
    const answer = new Promise<AgentEvent>((resolve) => this.pending.set(req, resolve));
    this.send({ op: 'probe', id: execId, req });
    const ev = await answer;
    return ev.ev === 'probe' && ev.alive;
  }

  /** Ends the agent; it kills whatever it still runs. */
  close(): void {
    try {
      this.proc.stdin!.end();
    } catch {}
  }
}
