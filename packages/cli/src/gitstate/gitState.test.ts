import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync,
  symlinkSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { captureGitState, GitStateError, type GitState } from './gitState.ts';

// Hermetic git: no user/system config, fixed identity.
const ROOT = mkdtempSync(path.join(tmpdir(), 'hearth-gitstate-test-'));
const GLOBAL_CONFIG = path.join(ROOT, 'gitconfig');
writeFileSync(GLOBAL_CONFIG, '');
Object.assign(process.env, {
  GIT_CONFIG_GLOBAL: GLOBAL_CONFIG,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
});
after(() => rmSync(ROOT, { recursive: true, force: true }));

function gitBuf(cwd: string, args: string[], input?: Buffer): Buffer {
  return execFileSync('git', args, { cwd, input, stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
}
function g(cwd: string, ...args: string[]): string {
  return gitBuf(cwd, args).toString('utf8').trim();
}

type Files = Record<string, string | Buffer>;
function write(dir: string, files: Files): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, content);
  }
}

let counter = 0;
interface Fixture {
  dir: string;
  remote: string;
  url: string;
  seed: string;
  local: string;
}
/** A bare "remote" (file://) holding `files` on main, a seed clone that can push more, and a local clone. */
function setup(files: Files, seedSetup?: (seed: string) => void): Fixture {
  const dir = path.join(ROOT, `case-${++counter}`);
  const remote = path.join(dir, 'remote.git');
  const seed = path.join(dir, 'seed');
  const local = path.join(dir, 'local');
  mkdirSync(dir, { recursive: true });
  g(dir, 'init', '-q', '--bare', '-b', 'main', remote);
  g(dir, 'init', '-q', '-b', 'main', seed);
  write(seed, files);
  g(seed, 'add', '-A');
  g(seed, 'commit', '-q', '-m', 'initial');
  const url = `file://${remote}`;
  g(seed, 'remote', 'add', 'origin', url);
  g(seed, 'push', '-q', '-u', 'origin', 'main');
  seedSetup?.(seed);
  g(dir, 'clone', '-q', url, local);
  return { dir, remote, url, seed, local };
}

function commitAll(repo: string, msg: string): string {
  g(repo, 'add', '-A');
  g(repo, 'commit', '-q', '-m', msg);
  return g(repo, 'rev-parse', 'HEAD');
}

interface Snapshot {
  index: string;
  files: Record<string, string>;
}
/** Every non-ignored file: `ls-files -s` after `add -A`, plus bytes and mode of each file on disk. */
function snapshot(repo: string): Snapshot {
  g(repo, 'add', '-A');
  const index = gitBuf(repo, ['ls-files', '-s', '-z']).toString('latin1');
  const files: Record<string, string> = {};
  for (const rel of gitBuf(repo, ['ls-files', '-z']).toString('utf8').split('\0').filter(Boolean)) {
    const p = path.join(repo, rel);
    const st = lstatSync(p);
    files[rel] = st.isSymbolicLink()
      ? `link:${readlinkSync(p)}`
      : `${st.mode & 0o111 ? 'x' : '-'}:${st.size}:${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  }
  return { index, files };
}

/** Applies the patch in a fresh clone at baseCommit and checks it equals the local worktree. */
function assertRoundTrip(fx: Fixture, state: GitState, localRepo = fx.local): string {
  const check = path.join(fx.dir, `check-${++counter}`);
  g(fx.dir, 'clone', '-q', fx.url, check);
  g(check, 'checkout', '-q', '--detach', state.baseCommit);
  if (state.patch) gitBuf(check, ['-c', 'core.autocrlf=false', 'apply', '--binary'], state.patch);
  const want = snapshot(localRepo);
  const got = snapshot(check);
  assert.deepEqual(got.files, want.files);
  assert.equal(got.index, want.index);
  return check;
}

function objectsListing(repo: string): string[] {
  const dir = path.join(repo, '.git', 'objects');
  return readdirSync(dir, { recursive: true }).map(String).sort();
}

// ---------------------------------------------------------------------------------------------
// Scenarios are independent (own temp dirs), so they run concurrently: most of the time is spent
// waiting for git processes.
const scenarios: Array<[string, () => Promise<void>]> = [];
const scenario = (name: string, fn: () => Promise<void>) => void scenarios.push([name, fn]);

scenario('clean tree: no patch, base = HEAD', async () => {
  const fx = setup({ 'README.md': 'hello\n', 'src/a.txt': 'a\n' });
  const s = await captureGitState(fx.local);
  const head = g(fx.local, 'rev-parse', 'HEAD');
  assert.equal(s.patch, null);
  assert.equal(s.baseCommit, head);
  assert.equal(s.remoteName, 'origin');
  assert.equal(s.repoUrl, fx.url);
  assert.equal(s.branch, 'main');
  assert.equal(s.defaultBranch, 'main');
  assert.equal(s.relativeDir, '');
  assert.equal(s.repoRoot, realpathSync(fx.local));
  assertRoundTrip(fx, s);
});

scenario('unpushed commit + staged + unstaged + untracked + deletions + chmod + rename + odd files', async () => {
  const fx = setup({
    'a.txt': 'a1\na2\na3\n',
    'b.txt': 'b1\nb2\n',
    'd.txt': 'd\n',
    'img.png': randomBytes(4096),
    'gone-staged.txt': 'bye\n',
    'script.sh': '#!/bin/sh\necho hi\n',
    'old-name.txt': 'some content that is long enough to be detected as a rename\n'.repeat(5),
    'link-old': 'x',
  });
  const L = fx.local;
  const pushed = g(L, 'rev-parse', 'HEAD');
  // Unpushed commit.
  write(L, { 'a.txt': 'a1\nA2\na3\n', 'c.txt': 'new in commit\n' });
  commitAll(L, 'local work');
  // Staged then further unstaged edit of the same file; staged-only edit of another.
  write(L, { 'a.txt': 'a1\nA2\na3\nstaged\n' });
  g(L, 'add', 'a.txt');
  write(L, { 'a.txt': 'a1\nA2\na3\nstaged\nunstaged\n', 'd.txt': 'd staged\n' });
  g(L, 'add', 'd.txt');
  // Unstaged edit, untracked file, deletions, mode change, rename + edit.
  write(L, { 'b.txt': 'b1\nB2\n', 'new/untracked.txt': 'untracked\n' });
  unlinkSync(path.join(L, 'img.png'));
  g(L, 'rm', '-q', 'gone-staged.txt');
  chmodSync(path.join(L, 'script.sh'), 0o755);
  g(L, 'mv', 'old-name.txt', 'new-name.txt');
  writeFileSync(path.join(L, 'new-name.txt'), readFileSync(path.join(L, 'new-name.txt'), 'utf8') + 'edited\n');
  // Empty file, symlinks, no trailing newline.
  write(L, { 'empty': '', 'no-eol.txt': 'no newline at the end' });
  symlinkSync('a.txt', path.join(L, 'link-new'));
  unlinkSync(path.join(L, 'link-old'));
  symlinkSync('b.txt', path.join(L, 'link-old')); // regular file -> symlink

  const indexBefore = readFileSync(path.join(L, '.git', 'index'));
  const objectsBefore = objectsListing(L);
  const s = await captureGitState(L);
  assert.deepEqual(readFileSync(path.join(L, '.git', 'index')), indexBefore, 'real index untouched');
  assert.deepEqual(objectsListing(L), objectsBefore, 'no objects written to the user repo');

  assert.equal(s.baseCommit, pushed);
  assert.equal(s.branch, 'main');
  assert.ok(s.patch);
  const text = s.patch.toString('utf8');
  assert.match(text, /new mode 100755/);
  assert.match(text, /deleted file mode 100644\nindex [0-9a-f]{40}\.\.0{40}\nGIT binary patch/);
  assert.match(text, /new file mode 120000/);
  assert.doesNotMatch(text, /^rename from/m);
  assertRoundTrip(fx, s);
});

scenario('CRLF bytes and .gitattributes (binary, text=auto, eol=crlf) come through unchanged', async () => {
  const fx = setup({
    '.gitattributes': '*.dat binary\n*.auto text=auto\n*.crlf text eol=crlf\n',
    'x.dat': 'dat\r\nfile\r\n',
    'y.auto': 'one\ntwo\n',
    'z.crlf': 'a\nb\n',
  });
  const L = fx.local;
  assert.equal(readFileSync(path.join(L, 'z.crlf'), 'latin1'), 'a\r\nb\r\n', 'eol=crlf checkout');
  write(L, {
    'plain-crlf.txt': 'a\r\nb\r\n',
    'mixed.txt': 'a\r\nb\nc\rd',
    'x.dat': 'dat\r\nfile\r\nchanged\r\n',
    'y.auto': 'one\r\ntwo\r\nthree\r\n', // git add would normalize to LF; the remote must get CRLF
    'new.auto': 'new\r\nauto\r\n',
    'z.crlf': 'a\r\nb\r\nc\r\n',
  });
  const s = await captureGitState(L);
  assert.ok(s.patch);
  assert.match(s.patch.toString('latin1'), /diff --git a\/x\.dat b\/x\.dat\n(?:.*\n)*?GIT binary patch/);
  const check = assertRoundTrip(fx, s);
  assert.equal(readFileSync(path.join(check, 'y.auto'), 'latin1'), 'one\r\ntwo\r\nthree\r\n');
});

scenario('paths with spaces, non-ASCII, quotes, tabs and newlines', async () => {
  const fx = setup({
    '.gitattributes': '*.txt text=auto\n',
    'dir with space/é 日本.txt': 'old\n',
    '日本/データ.bin': randomBytes(512),
  });
  const L = fx.local;
  write(L, {
    'dir with space/é 日本.txt': 'new\r\n',
    '日本/データ.bin': randomBytes(512),
    'dir with space/new file é.txt': 'x\r\ny\r\n',
    '"quoted" name.txt': 'q\r\n',
    'tab\there.txt': 't\r\n',
    'new\nline.txt': 'n\r\n',
  });
  const s = await captureGitState(L);
  assert.ok(s.patch);
  assertRoundTrip(fx, s);
});

scenario('detached HEAD on unpushed commits; base from the remote branch it came from', async () => {
  const fx = setup({ 'f.txt': '1\n' }, (seed) => {
    g(seed, 'checkout', '-q', '-b', 'feature');
    write(seed, { 'feat.txt': 'feature\n' });
    commitAll(seed, 'feature');
    g(seed, 'push', '-q', 'origin', 'feature');
  });
  const L = fx.local;
  const mainTip = g(L, 'rev-parse', 'origin/main');
  write(L, { 'f.txt': '2\n' });
  commitAll(L, 'unpushed on main');
  g(L, 'checkout', '-q', '--detach');
  write(L, { 'f.txt': '3\n' });
  commitAll(L, 'unpushed, detached');
  write(L, { 'f.txt': '4\n' });
  let s = await captureGitState(L);
  assert.equal(s.baseCommit, mainTip);
  assert.equal(s.branch, 'main');
  assertRoundTrip(fx, s);

  g(L, 'checkout', '-q', '-f', '--detach', 'origin/feature');
  const featTip = g(L, 'rev-parse', 'HEAD');
  write(L, { 'feat.txt': 'changed\n' });
  commitAll(L, 'on top of feature');
  s = await captureGitState(L);
  assert.equal(s.baseCommit, featTip);
  assert.equal(s.branch, 'feature');
  assert.equal(s.defaultBranch, 'main');
  assertRoundTrip(fx, s);
});

scenario('never-pushed branch in a linked worktree: base from the remote branch it forked from', async () => {
  const fx = setup({ 'f.txt': '1\n' }, (seed) => {
    g(seed, 'checkout', '-q', '-b', 'release');
    write(seed, { 'r.txt': 'release\n' });
    commitAll(seed, 'release');
    g(seed, 'push', '-q', 'origin', 'release');
  });
  const L = fx.local;
  // Off main, never pushed: base = origin/main, branch = the default branch.
  g(L, 'checkout', '-q', '-b', 'topic');
  write(L, { 'f.txt': 'topic\n' });
  commitAll(L, 'topic');
  let s = await captureGitState(L);
  assert.equal(s.baseCommit, g(L, 'rev-parse', 'origin/main'));
  assert.equal(s.branch, 'main');
  // Off origin/release (not the default branch), never pushed, in a linked worktree.
  const wt = path.join(fx.dir, 'wt');
  g(L, 'worktree', 'add', '-q', '--no-track', '-b', 'hotfix', wt, 'origin/release');
  write(wt, { 'r.txt': 'hotfix\n', 'new.txt': 'n\n' });
  commitAll(wt, 'hotfix');
  write(wt, { 'r.txt': 'hotfix, uncommitted\n' });
  const indexBefore = readFileSync(path.join(L, '.git', 'worktrees', 'wt', 'index'));
  s = await captureGitState(wt);
  assert.deepEqual(readFileSync(path.join(L, '.git', 'worktrees', 'wt', 'index')), indexBefore);
  assert.equal(s.baseCommit, g(L, 'rev-parse', 'origin/release'));
  assert.equal(s.branch, 'release');
  assert.equal(s.repoRoot, realpathSync(wt));
  assertRoundTrip(fx, s, wt);
});

scenario('remote branch ahead of local (fetched, not merged): base is the common ancestor', async () => {
  const fx = setup({ 'f.txt': 'base\n', 'g.txt': 'g\n' });
  const L = fx.local;
  const common = g(L, 'rev-parse', 'HEAD');
  write(fx.seed, { 'g.txt': 'someone else\n' });
  commitAll(fx.seed, 'other push');
  g(fx.seed, 'push', '-q', 'origin', 'main');
  g(L, 'fetch', '-q');
  write(L, { 'f.txt': 'mine\n' });
  commitAll(L, 'mine');
  write(L, { 'f.txt': 'mine, uncommitted\n' });
  const s = await captureGitState(L);
  assert.equal(s.baseCommit, common);
  assert.notEqual(s.baseCommit, g(L, 'rev-parse', 'origin/main'));
  assert.equal(s.branch, 'main');
  assertRoundTrip(fx, s);
});

scenario('upstream named differently from the local branch', async () => {
  const fx = setup({ 'f.txt': '1\n' }, (seed) => {
    g(seed, 'checkout', '-q', '-b', 'feature/y');
    write(seed, { 'y.txt': 'y\n' });
    commitAll(seed, 'y');
    g(seed, 'push', '-q', 'origin', 'feature/y');
  });
  const L = fx.local;
  g(L, 'checkout', '-q', '-b', 'local-x', '--track', 'origin/feature/y');
  const yTip = g(L, 'rev-parse', 'HEAD');
  write(L, { 'y.txt': 'local\n' });
  commitAll(L, 'local');
  const s = await captureGitState(L);
  assert.equal(s.branch, 'feature/y');
  assert.equal(s.baseCommit, yTip);
  assertRoundTrip(fx, s);
});

scenario('subdirectory cwd gives relativeDir', async () => {
  const fx = setup({ 'a/b/c.txt': 'c\n', 'top.txt': 't\n' });
  write(fx.local, { 'a/b/c.txt': 'changed\n' });
  const s = await captureGitState(path.join(fx.local, 'a', 'b'));
  assert.equal(s.relativeDir, 'a/b');
  assert.equal(s.repoRoot, realpathSync(fx.local));
  assert.ok(s.patch);
  assertRoundTrip(fx, s);
  assert.equal((await captureGitState(path.join(fx.local, 'a'))).relativeDir, 'a');
});

scenario('ignored files stay out of the patch', async () => {
  const fx = setup({ '.gitignore': '*.log\nbuild/\n', 'src.txt': 's\n' });
  const L = fx.local;
  writeFileSync(path.join(L, '.git', 'info', 'exclude'), 'secret.txt\n');
  write(L, { 'debug.log': 'noise\n', 'build/out.bin': randomBytes(64), 'secret.txt': 'pw\n', 'kept.txt': 'k\n' });
  const s = await captureGitState(L);
  assert.ok(s.patch);
  const text = s.patch.toString('latin1');
  assert.match(text, /kept\.txt/);
  assert.doesNotMatch(text, /debug\.log|out\.bin|secret\.txt/);
  assertRoundTrip(fx, s);
});

scenario('1 MiB random binary files round-trip (new and modified)', async () => {
  const fx = setup({ 'big.bin': randomBytes(1 << 20) });
  const L = fx.local;
  const big = readFileSync(path.join(L, 'big.bin'));
  randomBytes(1000).copy(big, 500_000);
  write(L, { 'big.bin': big, 'new-big.bin': randomBytes(1 << 20) });
  const s = await captureGitState(L);
  assert.ok(s.patch);
  assertRoundTrip(fx, s);
});

scenario('remote choice: several remotes without origin, --remote, upstream remote', async () => {
  const fx = setup({ 'f.txt': '1\n' });
  const L = fx.local;
  g(L, 'remote', 'rename', 'origin', 'a');
  g(L, 'remote', 'add', 'b', fx.url);
  g(L, 'branch', '--unset-upstream');
  await assert.rejects(captureGitState(L), (e: unknown) => {
    assert.ok(e instanceof GitStateError);
    assert.match(e.message, /several remotes \(a, b\)/);
    assert.match(e.message, /--remote NAME/);
    return true;
  });
  // b was never fetched: nothing known to exist there.
  await assert.rejects(captureGitState(L, { remote: 'b' }), /push a branch first or pass --run_from_commit/);
  await assert.rejects(captureGitState(L, { remote: 'nope' }), /no git remote named 'nope' \(configured: a, b\)/);
  const s = await captureGitState(L, { remote: 'a' });
  assert.equal(s.remoteName, 'a');
  assert.equal(s.baseCommit, g(L, 'rev-parse', 'HEAD'));
  // With an upstream on b (fetched now; b has no HEAD ref locally -> ls-remote), b is chosen.
  g(L, 'fetch', '-q', 'b');
  g(L, 'branch', '-q', '-u', 'b/main');
  const t = await captureGitState(L);
  assert.equal(t.remoteName, 'b');
  assert.equal(t.defaultBranch, 'main');
  assert.equal(t.patch, null);
});

scenario('no remote, not a repository, aborted signal', async () => {
  const repo = path.join(ROOT, 'no-remote');
  g(ROOT, 'init', '-q', '-b', 'main', repo);
  write(repo, { 'f.txt': 'x\n' });
  commitAll(repo, 'c');
  await assert.rejects(captureGitState(repo), (e: unknown) => {
    assert.ok(e instanceof GitStateError);
    assert.match(e.message, /no git remote configured: add one with `git remote add origin URL`/);
    return true;
  });
  const notRepo = mkdtempSync(path.join(ROOT, 'plain-'));
  await assert.rejects(captureGitState(notRepo), GitStateError);
  await assert.rejects(captureGitState(repo, { signal: AbortSignal.abort() }), { name: 'AbortError' });
});

describe('captureGitState', { concurrency: 4 }, () => {
  for (const [name, fn] of scenarios) test(name, fn);
});
