/**
 * Remote Bazel acceptance: the real `hearth remote` CLI, run as a child process from a real git clone
 * (the "laptop") of a bare origin repository, against one `hearth up` node running real Bazel on the
 * examples/hello workspace. Checks that what runs remotely is exactly the local working tree, that
 * exit codes reach the shell, Ctrl-C cancels, outputs can be fetched back, and errors are clear.
 *
 * Bazel budget: every Bazel test shares one warm runner (one origin URL); the subdirectory workspace
 * and the Ctrl-C run come last (they restart / discard a runner). The Ctrl-C run uses the plain-path
 * spelling of the origin, which is a different runner key, so it never touches the Bazel runner.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HearthClient, Invocation } from '@hearth/api';
import { findBazel } from '../../packages/cli/src/bazelPath.ts';
import { cleanup, git, REPO_ROOT, SHARED_BAZEL_USER_ROOT, startNode, tempDir } from './harness.ts';

const HEARTH_BIN = join(REPO_ROOT, 'packages/cli/bin/hearth.js');

// Hermetic git for this process and everything it starts: no user/system config.
const GIT_HOME = tempDir('remote-gitcfg');
writeFileSync(join(GIT_HOME, 'gitconfig'), '');
Object.assign(process.env, {
  GIT_CONFIG_GLOBAL: join(GIT_HOME, 'gitconfig'),
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@t',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@t',
});

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

interface CliRun {
  child: ReturnType<typeof spawn>;
  stdout(): string;
  stderr(): string;
  done: Promise<CliResult>;
}

/** `hearth remote ARGS` with cwd = the clone; stdout and stderr kept apart; killed if it hangs. */
function startRemote(cwd: string, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): CliRun {
  const t0 = Date.now();
  const child = spawn(process.execPath, [HEARTH_BIN, 'remote', ...args], {
    cwd,
    env: { ...process.env, HEARTH_LOG_LEVEL: 'warn', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  const stdout = () => Buffer.concat(out).toString('utf8');
  const stderr = () => Buffer.concat(err).toString('utf8');
  const done = new Promise<CliResult>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 150_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: stdout(), stderr: stderr(), ms: Date.now() - t0 });
    });
  });
  return { child, stdout, stderr, done };
}

const remote = (cwd: string, args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number }) => startRemote(cwd, args, opts).done;

/** The invocation id from hearth's first stderr line, `hearth: streaming remote run: <url>`. */
function invocationId(r: Pick<CliResult, 'stderr'>): string {
  const first = r.stderr.split('\n')[0] ?? '';
  const m = /^hearth: streaming remote run: (\S+\/invocations\/([^/\s]+))$/.exec(first);
  assert.ok(m, `first stderr line should name the run, got:\n${r.stderr}`);
  return m[2]!;
}

const show = (r: CliResult) => `exit ${r.code} (${r.signal ?? 'no signal'}) after ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

// --- Listing of a tree: blob ids + modes after `git add -A`, plus every non-directory on disk.

/** Printed by the remote script; the markers are split in the source so the echoed step line never matches them. */
const LISTING_SCRIPT = [
  'echo "BEGIN""-LISTING"',
  'git rev-parse HEAD',
  'git add -A >/dev/null',
  'git ls-files -s',
  'echo "FILES""-ON""-DISK"',
  "find . -path ./.git -prune -o ! -type d -print | sed 's|^\\./||'",
  'echo "END""-LISTING"',
].join('; ');

interface Listing {
  head: string;
  index: string[];
  files: string[];
}

function parseRemoteListing(stdout: string): Listing {
  const m = /^BEGIN-LISTING\n([0-9a-f]{40})\n([\s\S]*?)^FILES-ON-DISK\n([\s\S]*?)^END-LISTING$/m.exec(stdout);
  assert.ok(m, `no listing in the remote output:\n${stdout}`);
  const lines = (s: string) => s.split('\n').filter(Boolean).sort();
  return { head: m[1]!, index: lines(m[2]!), files: lines(m[3]!) };
}

/**
 * The same listing computed locally on a COPY of the clone (the clone's own index stays untouched),
 * without hearth-out/ (fetched outputs are never mirrored) and without ignored files.
 */
function localListing(clone: string, dirs: string[]): Listing {
  const copy = tempDir('remote-copy');
  dirs.push(copy);
  execFileSync('cp', ['-a', `${clone}/.`, copy]);
  rmSync(join(copy, 'hearth-out'), { recursive: true, force: true });
  git(copy, 'add', '-A');
  const index = git(copy, 'ls-files', '-s').split('\n').filter(Boolean).sort();
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: copy, encoding: 'utf8' }).split('\0').filter(Boolean).sort();
  const head = git(copy, 'rev-parse', 'HEAD');
  cleanup(copy);
  return { head, index, files };
}

function write(dir: string, rel: string, content: string | Buffer): void {
  mkdirSync(dirname(join(dir, rel)), { recursive: true });
  writeFileSync(join(dir, rel), content);
}

describe('hearth remote', () => {
  let node: Awaited<ReturnType<typeof startNode>>;
  let client: HearthClient;
  let server: string;
  const root = tempDir('remote');
  const dirs: string[] = [root, GIT_HOME];
  const origin = join(root, 'origin.git');
  const originUrl = `file://${origin}`;
  let n = 0;
  /** A fresh clone of origin: the developer's laptop. */
  const clone = (url = originUrl) => {
    const dir = join(root, `clone-${++n}`);
    git(root, 'clone', '-q', url, dir);
    return dir;
  };
  const originMain = () => git(origin, 'rev-parse', 'refs/heads/main');

  before(async () => {
    const started = startNode();
    // origin: the hello workspace plus a few files that the mirroring tests change (two of them binary).
    const seed = join(root, 'seed');
    cpSync(join(REPO_ROOT, 'examples', 'hello'), seed, { recursive: true, filter: (src) => !/\/(bazel-[^/]*|hearth-out)$/.test(src) });
    write(seed, 'assets/gone.bin', Buffer.concat([Buffer.from([0, 1, 2, 0, 255]), randomBytes(3000)]));
    write(seed, 'assets/changed.bin', Buffer.concat([Buffer.from([0, 0, 0]), randomBytes(2000)]));
    write(seed, 'docs/readme.txt', 'read me\n');
    write(seed, 'docs/staged.txt', 'v1\n');
    git(seed, 'init', '-q', '-b', 'main');
    git(seed, 'add', '-A');
    git(seed, 'commit', '-q', '-m', 'initial');
    git(root, 'clone', '-q', '--bare', seed, origin);
    node = await started;
    client = node.client;
    server = node.url;
  });

  after(async () => {
    await node?.stop();
    for (const d of [...dirs, node?.dataDir].filter(Boolean) as string[]) cleanup(d);
  });

  test('1. clean tree: remote test //... passes, streams to stdout, and the second run is recycled', async () => {
    const laptop = clone();
    const first = await remote(laptop, ['--server', server, 'test', '//...']);
    assert.equal(first.code, 0, show(first));
    assert.match(first.stdout, /Executed \d out of 2 tests: 2 tests pass/, show(first));
    assert.ok(!first.stdout.includes('\x1b'), 'colours are stripped when stdout is not a TTY');
    assert.doesNotMatch(first.stdout, /^hearth: /m, "hearth's own messages go to stderr");
    const firstInv = await client.getInvocation(invocationId(first));
    assert.equal(firstInv.status, 'succeeded');
    assert.equal(firstInv.exit_code, 0);

    const second = await remote(laptop, ['--server', server, 'test', '//...']);
    assert.equal(second.code, 0, show(second));
    assert.match(second.stdout, /Executed 0 out of 2 tests: 2 tests pass/, show(second));
    const secondInv = await client.getInvocation(invocationId(second));
    assert.equal(secondInv.runner?.kind, 'recycled', JSON.stringify(secondInv.runner));
    assert.equal(secondInv.runner?.runner_id, firstInv.runner?.runner_id);
    assert.equal(git(laptop, 'status', '--porcelain'), '', 'the local clone is not modified');
  });

  test('6. exit codes reach the shell', async () => {
    const laptop = clone();
    // The same missing target with a local Bazel (batch mode: no server left behind), meanwhile.
    const localOutputBase = tempDir('remote-local-ob');
    dirs.push(localOutputBase);
    const localBazel = new Promise<number | null>((resolve) => {
      const child = spawn(
        findBazel(),
        ['--batch', '--nohome_rc', `--output_user_root=${SHARED_BAZEL_USER_ROOT}`, `--output_base=${localOutputBase}`, 'build', '--color=no', '//does/not:exist'],
        { cwd: laptop, stdio: 'ignore' },
      );
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    const exit1 = await remote(laptop, ['--server', server, '--script', 'echo about to fail; exit 1']);
    assert.equal(exit1.code, 1, show(exit1));
    assert.match(exit1.stdout, /^about to fail$/m);

    const failing = await remote(laptop, ['--server', server, 'test', '//...', '--test_env=HEARTH_HELLO_FAIL=1']);
    assert.equal(failing.code, 3, show(failing));
    assert.match(failing.stdout, /failing on purpose because HEARTH_HELLO_FAIL=1/);
    assert.match(failing.stdout, /\/\/sh:check_test\s+FAILED/);

    const missing = await remote(laptop, ['--server', server, 'build', '//does/not:exist']);
    assert.match(missing.stdout, /no such package 'does\/not'/, show(missing));

    const killed = await remote(laptop, ['--server', server, '--script', 'kill -TERM $$']);
    assert.equal(killed.code, 143, show(killed));

    const localCode = await localBazel;
    cleanup(localOutputBase);
    assert.ok(localCode !== null && localCode !== 0, `local bazel exited ${localCode}`);
    assert.equal(missing.code, localCode, `remote and local Bazel disagree on the exit code\n${show(missing)}`);
  });

  test('8. --fetch_outputs downloads into hearth-out/, and --run_remotely=false runs locally', async () => {
    const laptop = clone();
    const fetched = await remote(laptop, ['--server', server, '--fetch_outputs', 'build', '//app:hello']);
    assert.equal(fetched.code, 0, show(fetched));
    const bin = join(laptop, 'hearth-out', 'app', 'hello');
    assert.ok(existsSync(bin), show(fetched));
    assert.ok((statSync(bin).mode & 0o111) !== 0, 'hearth-out/app/hello is executable');
    assert.equal(execFileSync(bin, ['a', 'b'], { encoding: 'utf8' }), 'Hello from hearth: a b\n');
    assert.match(fetched.stderr, /hearth-out\/app\/hello/);

    const ran = await remote(laptop, ['--server', server, '--run_remotely=false', 'run', '//app:hello', '--', 'x', 'y']);
    assert.equal(ran.code, 0, show(ran));
    assert.match(ran.stdout, /^Hello from hearth: x y$/m, show(ran));
    // Fetched outputs are not mirrored back: the clone only gained the (untracked) hearth-out/.
    assert.equal(git(laptop, 'status', '--porcelain'), '?? hearth-out/');
  });

  test('2. the remote checkout equals the local working tree, byte for byte', async () => {
    const laptop = clone();
    const base = originMain();
    // An unpushed local commit: a new file and a changed binary file.
    write(laptop, 'notes/committed.txt', 'committed locally, never pushed\n');
    write(laptop, 'assets/changed.bin', Buffer.concat([Buffer.from([0, 0xff, 0]), randomBytes(2500)]));
    git(laptop, 'add', '-A');
    git(laptop, 'commit', '-q', '-m', 'local commit');
    // Staged, then edited again (the remote must get the working-tree version).
    write(laptop, 'docs/staged.txt', 'v2 staged\n');
    git(laptop, 'add', 'docs/staged.txt');
    write(laptop, 'docs/staged.txt', 'v3 staged then edited\n');
    // An uncommitted edit plus a mode change.
    write(laptop, 'docs/readme.txt', 'read me\nedited, not staged\r\nno newline at end');
    chmodSync(join(laptop, 'docs/readme.txt'), 0o755);
    // A tracked binary file deleted (not staged).
    unlinkSync(join(laptop, 'assets/gone.bin'));
    // New untracked files: awkward names and a symlink.
    write(laptop, 'dir with space/ü new.txt', 'untracked\n');
    write(laptop, 'untracked.bin', randomBytes(1000));
    symlinkSync('docs/readme.txt', join(laptop, 'link-to-readme'));
    // Ignored locally: build outputs and earlier fetched outputs must not reach the runner.
    write(laptop, 'bazel-junk/ignored.txt', 'ignored by /bazel-*\n');
    write(laptop, 'hearth-out/app/stale', 'fetched earlier\n');
    const statusBefore = git(laptop, 'status', '--porcelain');

    const r = await remote(laptop, ['--server', server, '--script', LISTING_SCRIPT]);
    assert.equal(r.code, 0, show(r));
    const got = parseRemoteListing(r.stdout);
    const want = localListing(laptop, dirs);
    assert.equal(got.head, base, 'the runner checked out the pushed base commit');
    assert.deepEqual(got.index, want.index);
    assert.deepEqual(got.files, want.files);
    for (const f of ['assets/gone.bin', 'bazel-junk/ignored.txt', 'hearth-out/app/stale']) assert.ok(!got.files.includes(f), `${f} must not exist remotely`);
    for (const f of ['notes/committed.txt', 'dir with space/ü new.txt', 'untracked.bin', 'link-to-readme']) assert.ok(got.files.includes(f), `${f} must exist remotely`);
    assert.ok(got.index.some((l) => /^100755 \S+ 0\tdocs\/readme\.txt$/.test(l)), 'the mode change is mirrored');
    assert.ok(got.index.some((l) => /^120000 \S+ 0\tlink-to-readme$/.test(l)), 'the symlink is mirrored as a symlink');
    assert.equal(git(laptop, 'status', '--porcelain'), statusBefore, 'hearth remote does not touch the local index');
  });

  test('3. detached HEAD on an unpushed commit', async () => {
    const laptop = clone();
    const base = originMain();
    write(laptop, 'detached.txt', 'only on a detached commit\n');
    git(laptop, 'add', '-A');
    git(laptop, 'commit', '-q', '-m', 'detached work');
    git(laptop, 'checkout', '-q', '--detach');
    write(laptop, 'docs/readme.txt', 'dirty on a detached HEAD\n');
    assert.equal(git(laptop, 'rev-parse', '--abbrev-ref', 'HEAD'), 'HEAD');

    const r = await remote(laptop, ['--server', server, '--script', LISTING_SCRIPT]);
    assert.equal(r.code, 0, show(r));
    const got = parseRemoteListing(r.stdout);
    const want = localListing(laptop, dirs);
    assert.equal(got.head, base);
    assert.deepEqual(got.index, want.index);
    assert.deepEqual(got.files, want.files);
    assert.ok(got.files.includes('detached.txt'));
  });

  test('4. remote branch ahead of local (fetched, not merged): the local state runs', async () => {
    const laptop = clone();
    const localHead = git(laptop, 'rev-parse', 'HEAD');
    const other = clone();
    write(other, 'only-in-other.txt', 'pushed by someone else\n');
    git(other, 'add', '-A');
    git(other, 'commit', '-q', '-m', 'someone else');
    git(other, 'push', '-q', 'origin', 'main');
    git(laptop, 'fetch', '-q');
    assert.notEqual(git(laptop, 'rev-parse', 'origin/main'), localHead, 'origin/main moved ahead');
    write(laptop, 'docs/readme.txt', 'local edit while behind\n');

    const r = await remote(laptop, ['--server', server, '--script', LISTING_SCRIPT]);
    assert.equal(r.code, 0, show(r));
    const got = parseRemoteListing(r.stdout);
    assert.equal(got.head, localHead, 'the runner checked out the local HEAD, not the newer origin/main');
    assert.ok(!got.files.includes('only-in-other.txt'), 'a file only in the other push must not exist remotely');
    const want = localListing(laptop, dirs);
    assert.deepEqual(got.index, want.index);
    assert.deepEqual(got.files, want.files);
  });

  test('9. errors: not a git repo, no remotes, no command, unreachable server', async () => {
    const notGit = tempDir('remote-notgit');
    dirs.push(notGit);
    const noRemote = tempDir('remote-noremote');
    dirs.push(noRemote);
    write(noRemote, 'a.txt', 'x\n');
    git(noRemote, 'init', '-q', '-b', 'main');
    git(noRemote, 'add', '-A');
    git(noRemote, 'commit', '-q', '-m', 'x');
    const laptop = clone();

    const [outside, remoteless, noCommand, unreachable, help] = await Promise.all([
      remote(notGit, ['--server', server, 'test', '//...'], { env: { GIT_CEILING_DIRECTORIES: tmpdir() } }),
      remote(noRemote, ['--server', server, 'test', '//...']),
      remote(laptop, ['--server', server]),
      remote(laptop, ['--server', 'http://127.0.0.1:1', 'test', '//...']),
      remote(laptop, ['--help']),
    ]);
    assert.equal(outside.code, 2, show(outside));
    assert.match(outside.stderr, /not inside a git working tree/);
    assert.equal(remoteless.code, 2, show(remoteless));
    assert.match(remoteless.stderr, /git remote add/);
    assert.equal(noCommand.code, 2, show(noCommand));
    assert.match(noCommand.stderr, /missing Bazel command/);
    assert.match(noCommand.stderr, /hearth remote --help/);
    assert.notEqual(unreachable.code, 0, show(unreachable));
    assert.match(unreachable.stderr, /cannot reach/);
    assert.equal(help.code, 0, show(help));
    assert.match(help.stdout, /^Usage: hearth remote/);
    for (const r of [outside, remoteless, noCommand, unreachable]) assert.equal(r.stdout, '', 'errors go to stderr');
  });

  test('5. workspace in a subdirectory of the repo', async () => {
    const laptop = clone();
    cpSync(join(REPO_ROOT, 'examples', 'hello'), join(laptop, 'sub', 'ws'), { recursive: true, filter: (src) => !/\/(bazel-[^/]*|hearth-out)$/.test(src) });
    git(laptop, 'add', '-A');
    git(laptop, 'commit', '-q', '-m', 'move the workspace into sub/ws (not pushed)');
    const r = await remote(join(laptop, 'sub', 'ws'), ['--server', server, 'test', '//...']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /Executed \d out of 2 tests: 2 tests pass/, show(r));
    assert.match(r.stdout, /\/\/lib:greet_test\s+(\(cached\) )?PASSED/);
  });

  test('7. Ctrl-C cancels the remote run and exits 8', async () => {
    // The plain-path spelling of origin: another runner key, so the warm Bazel runner is not discarded.
    const laptop = clone(origin);
    const run = startRemote(laptop, ['--server', server, '--script', 'echo started; sleep 600']);
    const deadline = Date.now() + 90_000;
    while (!/^started$/m.test(run.stdout())) {
      assert.equal(run.child.exitCode, null, `exited early:\n${run.stdout()}\n${run.stderr()}`);
      assert.ok(Date.now() < deadline, `"started" never appeared:\n${run.stdout()}\n${run.stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const t0 = Date.now();
    run.child.kill('SIGINT');
    const r = await run.done;
    const ms = Date.now() - t0;
    assert.equal(r.code, 8, show(r));
    assert.ok(ms < 15_000, `exited ${ms} ms after SIGINT`);
    assert.match(r.stderr, /cancelling the remote run/);
    const inv: Invocation = await client.getInvocation(invocationId(r));
    assert.equal(inv.status, 'cancelled', JSON.stringify(inv));
  });
});
