/**
 * Workflows inside one real server (HTTP, SQLite, the real @octokit clients) against a fake GitHub
 * serving real git repositories. No executor runs here: the test leases tasks through the executor
 * protocol itself, so it can look at exactly what a runner would receive.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { ApiError, HearthClient, type Invocation, type Task, type WebhookDelivery } from '@hearth/api';
import { type FakeGitHub, deliverWebhook, pullRequestPayload, pushPayload, startFakeGitHub } from '../../../../test/e2e/fakeGithub.ts';
import { type RunningServer, startServer } from '../server.ts';

const SECRET = 'webhook-secret-1';

/** The ApiError a call fails with (it must fail). */
async function failure(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}
const TOKEN = 'ghp_token_never_shown';

function gitRepo(files: Record<string, string>): { dir: string; url: string; sha: string; commit(files: Record<string, string>, branch?: string): string } {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-wf-unit-'));
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } }).trim();
  const commit = (fs: Record<string, string>, branch?: string) => {
    if (branch) git('checkout', '-q', '-B', branch);
    for (const [p, c] of Object.entries(fs)) writeFileSync(join(dir, p), c);
    git('add', '-A');
    git('commit', '-q', '--allow-empty', '-m', 'c');
    return git('rev-parse', 'HEAD');
  };
  git('init', '-q', '-b', 'main');
  const sha = commit(files);
  return { dir, url: `file://${dir}`, sha, commit };
}

const CONFIG = `actions:
  - name: Build
    triggers:
      push: { branches: [main, "feature/*"] }
      pull_request: { branches: [main] }
    env: { FOO: bar }
    timeout: 5m
    steps:
      - run: echo build
  - name: Lint
    triggers:
      push: { branches: [main] }
    steps:
      - run: echo lint
  - name: Concurrent
    allow_concurrent_runs: true
    triggers:
      push: { branches: ["feature/*"] }
    stepz: typo
    steps:
      - run: echo concurrent
`;

describe('workflows (server)', () => {
  let server: RunningServer;
  let client: HearthClient;
  let gh: FakeGitHub;
  let repo: ReturnType<typeof gitRepo>;
  const dirs: string[] = [];
  let executorRegistered = false;

  before(async () => {
    gh = await startFakeGitHub();
    const dataDir = mkdtempSync(join(tmpdir(), 'hearth-wf-server-'));
    dirs.push(dataDir);
    server = await startServer({ dataDir, host: '127.0.0.1', port: 0, cache: false, logger: pino({ level: 'silent' }) });
    client = new HearthClient({ baseUrl: server.url });
    repo = gitRepo({ 'hearth.yaml': CONFIG, 'README': 'hi\n' });
    dirs.push(repo.dir);
    gh.addRepo('acme/app', repo.dir);
  });
  after(async () => {
    await server.close();
    await gh.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const link = (extra: Record<string, unknown> = {}) =>
    client.post<{ repo_id: string }>('/api/v1/LinkRepository', {
      repo_url: repo.url,
      full_name: 'acme/app',
      default_branch: 'main',
      webhook_secret: SECRET,
      access_token: TOKEN,
      github_api_url: gh.url,
      ...extra,
    });
  const push = (branch: string, sha: string, opts: { deliveryId?: string; secret?: string; deleted?: boolean } = {}) =>
    deliverWebhook(server.url, 'push', pushPayload({ fullName: 'acme/app', cloneUrl: repo.url, ref: `refs/heads/${branch}`, after: sha, deleted: opts.deleted }), {
      secret: opts.secret ?? SECRET,
      deliveryId: opts.deliveryId,
    });
  const processed = async (deliveryId: string): Promise<WebhookDelivery> => {
    for (let i = 0; i < 200; i++) {
      const d = await client.post<WebhookDelivery>('/api/v1/GetWebhookDelivery', { delivery_id: deliveryId });
      if (d.state === 'done' || d.state === 'failed') return d;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`delivery ${deliveryId} was not processed`);
  };
  const runsFor = async (sha: string) =>
    (await client.post<{ invocations: Invocation[] }>('/api/v1/ListWorkflowRuns', { commit_sha: sha })).invocations;
  // Statuses are posted asynchronously after each change: before asserting that none came, wait a moment.
  const settle = () => new Promise((r) => setTimeout(r, 300));
  const lease = async (): Promise<Task | null> => {
    if (!executorRegistered) {
      await client.registerExecutor({ executor_id: 'unit-exec', hostname: 'h', os: 'linux', arch: 'amd64', max_runners: 1, version: 't' });
      executorRegistered = true;
    }
    const { task } = await client.lease({ executor_id: 'unit-exec', idle_runner_keys: [], active_invocations: [], free_slots: 1, wait_ms: 0 });
    return task;
  };
  const cancelAll = async () => {
    const all = (await client.post<{ invocations: Invocation[] }>('/api/v1/ListWorkflowRuns', { limit: 1000 })).invocations;
    for (const inv of all) if (inv.status === 'queued' || inv.status === 'running') await client.cancelInvocation(inv.invocation_id);
    for (const inv of all) {
      if (inv.status !== 'running') continue;
      await client.updateRun({
        executor_id: 'unit-exec',
        invocation_id: inv.invocation_id,
        attempt: inv.attempt,
        event: { type: 'finished', status: 'cancelled', exit_code: null, reason: 'cancelled', failed_step: null, timings: {} },
      }).catch(() => {});
    }
  };

  test('link: a repository is linked once per URL; nothing returns its token or secrets', async () => {
    const { repo_id } = await link();
    assert.match(repo_id, /^repo-[0-9a-f]+$/);
    assert.equal((await link()).repo_id, repo_id, 'relinking the same URL updates it');
    await client.post('/api/v1/SetRepositorySecret', { repo_url: 'acme/app', name: 'MY_SECRET', value: 's3cr3t-value' });
    await client.post('/api/v1/SetRepositorySecret', { repo_id, name: 'OTHER', value: 'x' });
    await client.post('/api/v1/DeleteRepositorySecret', { repo_id, name: 'OTHER' });
    const names = await client.post<{ names: string[] }>('/api/v1/ListRepositorySecrets', { repo_url: repo.url });
    assert.deepEqual(names.names, ['MY_SECRET']);
    const listed = await fetch(`${server.url}/api/v1/ListRepositories`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const text = await listed.text();
    assert.ok(!text.includes(TOKEN) && !text.includes(SECRET) && !text.includes('s3cr3t-value'), text);
    const body = JSON.parse(text) as { repositories: Array<{ full_name: string; has_access_token: boolean; secret_names: string[]; webhook_url: string }> };
    assert.equal(body.repositories.length, 1);
    assert.equal(body.repositories[0]!.full_name, 'acme/app');
    assert.equal(body.repositories[0]!.has_access_token, true);
    assert.deepEqual(body.repositories[0]!.secret_names, ['MY_SECRET']);
    assert.equal(body.repositories[0]!.webhook_url, `${server.url}/webhooks/github`);
    // A URL that says nothing about owner/name needs full_name.
    await assert.rejects(
      client.post('/api/v1/LinkRepository', { repo_url: 'file:///tmp/x', default_branch: 'main', webhook_secret: 's' }),
      (e: Error & { httpStatus?: number }) => e.httpStatus === 400 && /full_name/.test(e.message),
    );
    const bad = await failure(client.post('/api/v1/SetRepositorySecret', { repo_id, name: 'bad-name', value: 'x' }));
    assert.equal(bad.httpStatus, 400);
  });

  test('webhook: a bad or missing signature is 401 and starts nothing; an unknown repo is 404', async () => {
    const sha = repo.commit({ 'a.txt': 'sig\n' }, 'main');
    const badSig = await push('main', sha, { secret: 'wrong' });
    assert.equal(badSig.status, 401);
    assert.equal(badSig.body.code, 'unauthenticated');
    const noSig = await deliverWebhook(server.url, 'push', pushPayload({ fullName: 'acme/app', cloneUrl: repo.url, ref: 'refs/heads/main', after: sha }));
    assert.equal(noSig.status, 401);
    const unknown = await deliverWebhook(server.url, 'push', pushPayload({ fullName: 'acme/other', cloneUrl: 'file:///nowhere', ref: 'refs/heads/main', after: sha }), { secret: SECRET });
    assert.equal(unknown.status, 404);
    await settle();
    assert.deepEqual(await runsFor(sha), []);
    assert.deepEqual(gh.statusesFor(sha), []);
  });

  test('push: one run per matching action, Queued → Running → success statuses, secrets only in the leased task', async () => {
    const sha = repo.commit({ 'a.txt': 'push\n' }, 'main');
    const res = await push('main', sha, { deliveryId: 'd-push-1' });
    assert.equal(res.status, 202);
    assert.equal(res.body.status, 'queued');
    const d = await processed('d-push-1');
    assert.equal(d.state, 'done', d.outcome);
    assert.equal(d.invocation_ids.length, 2);
    assert.match(d.outcome, /started "Build", "Lint"/);
    const runs = await runsFor(sha);
    const build = runs.find((r) => r.workflow?.action_name === 'Build')!;
    assert.equal(build.status, 'queued');
    assert.equal(build.branch, 'main');
    assert.equal(build.trusted, true);
    assert.deepEqual(build.workflow, { repo_id: build.workflow!.repo_id, action_name: 'Build', event: 'push', pull_request_number: null, superseded_by: null });
    await gh.waitForStatus((s) => s.sha === sha && s.context === 'Build' && s.description === 'Queued');
    const queued = gh.statusesFor(sha, 'Build')[0]!;
    assert.equal(queued.state, 'pending');
    assert.equal(queued.target_url, build.url);
    assert.equal(queued.authorization, `token ${TOKEN}`);

    // The stored run holds no secret; the leased task does, masked.
    const row = await server.ctx.runs.row(build.invocation_id);
    assert.ok(!row.spec_json.includes('s3cr3t-value') && !row.spec_json.includes(TOKEN));
    const tasks = [await lease(), await lease()];
    const task = tasks.find((t) => t?.invocation_id === build.invocation_id)!;
    assert.ok(task, 'the Build run is leased');
    assert.equal(task.env.MY_SECRET, 's3cr3t-value');
    assert.equal(task.env.FOO, 'bar');
    assert.equal(task.env.HEARTH_ACTION_NAME, 'Build');
    assert.equal(task.env.GIT_REPO_DEFAULT_BRANCH, 'main');
    assert.ok(task.secret_values.includes('s3cr3t-value') && task.secret_values.includes(TOKEN));
    assert.equal(task.repo_token, TOKEN);
    assert.equal(task.trusted, true);
    assert.equal(task.clean, false);
    assert.equal(task.pull_request, null);
    assert.equal(task.timeout_ms, 300_000);
    assert.deepEqual(task.steps, [{ run: 'echo build' }]);
    // Config warnings are printed at the top of every run's log.
    assert.deepEqual(task.notes, ['warning: hearth.yaml:19:5: actions[2].stepz is not a known field and is ignored (did you mean "steps"?)']);
    assert.equal(task.commit_sha, sha);
    await gh.waitForStatus((s) => s.sha === sha && s.context === 'Build' && s.description === 'Running');
    await client.updateRun({
      executor_id: 'unit-exec',
      invocation_id: task.invocation_id,
      attempt: task.attempt,
      event: { type: 'finished', status: 'succeeded', exit_code: 0, reason: 'all steps succeeded', failed_step: null, timings: {} },
    });
    const done = await gh.waitForStatus((s) => s.sha === sha && s.context === 'Build' && s.state === 'success');
    assert.match(done.description, /^Succeeded in \d/);
    assert.deepEqual(
      gh.statusesFor(sha, 'Build').map((s) => `${s.state} ${s.description.replace(/ in .*/, '')}`),
      ['pending Queued', 'pending Running', 'success Succeeded'],
    );

    // A redelivery of the same X-GitHub-Delivery starts nothing more.
    const again = await push('main', sha, { deliveryId: 'd-push-1' });
    assert.equal(again.status, 200);
    assert.equal(again.body.status, 'duplicate');
    await settle();
    assert.equal((await runsFor(sha)).length, 2);
    await cancelAll();
  });

  test('a branch deletion, and a push no action matches, start nothing', async () => {
    const del = await push('feature/x', '0'.repeat(40), { deliveryId: 'd-del', deleted: true });
    assert.equal(del.status, 202);
    assert.equal(del.body.status, 'ignored');
    assert.match((await processed('d-del')).outcome, /deleted/);
    const sha = repo.commit({ 'a.txt': 'other\n' }, 'other');
    await push('other', sha, { deliveryId: 'd-other' });
    const d = await processed('d-other');
    assert.match(d.outcome, /no action in hearth.yaml matches the push to other/);
    assert.deepEqual(await runsFor(sha), []);
  });

  test('a malformed hearth.yaml posts one error status naming file:line:col and starts nothing', async () => {
    const sha = repo.commit({ 'hearth.yaml': 'actions:\n  - name: Broken\n    steps: "not a list"\n' }, 'main');
    await push('main', sha, { deliveryId: 'd-bad-config' });
    const d = await processed('d-bad-config');
    assert.match(d.outcome, /invalid config: hearth\.yaml:3:12/);
    await settle();
    const statuses = gh.statusesFor(sha);
    assert.equal(statuses.length, 1, JSON.stringify(statuses));
    assert.equal(statuses[0]!.state, 'error');
    assert.equal(statuses[0]!.context, 'hearth');
    assert.match(statuses[0]!.description, /^hearth\.yaml:3:12: /);
    assert.equal(statuses[0]!.target_url, `${server.url}/workflows/deliveries/d-bad-config`);
    assert.match(await (await fetch(statuses[0]!.target_url)).text(), /hearth\.yaml:3:12/);
    assert.deepEqual(await runsFor(sha), []);
    repo.commit({ 'hearth.yaml': CONFIG }, 'main');
  });

  test('a repo without config gets the default action on default-branch pushes only', async () => {
    execFileSync('git', ['rm', '-q', 'hearth.yaml'], { cwd: repo.dir });
    const noConfig = repo.commit({}, 'main');
    await push('main', noConfig, { deliveryId: 'd-noconfig' });
    const d = await processed('d-noconfig');
    assert.match(d.outcome, /started "Test all targets"/);
    const [run] = await runsFor(noConfig);
    assert.deepEqual(run!.steps, [{ run: 'bazel test //...' }]);
    const side = repo.commit({}, 'side');
    await push('side', side, { deliveryId: 'd-noconfig-side' });
    assert.match((await processed('d-noconfig-side')).outcome, /no action in the default config matches/);
    repo.commit({ 'hearth.yaml': CONFIG }, 'main');
    await cancelAll();
  });

  test('pull requests: same-repo is trusted with merge info; a fork is untrusted, clean, without secrets or token', async () => {
    repo.commit({}, 'main');
    const head = repo.commit({ 'b.txt': 'pr\n' }, 'topic');
    const same = await deliverWebhook(
      server.url,
      'pull_request',
      pullRequestPayload({
        action: 'opened',
        number: 3,
        base: { fullName: 'acme/app', cloneUrl: repo.url, branch: 'main' },
        head: { fullName: 'acme/app', cloneUrl: repo.url, branch: 'topic', sha: head },
      }),
      { secret: SECRET, deliveryId: 'd-pr-same' },
    );
    assert.equal(same.status, 202);
    assert.match((await processed('d-pr-same')).outcome, /pull request #3 opened: topic → main.*started "Build"$/);
    const t1 = (await lease())!;
    assert.equal(t1.trusted, true);
    assert.equal(t1.env.MY_SECRET, 's3cr3t-value');
    assert.deepEqual(t1.pull_request, { number: 3, head_repo_url: repo.url, head_sha: head, head_branch: 'topic', base_branch: 'main', merge_with_base: true });
    assert.equal(t1.env.GIT_BASE_BRANCH, 'main');

    // The fork: its own repository (the config is read from it, at the head commit).
    const fork = gitRepo({ 'hearth.yaml': CONFIG, 'fork.txt': 'x\n' });
    dirs.push(fork.dir);
    gh.addRepo('mallory/app', fork.dir);
    const forkHead = fork.commit({ 'evil.txt': 'x\n' }, 'main');
    await deliverWebhook(
      server.url,
      'pull_request',
      pullRequestPayload({
        action: 'synchronize',
        number: 4,
        base: { fullName: 'acme/app', cloneUrl: repo.url, branch: 'main' },
        head: { fullName: 'mallory/app', cloneUrl: fork.url, branch: 'main', sha: forkHead },
      }),
      { secret: SECRET, deliveryId: 'd-pr-fork' },
    );
    assert.match((await processed('d-pr-fork')).outcome, /from fork mallory\/app.*started "Build"$/);
    const [forkRun] = await runsFor(forkHead);
    assert.equal(forkRun!.trusted, false);
    const t2 = (await lease())!;
    assert.equal(t2.invocation_id, forkRun!.invocation_id);
    assert.equal(t2.trusted, false);
    assert.equal(t2.clean, true);
    assert.equal(t2.repo_token, null);
    assert.equal(t2.env.MY_SECRET, undefined);
    assert.ok(!t2.secret_values.includes('s3cr3t-value'));
    assert.equal(t2.pull_request?.head_repo_url, fork.url);
    assert.match(t2.notes!.join('\n'), /untrusted run/);
    // Statuses go to the base repository, on the head commit.
    await gh.waitForStatus((s) => s.sha === forkHead && s.owner === 'acme' && s.description === 'Running');

    // Title edits do nothing; `closed` matches no default type.
    const edited = await deliverWebhook(
      server.url,
      'pull_request',
      pullRequestPayload({ action: 'edited', number: 3, base: { fullName: 'acme/app', cloneUrl: repo.url, branch: 'main' }, head: { fullName: 'acme/app', cloneUrl: repo.url, branch: 'topic', sha: head } }),
      { secret: SECRET, deliveryId: 'd-pr-edit' },
    );
    assert.equal(edited.body.status, 'ignored');
    await cancelAll();
  });

  test('superseding: a newer push to a branch cancels older runs of the action there, not on the default branch', async () => {
    const s1 = repo.commit({ 'c.txt': '1\n' }, 'feature/a');
    await push('feature/a', s1, { deliveryId: 'd-sup-1' });
    await processed('d-sup-1');
    const s2 = repo.commit({ 'c.txt': '2\n' }, 'feature/a');
    await push('feature/a', s2, { deliveryId: 'd-sup-2' });
    await processed('d-sup-2');
    const [old, old2] = (await runsFor(s1)).sort((a, b) => a.name.localeCompare(b.name));
    const [fresh] = await runsFor(s2);
    assert.equal(old!.status, 'cancelled');
    assert.equal(old!.workflow?.superseded_by, s2);
    assert.equal(fresh!.status, 'queued');
    const st = await gh.waitForStatus((s) => s.sha === s1 && s.state === 'error');
    assert.equal(st.description, `Cancelled: superseded by ${s2.slice(0, 12)}`);
    assert.equal(st.context, 'Build');
    // allow_concurrent_runs: the other action's older run keeps going.
    assert.equal(old2!.workflow?.action_name, 'Concurrent');
    assert.equal((await client.getInvocation(old2!.invocation_id)).status, 'queued');

    const m1 = repo.commit({ 'c.txt': 'm1\n' }, 'main');
    await push('main', m1, { deliveryId: 'd-sup-m1' });
    await processed('d-sup-m1');
    const m2 = repo.commit({ 'c.txt': 'm2\n' }, 'main');
    await push('main', m2, { deliveryId: 'd-sup-m2' });
    await processed('d-sup-m2');
    assert.ok((await runsFor(m1)).every((r) => r.status === 'queued'), 'default-branch runs are never superseded');
    await cancelAll();
  });

  test('ExecuteWorkflow: resolves a branch through the API, runs the named actions, clean on request; errors say what to fix', async () => {
    const sha = repo.commit({ 'd.txt': 'manual\n' }, 'main');
    const res = await client.post<{ commit_sha: string; branch: string; action_runs: Array<{ action_name: string; invocation_id: string }> }>(
      '/api/v1/ExecuteWorkflow',
      { repo_url: repo.url, ref: 'main', action_names: ['Lint'], clean: true, env: { FOO: 'override' } },
    );
    assert.equal(res.commit_sha, sha);
    assert.equal(res.branch, 'main');
    assert.deepEqual(res.action_runs.map((r) => r.action_name), ['Lint']);
    const t = (await lease())!;
    assert.equal(t.invocation_id, res.action_runs[0]!.invocation_id);
    assert.equal(t.clean, true);
    assert.equal(t.env.FOO, 'override');
    assert.equal(t.env.HEARTH_TRIGGER_EVENT, 'manual');
    const bySha = await client.post<{ action_runs: unknown[] }>('/api/v1/ExecuteWorkflow', { repo_url: 'acme/app', ref: sha });
    assert.equal(bySha.action_runs.length, 3, 'manual dispatch matches every action');
    const unknown = await failure(client.post('/api/v1/ExecuteWorkflow', { repo_url: repo.url, ref: 'main', action_names: ['Nope'] }));
    assert.equal(unknown.httpStatus, 400);
    assert.match(unknown.message, /no action named "Nope".*actions: "Build", "Lint"/);
    const noRef = await failure(client.post('/api/v1/ExecuteWorkflow', { repo_url: repo.url, ref: 'no-such-branch' }));
    assert.equal(noRef.httpStatus, 400);
    assert.match(noRef.message, /no-such-branch.*not found/);
    const notLinked = await failure(client.post('/api/v1/ExecuteWorkflow', { repo_url: 'https://github.com/x/y', ref: 'main' }));
    assert.equal(notLinked.httpStatus, 404);
    await cancelAll();
  });

  test('status posting retries transient GitHub failures', async () => {
    const sha = repo.commit({ 'e.txt': 'retry\n' }, 'main');
    gh.failStatuses(2);
    await push('main', sha, { deliveryId: 'd-retry' });
    await processed('d-retry');
    await gh.waitForStatus((s) => s.sha === sha && s.context === 'Build' && s.description === 'Queued', 20_000);
    await cancelAll();
  });

  test('unlink removes the repository and its secrets; its webhooks are then 404', async () => {
    await client.post('/api/v1/UnlinkRepository', { repo_url: 'acme/app' });
    const list = await client.post<{ repositories: unknown[] }>('/api/v1/ListRepositories', {});
    assert.equal(list.repositories.length, 0);
    const sha = repo.commit({ 'f.txt': 'gone\n' }, 'main');
    assert.equal((await push('main', sha)).status, 404);
  });
});
