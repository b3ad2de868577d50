/**
 * Typed HTTP client for hearth's public API and executor protocol. Uses the global fetch; every
 * call takes an AbortSignal. Non-2xx answers become `ApiError` with the server's `{code, message}`.
 */
import type {
  AppendLogRequest,
  AppendLogResponse,
  ExecutorInfo,
  ExecutorState,
  GetLogRequest,
  GetLogResponse,
  HeartbeatResponse,
  Invocation,
  LeaseRequest,
  LeaseResponse,
  RegisterResponse,
  RunRequest,
  RunResponse,
  UpdateRunRequest,
} from './schemas.ts';

export class ApiError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: string,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ClientOptions {
  /** Base URL of the hearth server, e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  headers?: Record<string, string>;
}

export class HearthClient {
  readonly baseUrl: string;
  constructor(private readonly opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
  }

  async post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.opts.headers },
        body: JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new ApiError(0, 'unavailable', `cannot reach hearth server at ${this.baseUrl}: ${causeMessage(err)}`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const b = parsed as { code?: string; message?: string } | undefined;
      throw new ApiError(res.status, b?.code ?? `http_${res.status}`, b?.message ?? (text || res.statusText), parsed);
    }
    return parsed as T;
  }

  run(req: RunRequest, signal?: AbortSignal) {
    return this.post<RunResponse>('/api/v1/Run', req, signal);
  }
  getInvocation(invocationId: string, signal?: AbortSignal) {
    return this.post<Invocation>('/api/v1/GetInvocation', { invocation_id: invocationId }, signal);
  }
  getLog(req: GetLogRequest, signal?: AbortSignal) {
    return this.post<GetLogResponse>('/api/v1/GetLog', req, signal);
  }
  cancelInvocation(invocationId: string, signal?: AbortSignal) {
    return this.post<Invocation>('/api/v1/CancelInvocation', { invocation_id: invocationId }, signal);
  }

  /**
   * Follows the live log from `offset`, yielding raw byte chunks as they arrive. The caller counts
   * bytes to know its offset, so a dropped connection can resume with no duplicates or gaps.
   */
  async *followLog(invocationId: string, offset: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    const url = `${this.baseUrl}/api/v1/invocations/${encodeURIComponent(invocationId)}/log?offset=${offset}`;
    const res = await fetch(url, { headers: { ...this.opts.headers, accept: 'application/octet-stream' }, signal });
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      let b: { code?: string; message?: string } = {};
      try {
        b = JSON.parse(text);
      } catch {}
      throw new ApiError(res.status, b.code ?? `http_${res.status}`, b.message ?? text);
    }
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) yield chunk;
  }

  // --- executor protocol ---
  registerExecutor(info: ExecutorInfo, signal?: AbortSignal) {
    return this.post<RegisterResponse>('/internal/v1/executors/Register', info, signal);
  }
  heartbeat(state: ExecutorState, signal?: AbortSignal) {
    return this.post<HeartbeatResponse>('/internal/v1/executors/Heartbeat', state, signal);
  }
  lease(req: LeaseRequest, signal?: AbortSignal) {
    return this.post<LeaseResponse>('/internal/v1/executors/Lease', req, signal);
  }
  updateRun(req: UpdateRunRequest, signal?: AbortSignal) {
    return this.post<{ ok: true }>('/internal/v1/runs/Update', req, signal);
  }
  appendLog(req: AppendLogRequest, signal?: AbortSignal) {
    return this.post<AppendLogResponse>('/internal/v1/runs/AppendLog', req, signal);
  }

  /** Uploads the run's artifacts directory as one tar archive. */
  async uploadArtifacts(ids: { executor_id: string; invocation_id: string; attempt: number }, tar: Buffer, signal?: AbortSignal): Promise<void> {
    const q = new URLSearchParams({ executor_id: ids.executor_id, invocation_id: ids.invocation_id, attempt: String(ids.attempt) });
    const res = await fetch(`${this.baseUrl}/internal/v1/runs/UploadArtifacts?${q}`, {
      method: 'POST',
      headers: { ...this.opts.headers, 'content-type': 'application/x-tar' },
      body: tar,
      signal,
    });
    if (!res.ok) {
      const b = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
      throw new ApiError(res.status, b.code ?? `http_${res.status}`, b.message ?? res.statusText);
    }
  }

  /** The run's artifacts as a tar archive, or null when it produced none. */
  async downloadArtifacts(invocationId: string, signal?: AbortSignal): Promise<Buffer | null> {
    const res = await fetch(`${this.baseUrl}/api/v1/invocations/${encodeURIComponent(invocationId)}/artifacts.tar`, { headers: this.opts.headers, signal });
    if (res.status === 404) return null;
    if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, await res.text());
    return Buffer.from(await res.arrayBuffer());
  }
}

function causeMessage(err: unknown): string {
  const e = err as { cause?: { code?: string; message?: string }; message?: string };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}
