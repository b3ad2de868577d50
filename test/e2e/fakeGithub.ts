/**
 * A local HTTP server that speaks the slice of the GitHub REST API hearth uses, for the real
 * @octokit/rest client to talk to (link a repo with github_api_url = fake.url):
 * - POST /repos/{o}/{r}/statuses/{sha}       records commit statuses
 * - GET  /repos/{o}/{r}/contents/{path}?ref=  serves files of a real local git repo at that ref
 *                                             (`git show ref:path`), base64 like GitHub; 404 when missing
 * - GET  /repos/{o}/{r}/commits/{ref}         resolves a ref to its sha
 * - /git/{o}/{r}.git/…                        smart-HTTP git (git http-backend) for cloning, which
 *                                             demands the repo's token when it was added with one
 * Repositories are registered by owner/name → local git directory.
 */
import { execFile, spawn } from 'node:child_process';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface RecordedStatus {
  owner: string;
  repo: string;
  sha: string;
  state: string;
  description: string;
  context: string;
  target_url: string;
  authorization: string | null;
  at: number;
}

export interface FakeGitHub {
  url: string;
  statuses: RecordedStatus[];
  /** Every request as "METHOD path" (query included). */
  requests: string[];
  /** With a token, cloning over HTTP needs it (Basic auth, any user name, as GitHub accepts it). */
  addRepo(fullName: string, dir: string, opts?: { token?: string }): void;
  /** The smart-HTTP clone URL of a registered repo. */
  cloneUrl(fullName: string): string;
  /** Git HTTP requests refused for a missing or wrong token. */
  gitAuthFailures: number;
  /** The next `n` status posts answer 502 (to exercise retries). */
  failStatuses(n: number): void;
  /** Statuses for a sha (and context), in the order received. */
  statusesFor(sha: string, context?: string): RecordedStatus[];
  waitForStatus(pred: (s: RecordedStatus) => boolean, timeoutMs?: number): Promise<RecordedStatus>;
  close(): Promise<void>;
}

export async function startFakeGitHub(): Promise<FakeGitHub> {
  const repos = new Map<string, string>();
  const tokens = new Map<string, string>();
  let gitAuthFailures = 0;
  const statuses: RecordedStatus[] = [];
  const requests: string[] = [];
  let failing = 0;

  const send = (res: ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const notFound = (res: ServerResponse) => send(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
  const git = async (dir: string, ...args: string[]): Promise<Buffer | null> => {
    try {
      const r = await run('git', args, { cwd: dir, encoding: 'buffer', maxBuffer: 64 << 20 });
      return r.stdout;
    } catch {
      return null;
    }
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const gitPath = /^\/git\/([^/]+)\/([^/]+?)\.git(\/.*)$/.exec(url.pathname);
    if (gitPath) return serveGit(req, res, `${gitPath[1]}/${gitPath[2]}`.toLowerCase(), gitPath[3]!, url.search.slice(1), Buffer.concat(chunks));
    const body = Buffer.concat(chunks).toString('utf8');
    const m = /^\/repos\/([^/]+)\/([^/]+)\/(statuses|contents|commits)\/(.+)$/.exec(url.pathname);
    if (!m) return notFound(res);
    const [, owner, repo, kind, rest] = m as unknown as [string, string, string, string, string];
    const dir = repos.get(`${owner}/${repo}`.toLowerCase());
    if (!dir) return notFound(res);
    if (kind === 'statuses' && req.method === 'POST') {
      if (failing > 0) {
        failing--;
        return send(res, 502, { message: 'Bad Gateway' });
      }
      const b = JSON.parse(body) as { state: string; description?: string; context?: string; target_url?: string };
      if (!['pending', 'success', 'failure', 'error'].includes(b.state)) return send(res, 422, { message: 'Validation Failed' });
      const s: RecordedStatus = {
        owner,
        repo,
        sha: decodeURIComponent(rest),
        state: b.state,
        description: b.description ?? '',
        context: b.context ?? 'default',
        target_url: b.target_url ?? '',
        authorization: (req.headers.authorization as string | undefined) ?? null,
        at: Date.now(),
      };
      statuses.push(s);
      return send(res, 201, { id: statuses.length, state: s.state, description: s.description, context: s.context, target_url: s.target_url });
    }
    if (kind === 'contents' && req.method === 'GET') {
      const path = decodeURIComponent(rest);
      const ref = url.searchParams.get('ref') ?? 'HEAD';
      const type = (await git(dir, 'cat-file', '-t', `${ref}:${path}`))?.toString().trim();
      if (type !== 'blob') return notFound(res);
      const content = await git(dir, 'show', `${ref}:${path}`);
      if (!content) return notFound(res);
      const blobSha = (await git(dir, 'rev-parse', `${ref}:${path}`))!.toString().trim();
      // GitHub wraps base64 at 60 columns.
      const b64 = content.toString('base64').replace(/.{60}/g, '$&\n');
      return send(res, 200, { type: 'file', encoding: 'base64', size: content.length, name: path.split('/').pop(), path, content: b64, sha: blobSha });
    }
    if (kind === 'commits' && req.method === 'GET') {
      const ref = decodeURIComponent(rest);
      const sha = (await git(dir, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`))?.toString().trim();
      if (!sha) return send(res, 422, { message: `No commit found for SHA: ${ref}` });
      return send(res, 200, { sha, commit: { message: '' } });
    }
    return notFound(res);
  }

  /** Smart HTTP through `git http-backend` (CGI), with GitHub-style token auth. */
  function serveGit(req: IncomingMessage, res: ServerResponse, key: string, pathInfo: string, query: string, body: Buffer): void {
    const dir = repos.get(key);
    if (!dir) return notFound(res);
    const token = tokens.get(key);
    if (token !== undefined) {
      const auth = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
      const password = auth ? Buffer.from(auth[1]!, 'base64').toString().split(':').slice(1).join(':') : null;
      if (password !== token) {
        gitAuthFailures++;
        res.writeHead(401, { 'www-authenticate': 'Basic realm="GitHub"', 'content-type': 'text/plain' });
        return void res.end('Invalid username or token.\n');
      }
    }
    const child = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GIT_PROJECT_ROOT: dir,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: `/.git${pathInfo}`,
        REQUEST_METHOD: req.method ?? 'GET',
        QUERY_STRING: query,
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        CONTENT_LENGTH: String(body.length),
        REMOTE_ADDR: '127.0.0.1',
        ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) } : {}),
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    child.stdin.end(body);
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.on('close', () => {
      const all = Buffer.concat(out);
      const split = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, split).toString();
      const headers: Record<string, string> = {};
      let code = 200;
      for (const line of head.split('\r\n')) {
        const i = line.indexOf(':');
        const [k, v] = [line.slice(0, i).trim(), line.slice(i + 1).trim()];
        if (k.toLowerCase() === 'status') code = Number.parseInt(v, 10);
        else if (k) headers[k] = v;
      }
      res.writeHead(code, headers);
      res.end(all.subarray(split + 4));
    });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => send(res, 500, { message: String(err) }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  const fake: FakeGitHub = {
    url: `http://127.0.0.1:${addr.port}`,
    statuses,
    requests,
    addRepo: (fullName, dir, opts = {}) => {
      repos.set(fullName.toLowerCase(), dir);
      if (opts.token !== undefined) tokens.set(fullName.toLowerCase(), opts.token);
    },
    cloneUrl: (fullName) => `http://127.0.0.1:${addr.port}/git/${fullName}.git`,
    get gitAuthFailures() {
      return gitAuthFailures;
    },
    failStatuses: (n) => void (failing = n),
    statusesFor: (sha, context) => statuses.filter((s) => s.sha === sha && (context === undefined || s.context === context)),
    async waitForStatus(pred, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = statuses.find(pred);
        if (s) return s;
        if (Date.now() > deadline) throw new Error(`no matching status within ${timeoutMs} ms; got ${JSON.stringify(statuses, null, 1)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  return fake;
}

/** A GitHub-shaped webhook delivery: the body bytes and headers, signed with `secret` when given. */
export async function webhookRequest(
  event: string,
  payload: unknown,
  opts: { secret?: string; deliveryId?: string; signature?: string } = {},
): Promise<{ body: string; headers: Record<string, string> }> {
  const { createHmac, randomUUID } = await import('node:crypto');
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': opts.deliveryId ?? randomUUID(),
    'user-agent': 'GitHub-Hookshot/fake',
  };
  const sig = opts.signature ?? (opts.secret !== undefined ? `sha256=${createHmac('sha256', opts.secret).update(body).digest('hex')}` : undefined);
  if (sig) headers['x-hub-signature-256'] = sig;
  return { body, headers };
}

/** POSTs a webhook to a hearth server; returns the status and JSON answer. */
export async function deliverWebhook(
  serverUrl: string,
  event: string,
  payload: unknown,
  opts: { secret?: string; deliveryId?: string; signature?: string } = {},
): Promise<{ status: number; body: { delivery_id?: string; status?: string; code?: string; message?: string; reason?: string } }> {
  const { body, headers } = await webhookRequest(event, payload, opts);
  const res = await fetch(`${serverUrl}/webhooks/github`, { method: 'POST', headers, body });
  return { status: res.status, body: (await res.json()) as never };
}

/** Minimal push payload for a repository known to the fake as `fullName`, served from `cloneUrl`. */
export function pushPayload(o: { fullName: string; cloneUrl: string; ref: string; after: string; before?: string; defaultBranch?: string; deleted?: boolean }) {
  return {
    ref: o.ref,
    before: o.before ?? '0'.repeat(40),
    after: o.after,
    created: false,
    deleted: o.deleted ?? false,
    forced: false,
    head_commit: o.deleted ? null : { id: o.after },
    commits: [],
    repository: repositoryPayload(o.fullName, o.cloneUrl, o.defaultBranch ?? 'main', 1),
  };
}

export function repositoryPayload(fullName: string, cloneUrl: string, defaultBranch: string, id: number) {
  return {
    id,
    name: fullName.split('/')[1],
    full_name: fullName,
    private: false,
    clone_url: cloneUrl,
    html_url: `https://github.example/${fullName}`,
    ssh_url: `git@github.example:${fullName}.git`,
    default_branch: defaultBranch,
  };
}

/** Minimal pull_request payload. `head` may be the base repository or a fork. */
export function pullRequestPayload(o: {
  action: string;
  number: number;
  base: { fullName: string; cloneUrl: string; branch: string; id?: number };
  head: { fullName: string; cloneUrl: string; branch: string; sha: string; id?: number };
  changes?: unknown;
}) {
  const baseRepo = repositoryPayload(o.base.fullName, o.base.cloneUrl, 'main', o.base.id ?? 1);
  const headRepo = repositoryPayload(o.head.fullName, o.head.cloneUrl, 'main', o.head.id ?? (o.head.fullName === o.base.fullName ? baseRepo.id : 2));
  return {
    action: o.action,
    number: o.number,
    ...(o.changes ? { changes: o.changes } : {}),
    pull_request: {
      number: o.number,
      state: 'open',
      user: { login: 'someone' },
      head: { ref: o.head.branch, sha: o.head.sha, repo: headRepo },
      base: { ref: o.base.branch, sha: '0'.repeat(40), repo: baseRepo },
    },
    repository: baseRepo,
  };
}
