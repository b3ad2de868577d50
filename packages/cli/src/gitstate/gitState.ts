/**
 * Captures the local git state for `hearth remote`: which remote and branch to run on, a base commit
 * that the remote already has, and ONE binary-safe patch that turns a checkout of that base commit
 * into the local working tree (local commits + staged + unstaged + untracked-not-ignored files).
 *
 * Only plumbing / machine-readable git output is parsed (`-z`, `--format` with NUL separators). The
 * user's repository is never modified: the snapshot is built in a temporary index
 * (GIT_INDEX_FILE) whose new objects go to a temporary object directory (GIT_OBJECT_DIRECTORY, with
 * the real object store as an alternate), so neither `.git/index` nor `.git/objects` is touched.
 */
import { spawn } from 'node:child_process';
import { copyFile, lstat, mkdir, mkdtemp, rm, stat, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface GitState {
  /** Absolute path of the local worktree root. */
  repoRoot: string;
  /** The chosen remote. */
  remoteName: string;
  /** That remote's fetch URL, exactly as configured (no `insteadOf` rewriting). */
  repoUrl: string;
  /**
   * Branch name to send, as named ON THE REMOTE: the upstream's name when the local branch tracks a
   * differently named branch; for a detached HEAD (or a branch that was never pushed) the remote
   * branch the base commit came from, else the default branch.
   */
  branch: string;
  /** The remote's default branch. */
  defaultBranch: string;
  /** Full hex sha: the newest commit in HEAD's history that exists on the remote. */
  baseCommit: string;
  /** One patch (`git apply --binary` compatible) from baseCommit to the working tree; null if identical. */
  patch: Buffer | null;
  /** cwd relative to repoRoot, POSIX separators, '' at the root. */
  relativeDir: string;
}

export interface CaptureOptions {
  signal?: AbortSignal;
  /** Remote to use (`--remote NAME`); otherwise chosen automatically. */
  remote?: string;
}

/** A problem the user has to fix; the message says what to do. */
export class GitStateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GitStateError';
  }
}

// ---------------------------------------------------------------------------------------------
// Spawning git

export interface GitResult {
  stdout: Buffer;
  stderr: Buffer;
  /** Exit code; -1 when git was killed by a signal. */
  code: number;
}

export interface GitRunOptions {
  cwd: string;
  input?: Buffer | string;
  signal?: AbortSignal;
  /** Extra environment variables (on top of process.env and the fixed ones below). */
  env?: Record<string, string>;
}

/** How long `git ls-remote` (the only network call) may take before we fall back to local guesses. */
const LS_REMOTE_TIMEOUT_MS = 20_000;

/**
 * Runs the system git with an argument array (never a shell). The environment disables prompts,
 * localisation, optional locks (so read-only commands never rewrite the user's index) and replace
 * refs (the remote does not see local `refs/replace`).
 */
export function git(args: readonly string[], opts: GitRunOptions): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(abortError(opts.signal));
      return;
    }
    const child = spawn('git', args, {
      cwd: opts.cwd,
      env: {
        ...process.env,
        GIT_TERMINAL_PROMPT: '0',
        LC_ALL: 'C',
        GIT_OPTIONAL_LOCKS: '0',
        GIT_NO_REPLACE_OBJECTS: '1',
        ...opts.env,
      },
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      signal: opts.signal,
      windowsHide: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let failed = false;
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (failed) return;
      failed = true;
      if (e.name === 'AbortError') reject(opts.signal ? abortError(opts.signal) : e);
      else if (e.code === 'ENOENT') reject(new GitStateError('git was not found on PATH: install git', { cause: e }));
      else reject(e);
    });
    child.on('close', (code) => {
      if (failed) return;
      if (opts.signal?.aborted) {
        reject(abortError(opts.signal));
        return;
      }
      resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err), code: code ?? -1 });
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {}); // EPIPE if git exits early; the exit code tells the story
      child.stdin!.end(opts.input);
    }
  });
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/** stdout as text without the single trailing newline git adds. */
function line(r: GitResult): string {
  const s = r.stdout.toString('utf8');
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

function describe(args: readonly string[], r: GitResult): string {
  const msg = r.stderr.toString('utf8').trim() || `exit code ${r.code}`;
  return `\`git ${args.join(' ')}\` failed: ${msg}`;
}

// ---------------------------------------------------------------------------------------------
// Capture

const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

interface RemoteRef {
  /** Branch name on the remote, e.g. `feature/y` for refs/remotes/origin/feature/y. */
  name: string;
  ref: string;
  sha: string;
}

export async function captureGitState(cwd: string, opts: CaptureOptions = {}): Promise<GitState> {
  const signal = opts.signal;
  const start = path.resolve(cwd);

  // --- Worktree root and cwd prefix.
  const [top, prefix] = await Promise.all([
    git(['rev-parse', '--show-toplevel'], { cwd: start, signal }),
    git(['rev-parse', '--show-prefix'], { cwd: start, signal }),
  ]);
  if (top.code !== 0 || prefix.code !== 0) {
    const why = (top.code !== 0 ? top : prefix).stderr.toString('utf8').trim();
    throw new GitStateError(
      `${start} is not inside a git working tree${why ? ` (${why})` : ''}: run \`hearth remote\` from a checkout of your repository`,
    );
  }
  const repoRoot = path.resolve(start, line(top));
  const relativeDir = line(prefix).replace(/\/+$/, '');

  const run = (args: readonly string[], extra?: Omit<GitRunOptions, 'cwd' | 'signal'>) =>
    git(args, { cwd: repoRoot, signal, ...extra });
  const must = async (args: readonly string[], extra?: Omit<GitRunOptions, 'cwd' | 'signal'>) => {
    const r = await run(args, extra);
    if (r.code !== 0) throw new GitStateError(describe(args, r));
    return r;
  };

  // --- HEAD, current branch, configured remotes.
  const [head, symref, remoteCfg] = await Promise.all([
    run(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']),
    run(['symbolic-ref', '--quiet', 'HEAD']),
    run(['config', '-z', '--get-regexp', '^remote\\..*\\.url$']),
  ]);
  if (head.code !== 0) {
    throw new GitStateError('the repository has no commits yet: commit and push a branch first');
  }
  const headSha = line(head);
  const headRef = symref.code === 0 ? line(symref) : null; // null: detached HEAD
  const localBranch = headRef?.startsWith('refs/heads/') ? headRef.slice('refs/heads/'.length) : null;

  const remotes = new Map<string, string>(); // name -> first url
  if (remoteCfg.code === 0) {
    for (const rec of remoteCfg.stdout.toString('utf8').split('\0')) {
      const nl = rec.indexOf('\n');
      if (nl < 0) continue;
      const key = rec.slice(0, nl);
      const name = key.slice('remote.'.length, -'.url'.length);
      if (!remotes.has(name)) remotes.set(name, rec.slice(nl + 1));
    }
  } else if (remoteCfg.code !== 1) {
    throw new GitStateError(describe(['config', '--get-regexp', 'remote.*.url'], remoteCfg));
  }

  // --- Upstream of the current branch (ref it tracks locally, its remote, its name on the remote).
  let upstream: { trackingRef: string; remote: string; remoteBranch: string } | null = null;
  if (localBranch !== null) {
    const r = await must(['for-each-ref', '--format=%(refname)%00%(upstream)%00%(upstream:remotename)%00%(upstream:remoteref)', headRef!]);
    for (const rec of r.stdout.toString('utf8').split('\n')) {
      const [refname, trackingRef, remote, remoteRef] = rec.split('\0');
      if (refname !== headRef || !trackingRef || !remote || !remoteRef?.startsWith('refs/heads/')) continue;
      if (!remotes.has(remote)) continue; // `branch.x.remote = .` or a URL: not a named remote
      upstream = { trackingRef, remote, remoteBranch: remoteRef.slice('refs/heads/'.length) };
    }
  }

  // --- Which remote.
  const remoteName = chooseRemote(remotes, opts.remote, upstream?.remote ?? null);
  const repoUrl = remotes.get(remoteName)!;

  // --- Remote-tracking branches of that remote (no fetch: what we last saw of the remote).
  const prefixRef = `refs/remotes/${remoteName}/`;
  const tracked = new Map<string, RemoteRef>();
  let remoteHeadTarget: string | null = null;
  {
    const r = await must(['for-each-ref', '--format=%(refname)%00%(objectname)%00%(symref)', prefixRef]);
    for (const rec of r.stdout.toString('utf8').split('\n')) {
      const [ref, sha, target] = rec.split('\0');
      if (!ref?.startsWith(prefixRef) || !sha) continue;
      const name = ref.slice(prefixRef.length);
      if (name === 'HEAD') {
        if (target?.startsWith(prefixRef)) remoteHeadTarget = target.slice(prefixRef.length);
        continue;
      }
      tracked.set(name, { name, ref, sha });
    }
  }

  const defaultBranch = await findDefaultBranch(repoRoot, remoteName, tracked, remoteHeadTarget, signal);

  // --- Base commit.
  const mergeBase = async (commit: string): Promise<string | null> => {
    const r = await run(['merge-base', headSha, commit]);
    if (r.code === 0 && SHA.test(line(r))) return line(r);
    if (r.code === 1) return null; // no common history
    throw new GitStateError(describe(['merge-base', headSha, commit], r));
  };

  let baseCommit: string | null = null;
  let branch: string | null = null;
  if (localBranch !== null) {
    // 1. The upstream, when it lives on the chosen remote and has been fetched.
    if (upstream && upstream.remote === remoteName) {
      const r = await run(['rev-parse', '--verify', '--quiet', `${upstream.trackingRef}^{commit}`]);
      if (r.code === 0) {
        baseCommit = await mergeBase(line(r));
        if (baseCommit) branch = upstream.remoteBranch;
      }
    }
    // 2. A remote-tracking branch of the same name.
    const same = tracked.get(localBranch);
    if (!baseCommit && same) {
      baseCommit = await mergeBase(same.sha);
      if (baseCommit) branch = localBranch;
    }
  }
  if (!baseCommit) {
    // 3. Newest ancestor of HEAD that any remote branch contains (for a branch that was never
    //    pushed this is at least as new as the merge-base with the default branch).
    baseCommit = await newestRemoteAncestor(run, headSha, tracked);
    if (baseCommit) branch = await branchContaining(run, baseCommit, prefixRef, tracked, defaultBranch);
  }
  if (!baseCommit || !branch) {
    const what = localBranch !== null ? `branch '${localBranch}'` : 'the detached HEAD';
    throw new GitStateError(
      `no commit in the history of ${what} is known to exist on remote '${remoteName}' ` +
        `(no remote-tracking branch refs/remotes/${remoteName}/* shares history with it): ` +
        `push a branch first or pass --run_from_commit (run \`git fetch ${remoteName}\` if the remote already has it)`,
    );
  }

  // --- Patch.
  const [indexPath, objectsPath, autocrlf] = await Promise.all([
    must(['rev-parse', '--git-path', 'index']).then((r) => path.resolve(repoRoot, line(r))),
    must(['rev-parse', '--git-path', 'objects']).then((r) => path.resolve(repoRoot, line(r))),
    run(['config', '--get', 'core.autocrlf']).then((r) => (r.code === 0 ? line(r).toLowerCase() : '')),
  ]);
  const patch = await buildPatch({ repoRoot, baseCommit, indexPath, objectsPath, autocrlf, signal });

  return { repoRoot, remoteName, repoUrl, branch, defaultBranch, baseCommit, patch, relativeDir };
}

function chooseRemote(remotes: Map<string, string>, wanted: string | undefined, upstreamRemote: string | null): string {
  const names = [...remotes.keys()];
  if (wanted !== undefined) {
    if (remotes.has(wanted)) return wanted;
    throw new GitStateError(
      names.length === 0
        ? `no git remote named '${wanted}': add it with \`git remote add ${wanted} URL\``
        : `no git remote named '${wanted}' (configured: ${names.join(', ')}): pass --remote with one of those`,
    );
  }
  if (names.length === 0) {
    throw new GitStateError('no git remote configured: add one with `git remote add origin URL`');
  }
  if (names.length === 1) return names[0]!;
  if (upstreamRemote !== null) return upstreamRemote;
  if (remotes.has('origin')) return 'origin';
  throw new GitStateError(
    `several remotes (${names.join(', ')}) and none is the upstream of the current branch or named origin: pass --remote NAME`,
  );
}

type Run = (args: readonly string[], extra?: Omit<GitRunOptions, 'cwd' | 'signal'>) => Promise<GitResult>;

/**
 * refs/remotes/<remote>/HEAD if set; else ask the remote (`ls-remote --symref`, bounded by a
 * timeout, failures tolerated); else main / master, whichever exists remotely.
 */
async function findDefaultBranch(
  repoRoot: string,
  remote: string,
  tracked: Map<string, RemoteRef>,
  remoteHeadTarget: string | null,
  signal: AbortSignal | undefined,
): Promise<string> {
  if (remoteHeadTarget) return remoteHeadTarget;
  const timeout = AbortSignal.timeout(LS_REMOTE_TIMEOUT_MS);
  const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const advertised = new Set<string>();
  try {
    const r = await git(['ls-remote', '--symref', remote, 'HEAD', 'refs/heads/main', 'refs/heads/master'], {
      cwd: repoRoot,
      signal: both,
    }).catch(() => null);
    if (r && r.code === 0) {
      for (const rec of r.stdout.toString('utf8').split('\n')) {
        const m = /^ref: refs\/heads\/(.+)\tHEAD$/.exec(rec);
        if (m) return m[1]!;
        const tab = rec.indexOf('\t');
        if (tab > 0 && rec.slice(tab + 1).startsWith('refs/heads/')) advertised.add(rec.slice(tab + 1 + 'refs/heads/'.length));
      }
    }
  } finally {
    signal?.throwIfAborted();
  }
  for (const b of ['main', 'master']) if (tracked.has(b) || advertised.has(b)) return b;
  if (tracked.size === 1) return [...tracked.keys()][0]!;
  return 'main';
}

/** Maximal commits among HEAD's ancestors that some remote branch contains; the newest of them. */
async function newestRemoteAncestor(run: Run, headSha: string, tracked: Map<string, RemoteRef>): Promise<string | null> {
  const tips = [...new Set([...tracked.values()].map((t) => t.sha))];
  if (tips.length === 0) return null;
  // `git merge-base A B C…` = merge base of A and a hypothetical merge of B, C, …
  const r = await run(['merge-base', '--all', headSha, ...tips]);
  if (r.code === 1) return null;
  if (r.code !== 0) throw new GitStateError(describe(['merge-base', '--all', 'HEAD', '<remote branches>'], r));
  const bases = line(r).split('\n').filter((s) => SHA.test(s));
  if (bases.length <= 1) return bases[0] ?? null;
  let best: string | null = null;
  let bestCount = -1;
  for (const b of bases) {
    const c = await run(['rev-list', '--count', b]);
    const n = c.code === 0 ? Number(line(c)) : -1;
    if (n > bestCount) [best, bestCount] = [b, n];
  }
  return best;
}

/** Remote branch to report for a base found by search: the default branch if it contains the base,
 *  else a branch whose tip is the base, else the first (by name) that contains it. */
async function branchContaining(
  run: Run,
  base: string,
  prefixRef: string,
  tracked: Map<string, RemoteRef>,
  defaultBranch: string,
): Promise<string> {
  const r = await run(['for-each-ref', `--contains=${base}`, '--format=%(refname)', prefixRef]);
  const names =
    r.code === 0
      ? r.stdout
          .toString('utf8')
          .split('\n')
          .filter((ref) => ref.startsWith(prefixRef))
          .map((ref) => ref.slice(prefixRef.length))
          .filter((n) => tracked.has(n))
      : [];
  if (names.includes(defaultBranch)) return defaultBranch;
  return names.find((n) => tracked.get(n)!.sha === base) ?? names[0] ?? defaultBranch;
}

// ---------------------------------------------------------------------------------------------
// Patch

interface PatchInput {
  repoRoot: string;
  baseCommit: string;
  indexPath: string;
  objectsPath: string;
  autocrlf: string;
  signal: AbortSignal | undefined;
}

/**
 * Snapshot of the working tree as a tree object, built in a temporary index + object directory:
 *   1. copy the real index (keeping its mtime, so git's racy-clean detection still works and only
 *      stat-dirty files are re-read), `git add -A` (tracked changes, deletions, modes, symlinks,
 *      untracked-not-ignored files; .gitignore respected);
 *   2. for changed regular files whose content git would convert on the way in (eol/text
 *      attributes, core.autocrlf, clean filters), replace the normalized blob by the raw bytes, so
 *      that `git apply` on the runner writes exactly the local bytes;
 *   3. `git write-tree`, then one `git diff-tree -p --binary --full-index` base..tree.
 */
async function buildPatch(p: PatchInput): Promise<Buffer | null> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'hearth-gitstate-'));
  try {
    const indexFile = path.join(tmp, 'index');
    const objectDir = path.join(tmp, 'objects');
    await mkdir(objectDir);
    const alternates = [quoteAlternate(p.objectsPath)];
    if (process.env.GIT_ALTERNATE_OBJECT_DIRECTORIES) alternates.push(process.env.GIT_ALTERNATE_OBJECT_DIRECTORIES);
    const env = {
      GIT_INDEX_FILE: indexFile,
      GIT_OBJECT_DIRECTORY: objectDir,
      GIT_ALTERNATE_OBJECT_DIRECTORIES: alternates.join(path.delimiter),
    };
    const run = (args: readonly string[], input?: Buffer) =>
      git(args, { cwd: p.repoRoot, signal: p.signal, env, input });
    const must = async (args: readonly string[], input?: Buffer) => {
      const r = await run(args, input);
      if (r.code !== 0) throw new GitStateError(describe(args, r));
      return r;
    };

    try {
      const st = await stat(p.indexPath);
      await copyFile(p.indexPath, indexFile);
      await utimes(indexFile, st.atime, st.mtime);
    } catch (e) {
      // No index at all: starting from an empty one, `add -A` still yields exactly the worktree.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }

    const cfg = ['-c', 'core.safecrlf=false', '-c', 'core.splitIndex=false', '-c', 'add.ignoreErrors=false'];
    // hearth-out/ holds outputs fetched by earlier remote runs: never mirror them back.
    await must([...cfg, 'add', '--all', '--', ':/', ':(top,exclude,glob)**/hearth-out/**']);

    await keepRawBytes(p, must);

    const tree = line(await must(['write-tree']));
    const baseTree = line(await must(['rev-parse', '--verify', `${p.baseCommit}^{tree}`]));
    if (tree === baseTree) return null;
    const diff = await must([
      'diff-tree', '-r', '-p', '--binary', '--full-index', '--no-renames', '--no-color', '--no-ext-diff',
      '--no-textconv', '--unified=3', '--src-prefix=a/', '--dst-prefix=b/', '--no-relative',
      '--ignore-submodules=none', '--submodule=short', p.baseCommit, tree, '--',
    ]);
    return diff.stdout.length > 0 ? diff.stdout : null;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Entry of `git diff-index --raw -z`. */
interface RawEntry {
  mode: string;
  sha: string;
  path: Buffer;
}

async function keepRawBytes(
  p: PatchInput,
  must: (args: readonly string[], input?: Buffer) => Promise<GitResult>,
): Promise<void> {
  // Regular files that differ from the base commit.
  const d = await must(['diff-index', '--cached', '-z', '--no-renames', '--no-abbrev', p.baseCommit, '--']);
  const changed: RawEntry[] = [];
  const parts = splitNul(d.stdout);
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const meta = parts[i]!.toString('latin1'); // ":old new oldsha newsha S"
    const [, , newMode, , newSha, status] = /^:(\d+) (\d+) ([0-9a-f]+) ([0-9a-f]+) ([A-Z])/.exec(meta) ?? [];
    if (!newMode || !newSha || status === 'D') continue;
    if (newMode !== '100644' && newMode !== '100755') continue;
    changed.push({ mode: newMode, sha: newSha, path: parts[i + 1]! });
  }
  if (changed.length === 0) return;

  // Which of them does git convert when adding (so the blob may differ from the bytes on disk)?
  const attrs = ['text', 'eol', 'crlf', 'filter', 'ident', 'working-tree-encoding'];
  const ca = await must(['check-attr', '-z', '--stdin', ...attrs], joinNul(changed.map((c) => c.path)));
  const byPath = new Map<string, Map<string, string>>();
  const cparts = splitNul(ca.stdout);
  for (let i = 0; i + 2 < cparts.length; i += 3) {
    const key = cparts[i]!.toString('latin1');
    let m = byPath.get(key);
    if (!m) byPath.set(key, (m = new Map()));
    m.set(cparts[i + 1]!.toString('latin1'), cparts[i + 2]!.toString('latin1'));
  }
  const autocrlf = p.autocrlf === 'input' || ['true', 'yes', 'on', '1'].includes(p.autocrlf);
  const candidates: RawEntry[] = [];
  for (const c of changed) {
    const a = byPath.get(c.path.toString('latin1')) ?? new Map<string, string>();
    const v = (k: string) => a.get(k) ?? 'unspecified';
    // ident expansion and working-tree-encoding are reproduced by the runner's checkout from the
    // normalized blob; raw bytes would be converted a second time there. Keep git's blob.
    if (v('ident') === 'set' || !['unspecified', 'unset'].includes(v('working-tree-encoding'))) continue;
    const text = v('text');
    const eolConversion =
      text !== 'unset' &&
      (text !== 'unspecified' || v('eol') !== 'unspecified' || !['unspecified', 'unset'].includes(v('crlf')) || autocrlf);
    const filter = !['unspecified', 'unset'].includes(v('filter'));
    if (!eolConversion && !filter) continue;
    try {
      if ((await lstat(Buffer.concat([Buffer.from(p.repoRoot + path.sep), c.path]))).isFile()) candidates.push(c);
    } catch {
      // missing (sparse checkout / skip-worktree): keep the index entry
    }
  }
  if (candidates.length === 0) return;

  // Only take the raw bytes when they are precisely the checked-out form of the blob `add` stored
  // (so skip-worktree / assume-unchanged entries and files changed meanwhile are left alone).
  const list = Buffer.concat(candidates.map((c) => Buffer.concat([quoteStdinPath(c.path), Buffer.from('\n')])));
  const [filtered, raw] = await Promise.all([
    must(['hash-object', '--stdin-paths'], list),
    must(['hash-object', '-w', '--no-filters', '--stdin-paths'], list),
  ]);
  const fl = line(filtered).split('\n');
  const rl = line(raw).split('\n');
  const updates: Buffer[] = [];
  candidates.forEach((c, i) => {
    if (fl[i] === c.sha && rl[i] && SHA.test(rl[i]!) && rl[i] !== c.sha) {
      updates.push(Buffer.concat([Buffer.from(`${c.mode} ${rl[i]}\t`), c.path, Buffer.from([0])]));
    }
  });
  if (updates.length > 0) await must(['update-index', '-z', '--index-info'], Buffer.concat(updates));
}

function splitNul(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = b.indexOf(0); i >= 0; i = b.indexOf(0, start)) {
    out.push(b.subarray(start, i));
    start = i + 1;
  }
  if (start < b.length) out.push(b.subarray(start));
  return out;
}

function joinNul(paths: Buffer[]): Buffer {
  return Buffer.concat(paths.flatMap((p) => [p, Buffer.from([0])]));
}

/** `hash-object --stdin-paths` reads lines and C-unquotes lines starting with a double quote. */
function quoteStdinPath(p: Buffer): Buffer {
  if (!p.includes(0x0a) && !p.includes(0x0d) && p[0] !== 0x22) return p;
  let s = '"';
  for (const byte of p) {
    if (byte === 0x22) s += '\\"';
    else if (byte === 0x5c) s += '\\\\';
    else if (byte < 0x20 || byte >= 0x7f) s += '\\' + byte.toString(8).padStart(3, '0');
    else s += String.fromCharCode(byte);
  }
  return Buffer.from(s + '"', 'latin1');
}

/** GIT_ALTERNATE_OBJECT_DIRECTORIES entries may be C-quoted when they contain the separator. */
function quoteAlternate(dir: string): string {
  if (!dir.includes(path.delimiter) && !dir.startsWith('"')) return dir;
  return '"' + dir.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}
