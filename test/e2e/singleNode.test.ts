/**
 * Issue 2 acceptance: `hearth up` (server + executor in one process) running real git and real
 * Bazel on recycled warm runners, and every way a run can end.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HearthClient } from '@hearth/api';
import { cleanup, fullLog, git, makeRepo, runAndWait, sleep, startNode, waitForStatus } from './harness.ts';

describe('single node', () => {
  let node: Awaited<ReturnType<typeof startNode>>;
  let client: HearthClient;
  const dirs: string[] = [];
  before(async () => {
    node = await startNode();
    client = node.client;
  });
  after(async () => {
    await node.stop();
    for (const d of [...dirs, node.dataDir]) cleanup(d);
  });
  const repo = (example: string | null, files?: Record<string, string>) => {
    const r = makeRepo(example, files);
    dirs.push(r.dir);
    return r;
  };

  test('bazel test twice on one repo: second run is recycled, warm and fast; a salt forks a cold runner that gets remote cache hits', async () => {
    const r = repo('hello');
    const req = { repo: r.url, branch: 'main', commit_sha: r.sha, steps: [{ run: 'bazel test //...' }] };
    const first = await runAndWait(client, req);
    assert.equal(first.status, 'succeeded', first.status_reason);
    assert.equal(first.exit_code, 0);
    assert.equal(first.runner?.kind, 'cold');
    const second = await runAndWait(client, req);
    assert.equal(second.status, 'succeeded', second.status_reason);
    assert.equal(second.runner?.kind, 'recycled');
    assert.equal(second.runner?.runner_id, first.runner?.runner_id);
    const firstMs = first.timings.total_ms!;
    const secondMs = second.timings.total_ms!;
    assert.ok(secondMs * 3 < firstMs, `warm run (${secondMs} ms) should be much faster than cold (${firstMs} ms)`);
    const log = await fullLog(client, second.invocation_id);
    assert.match(log, /Executed 0 out of 2 tests: 2 tests pass/);
    assert.match(log, /recycled warm runner/);
    assert.ok(second.timings.queued_ms !== undefined && second.timings.git_sync_ms !== undefined && second.timings.steps?.length === 1);

    const salted = await runAndWait(client, { ...req, platform_properties: { salt: 'x' } });
    assert.equal(salted.status, 'succeeded', salted.status_reason);
    assert.equal(salted.runner?.kind, 'cold');
    assert.notEqual(salted.runner?.runner_id, first.runner?.runner_id);
    // The cold runner still starts warm-ish: the colocated remote cache has every action.
    const saltedLog = await fullLog(client, salted.invocation_id);
    assert.match(saltedLog, /\d+ processes: \d+ remote cache hit/);
    assert.doesNotMatch(saltedLog, /linux-sandbox/);
  });

  test('exit codes: a failing step ends the run with its code and later steps do not run', async () => {
    const r = repo(null, { 'README': 'x\n' });
    for (const code of [1, 3]) {
      const inv = await runAndWait(client, { repo: r.url, commit_sha: r.sha, steps: [{ run: `echo before; exit ${code}` }, { run: 'echo SECOND-STEP-RAN' }] });
      assert.equal(inv.status, 'failed');
      assert.equal(inv.exit_code, code);
      assert.equal(inv.failed_step, 0);
      const log = await fullLog(client, inv.invocation_id);
      assert.match(log, /before/);
      assert.doesNotMatch(log, /SECOND-STEP-RAN/);
    }
    // pipefail: a failure inside a pipeline is not hidden by the last command.
    const piped = await runAndWait(client, { repo: r.url, commit_sha: r.sha, steps: [{ run: 'false | cat' }] });
    assert.equal(piped.exit_code, 1);
  });

  test('a step killed by a signal reports 128+N', async () => {
    const r = repo(null, { 'README': 'x\n' });
    const inv = await runAndWait(client, { repo: r.url, commit_sha: r.sha, steps: [{ run: 'kill -TERM $$' }] });
    assert.equal(inv.status, 'failed');
    assert.equal(inv.exit_code, 143);
  });

  test('cancel stops a running step, and the next run does not reuse that runner', async () => {
    const r = repo(null, { 'README': 'x\n' });
    const { invocation_id } = await client.run({ repo: r.url, commit_sha: r.sha, steps: [{ run: 'echo started; sleep 600' }] });
    await waitForStatus(client, invocation_id, (i) => i.status === 'running' && i.timings !== undefined);
    // wait until the step really runs
    for (let i = 0; i < 100 && !(await fullLogSoFar(client, invocation_id)).includes('started'); i++) await sleep(100);
    const t0 = Date.now();
    await client.cancelInvocation(invocation_id);
    const inv = await waitForStatus(client, invocation_id, (i) => i.status !== 'running', 20_000);
    assert.equal(inv.status, 'cancelled');
    assert.ok(Date.now() - t0 < 10_000, 'cancel took too long');
    const next = await runAndWait(client, { repo: r.url, commit_sha: r.sha, steps: [{ run: 'true' }] });
    assert.equal(next.runner?.kind, 'cold');
    assert.match(next.runner!.reason, /cancelled/);
  });

  test('timeout ends the run as timed_out naming the step', async () => {
    const r = repo(null, { 'README': 'x\n' });
    const inv = await runAndWait(client, { repo: r.url, commit_sha: r.sha, timeout: '6s', steps: [{ run: 'true' }, { run: 'sleep 600' }] });
    assert.equal(inv.status, 'timed_out');
    assert.match(inv.status_reason, /timed out after 6\.00s in step 2/);
    assert.equal(inv.failed_step, 1);
  });

  test('a patch that does not apply fails the run, leaves the tree clean, and the runner serves the next run', async () => {
    const r = repo(null, { 'a.txt': 'hello\n' });
    const bad = Buffer.from('diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-something else\n+changed\n').toString('base64');
    const good = Buffer.from('diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+new\n').toString('base64');
    const failed = await runAndWait(client, { repo: r.url, commit_sha: r.sha, patches: [good, bad], steps: [{ run: 'true' }] });
    assert.equal(failed.status, 'failed');
    assert.match(failed.status_reason, /patch 2 of 2 does not apply/);
    const next = await runAndWait(client, { repo: r.url, commit_sha: r.sha, steps: [{ run: 'test -z "$(git status --porcelain)" && test ! -e new.txt' }] });
    assert.equal(next.status, 'succeeded', next.status_reason);
    assert.equal(next.runner?.kind, 'recycled');
    assert.equal(next.runner?.runner_id, failed.runner?.runner_id);
    const patched = await runAndWait(client, { repo: r.url, commit_sha: r.sha, patches: [good], steps: [{ run: 'grep -q new new.txt' }] });
    assert.equal(patched.status, 'succeeded', patched.status_reason);
  });

  test('an unknown commit fails at once with a clear reason', async () => {
    const r = repo(null, { 'a.txt': 'x\n' });
    const t0 = Date.now();
    const inv = await runAndWait(client, { repo: r.url, branch: 'main', commit_sha: 'deadbeef'.repeat(5), steps: [{ run: 'true' }] });
    assert.equal(inv.status, 'failed');
    assert.match(inv.status_reason, /commit deadbeef\w+ was not found in file:\/\//);
    // The runner never got a checkout: it is not kept to take a slot from useful runners.
    const next = await runAndWait(client, { repo: r.url, branch: 'main', commit_sha: r.sha, steps: [{ run: 'true' }] });
    assert.equal(next.runner?.kind, 'cold');
    assert.match(next.runner!.reason, /could not check out the repository/);
    assert.ok(Date.now() - t0 < 15_000);
  });

  test('logs are byte-exact, resumable from any offset, and secrets are masked', async () => {
    const r = repo(null, { 'a.txt': 'x\n' });
    const script = 'for i in 1 2 3 4 5; do echo "line $i"; sleep 0.3; done; printf "cr\\rcr\\n"; printf "%s" "$WEIRD"; printf "tok=%s." "$SECRET"; printf "no newline at end"';
    const weird = 'a "b" $HOME `x` \\ ü';
    const { invocation_id } = await client.run({
      repo: r.url,
      commit_sha: r.sha,
      env: { WEIRD: weird },
      remote_headers: ['x-hearth-env.SECRET=hunter2-secret'],
      steps: [{ run: script }],
    });
    // Read part of the log while it runs, then resume from that offset.
    let first = Buffer.alloc(0);
    for (let i = 0; i < 100 && !first.includes('line 2'); i++) {
      const part = await client.getLog({ invocation_id, offset: 0 });
      first = Buffer.from(part.data, 'base64');
      await sleep(100);
    }
    assert.ok(first.includes('line 2'), 'log should stream while the run is going');
    const rest: Buffer[] = [];
    for await (const c of client.followLog(invocation_id, first.length)) rest.push(Buffer.from(c));
    const whole = Buffer.concat([first, ...rest]).toString('utf8');
    const reference = await fullLog(client, invocation_id);
    assert.equal(whole, reference);
    for (let i = 1; i <= 5; i++) assert.equal(whole.split(`line ${i}\n`).length, 2, `line ${i} exactly once`);
    assert.ok(whole.includes('cr\rcr\n'));
    assert.ok(whole.includes(weird));
    assert.ok(whole.includes('tok=***.'));
    assert.ok(!whole.includes('hunter2'));
    assert.ok(whole.includes('no newline at end\x1b[36m[hearth]') || whole.includes('no newline at end'));
    const inv = await client.getInvocation(invocation_id);
    assert.equal(inv.status, 'succeeded');
    const end = await client.getLog({ invocation_id, offset: Buffer.byteLength(reference) });
    assert.equal(end.complete, true);
    assert.equal(end.data, '');
  });

  test('API errors are {code, message} with the right status', async () => {
    const res = await fetch(`${node.url}/api/v1/Run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ repo: 'x', steps: [] }) });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, 'invalid_argument');
    const noRef = await fetch(`${node.url}/api/v1/Run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ repo: 'x', steps: [{ run: 'true' }] }) });
    assert.equal(noRef.status, 400);
    assert.match(((await noRef.json()) as { message: string }).message, /branch.*commit_sha/);
    const tooLong = await fetch(`${node.url}/api/v1/Run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ repo: 'x', branch: 'main', timeout: '1000h', steps: [{ run: 'true' }] }) });
    assert.equal(tooLong.status, 400);
    assert.match(((await tooLong.json()) as { message: string }).message, /at most 168h/);
    const badJson = await fetch(`${node.url}/api/v1/Run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    assert.equal(badJson.status, 400);
    assert.equal(((await badJson.json()) as { code: string }).code, 'invalid_argument');
    const missing = await fetch(`${node.url}/api/v1/GetInvocation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ invocation_id: 'nope' }) });
    assert.equal(missing.status, 404);
    const page = await fetch(`${node.url}/invocations/nope`);
    assert.equal(page.status, 404);
  });

  test('the invocation page shows state, provenance and timings', async () => {
    const r = repo(null, { 'a.txt': 'x\n' });
    const inv = await runAndWait(client, { repo: r.url, commit_sha: r.sha, steps: [{ run: 'echo hi' }] });
    const html = await (await fetch(inv.url)).text();
    assert.match(html, /<b id="status" class="s-succeeded">succeeded<\/b>/);
    assert.match(html, new RegExp(`runner <code>${inv.runner!.runner_id}</code>`));
    assert.match(html, /git sync/);
    assert.match(html, /EventSource/);
    void git;
  });
});

async function fullLogSoFar(client: HearthClient, id: string): Promise<string> {
  const r = await client.getLog({ invocation_id: id, offset: 0 });
  return Buffer.from(r.data, 'base64').toString('utf8');
}
