/**
 * Issue 4 acceptance: workflows end to end. A real `hearth up` (server + executor), real git
 * repositories (file:// URLs), the real @octokit clients talking to a fake GitHub that serves those
 * repositories' files, signed webhooks, and real Bazel for the first case. The other cases use tiny
 * shell actions to stay fast.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { HearthClient, Invocation, WebhookDelivery } from '@hearth/api';
import { type FakeGitHub, deliverWebhook, pullRequestPayload, pushPayload, startFakeGitHub } from './fakeGithub.ts';
import { cleanup, fullLog, git, makeRepo, sleep, startHearth, startNode, tempDir, waitForStatus } from './harness.ts';

const SECRET = 'e2e-webhook-secret';

const SMALL_CONFIG = `actions:
  - name: Check
    triggers:
      push: { branches: ["*", "!slow/*"] }
      pull_request: { branches: [main] }
    steps:
      - run: 'echo "secret=\${MY_SECRET:-unset} token=\${REPO_TOKEN:-none}"; for f in *.txt; do echo "file $f: $(cat $f)"; done'
  - name: Slow
    triggers:
      push: { branches: ["slow/*"] }
    steps:
      - run: echo slow-started; sleep 600
`;

describe('workflows', () => {
  let node: Awaited<ReturnType<typeof startNode>>;
  let client: HearthClient;
  let gh: FakeGitHub;
  const dirs: string[] = [];
  /** A small repo (shell actions) linked through the CLI, with a secret. */
  let small: ReturnType<typeof makeRepo>;

  before(async () => {
    [node, gh] = await Promise.all([startNode(), startFakeGitHub()]);
    client = node.client;
    small = makeRepo(null, { 'hearth.yaml': SMALL_CONFIG, 'base.txt': 'from-base\n' });
    dirs.push(small.dir);
    gh.addRepo('acme/small', small.dir);
    const cli = (...args: string[]) => startHearth(['workflows', ...args, '--server', node.url]);
    const linked = cli('link', '--repo', small.url, '--full-name', 'acme/small', '--default-branch', 'main', '--webhook-secret', SECRET, '--token', 'tok-small', '--github-api-url', gh.url);
    assert.equal(await linked.exited, 0, linked.output());
    const secret = cli('secrets', 'set', 'acme/small', 'MY_SECRET', 'hunter2-e2e');
    assert.equal(await secret.exited, 0, secret.output());
  });
  after(async () => {
    await node.stop();
    await gh.close();
    for (const d of [...dirs, node.dataDir]) cleanup(d);
  });

  const deliver = (event: string, payload: unknown, deliveryId?: string, secret = SECRET) => deliverWebhook(node.url, event, payload, { secret, deliveryId });
  const pushSmall = (branch: string, sha: string, deliveryId?: string) =>
    deliver('push', pushPayload({ fullName: 'acme/small', cloneUrl: small.url, ref: `refs/heads/${branch}`, after: sha }), deliveryId);
  /** Waits until the delivery is processed; returns it. */
  const processed = async (deliveryId: string): Promise<WebhookDelivery> => {
    for (let i = 0; i < 400; i++) {
      const d = await client.post<WebhookDelivery>('/api/v1/GetWebhookDelivery', { delivery_id: deliveryId });
      if (d.state === 'done' || d.state === 'failed') return d;
      await sleep(25);
    }
    throw new Error(`delivery ${deliveryId} was not processed`);
  };
  const runsFor = async (sha: string): Promise<Invocation[]> =>
    (await client.post<{ invocations: Invocation[] }>('/api/v1/ListWorkflowRuns', { commit_sha: sha })).invocations;
  const finished = (id: string, timeoutMs = 60_000) => waitForStatus(client, id, (i) => i.status !== 'queued' && i.status !== 'running', timeoutMs);
  /** Commits `files` on `branch` of the small repo (creating it from `from`), returns the sha. */
  const commit = (branch: string, files: Record<string, string>, from = 'main') => {
    const exists = git(small.dir, 'branch', '--list', branch) !== '';
    git(small.dir, 'checkout', '-q', ...(exists ? [branch] : ['-b', branch, from]));
    for (const [p, c] of Object.entries(files)) execFileSync('tee', [`${small.dir}/${p}`], { input: c, stdio: ['pipe', 'ignore', 'inherit'] });
    git(small.dir, 'add', '-A');
    git(small.dir, 'commit', '-q', '-m', `on ${branch}`);
    const sha = git(small.dir, 'rev-parse', 'HEAD');
    git(small.dir, 'checkout', '-q', 'main');
    return sha;
  };

  test('a signed push runs real Bazel and GitHub gets Queued → Running → success for the commit', async () => {
    const hello = makeRepo('hello', {
      'hearth.yaml': 'actions:\n  - name: Test\n    triggers:\n      push: { branches: [main] }\n    steps:\n      - run: bazel test //...\n',
    });
    dirs.push(hello.dir);
    gh.addRepo('acme/hello', hello.dir);
    await client.post('/api/v1/LinkRepository', {
      repo_url: hello.url,
      full_name: 'acme/hello',
      default_branch: 'main',
      webhook_secret: SECRET,
      access_token: 'tok-hello',
      github_api_url: gh.url,
    });
    const res = await deliver('push', pushPayload({ fullName: 'acme/hello', cloneUrl: hello.url, ref: 'refs/heads/main', after: hello.sha }), 'hello-push');
    assert.equal(res.status, 202);
    const d = await processed('hello-push');
    assert.equal(d.invocation_ids.length, 1, d.outcome);
    const inv = await finished(d.invocation_ids[0]!, 180_000);
    assert.equal(inv.status, 'succeeded', inv.status_reason);
    assert.match(await fullLog(client, inv.invocation_id), /Executed \d+ out of 2 tests: 2 tests pass/);
    const final = await gh.waitForStatus((s) => s.sha === hello.sha && s.state !== 'pending');
    const history = gh.statusesFor(hello.sha);
    assert.deepEqual(
      history.map((s) => [s.state, s.description.replace(/ in .*/, ''), s.context, s.target_url]),
      [
        ['pending', 'Queued', 'Test', inv.url],
        ['pending', 'Running', 'Test', inv.url],
        ['success', 'Succeeded', 'Test', inv.url],
      ],
    );
    assert.match(final.description, /^Succeeded in \d/);
    assert.equal(final.authorization, 'token tok-hello');
    assert.match(await (await fetch(inv.url)).text(), /succeeded/);
  });

  test('a trusted push gets the repo secret (masked in the log)', async () => {
    const sha = commit('feature/secret', { 'head.txt': 'pushed\n' });
    await pushSmall('feature/secret', sha, 'small-push');
    const [id] = (await processed('small-push')).invocation_ids;
    const inv = await finished(id!);
    assert.equal(inv.status, 'succeeded', inv.status_reason);
    assert.equal(inv.trusted, true);
    const log = await fullLog(client, inv.invocation_id);
    assert.match(log, /secret=\*\*\* token=\*\*\*/);
    assert.ok(!log.includes('hunter2-e2e') && !log.includes('tok-small'));
    await gh.waitForStatus((s) => s.sha === sha && s.state === 'success' && s.context === 'Check');
  });

  test('a private repository is cloned over HTTP with the linked token, never with a wrong one', async () => {
    const priv = makeRepo(null, {
      'hearth.yaml': 'actions:\n  - name: Private\n    triggers:\n      push: { branches: [main] }\n    steps:\n      - run: cat private.txt\n',
      'private.txt': 'private-content\n',
    });
    dirs.push(priv.dir);
    gh.addRepo('acme/private', priv.dir, { token: 'tok-private' });
    const url = gh.cloneUrl('acme/private');
    const link = (token: string) =>
      client.post('/api/v1/LinkRepository', { repo_url: url, full_name: 'acme/private', default_branch: 'main', webhook_secret: SECRET, access_token: token, github_api_url: gh.url });
    await link('tok-private');
    await deliver('push', pushPayload({ fullName: 'acme/private', cloneUrl: url, ref: 'refs/heads/main', after: priv.sha }), 'private-push');
    const [id] = (await processed('private-push')).invocation_ids;
    const inv = await finished(id!);
    assert.equal(inv.status, 'succeeded', inv.status_reason);
    assert.match(await fullLog(client, inv.invocation_id), /private-content/);
    assert.equal(gh.gitAuthFailures, 0);
    // A revoked token: git is refused, and the run fails at git sync.
    await link('tok-revoked');
    const res = await client.post<{ action_runs: Array<{ invocation_id: string }> }>('/api/v1/ExecuteWorkflow', { repo_url: url, ref: priv.sha, clean: true });
    const denied = await finished(res.action_runs[0]!.invocation_id);
    assert.equal(denied.status, 'failed');
    assert.match(denied.status_reason, /not found/);
    assert.ok(gh.gitAuthFailures > 0);
  });

  test('a pull request builds the merge of its head with the base branch', async () => {
    const head = commit('topic', { 'head.txt': 'from-head\n' });
    commit('main', { 'later.txt': 'base-moved-on\n' });
    const payload = pullRequestPayload({
      action: 'opened',
      number: 11,
      base: { fullName: 'acme/small', cloneUrl: small.url, branch: 'main' },
      head: { fullName: 'acme/small', cloneUrl: small.url, branch: 'topic', sha: head },
    });
    await deliver('pull_request', payload, 'pr-merge');
    const [id] = (await processed('pr-merge')).invocation_ids;
    const inv = await finished(id!);
    assert.equal(inv.status, 'succeeded', inv.status_reason);
    const log = await fullLog(client, inv.invocation_id);
    assert.match(log, /file base\.txt: from-base/);
    assert.match(log, /file head\.txt: from-head/);
    assert.match(log, /file later\.txt: base-moved-on/, 'the base branch tip is merged in');
    assert.match(log, /merged base branch main/);
    assert.match(log, /secret=\*\*\*/, 'a same-repo PR is trusted');
    await gh.waitForStatus((s) => s.sha === head && s.state === 'success');
  });

  test('a pull request from a fork runs without secrets and is marked untrusted', async () => {
    const fork = tempDir('fork');
    dirs.push(fork);
    git(fork, 'clone', '-q', small.dir, '.');
    git(fork, 'checkout', '-q', '-b', 'contrib');
    execFileSync('tee', [`${fork}/fork.txt`], { input: 'from-fork\n', stdio: ['pipe', 'ignore', 'inherit'] });
    git(fork, 'add', '-A');
    git(fork, 'commit', '-q', '-m', 'fork change');
    const head = git(fork, 'rev-parse', 'HEAD');
    gh.addRepo('mallory/small', fork);
    const payload = pullRequestPayload({
      action: 'opened',
      number: 12,
      base: { fullName: 'acme/small', cloneUrl: small.url, branch: 'main' },
      head: { fullName: 'mallory/small', cloneUrl: `file://${fork}`, branch: 'contrib', sha: head },
    });
    await deliver('pull_request', payload, 'pr-fork');
    const [id] = (await processed('pr-fork')).invocation_ids;
    const inv = await finished(id!);
    assert.equal(inv.status, 'succeeded', inv.status_reason);
    assert.equal(inv.trusted, false);
    const log = await fullLog(client, inv.invocation_id);
    assert.match(log, /secret=unset token=none/);
    assert.match(log, /file fork\.txt: from-fork/);
    assert.match(log, /file later\.txt: base-moved-on/, 'merged with the base branch from origin');
    assert.match(log, /untrusted run/);
    const st = await gh.waitForStatus((s) => s.sha === head && s.state === 'success');
    assert.equal(st.owner, 'acme', 'statuses go to the base repository');
  });

  test('a bad signature gets 401 and starts nothing', async () => {
    const sha = commit('feature/unsigned', { 'x.txt': 'x\n' });
    const res = await deliver('push', pushPayload({ fullName: 'acme/small', cloneUrl: small.url, ref: 'refs/heads/feature/unsigned', after: sha }), 'bad-sig', 'not-the-secret');
    assert.equal(res.status, 401);
    assert.equal(res.body.code, 'unauthenticated');
    await sleep(500);
    assert.deepEqual(await runsFor(sha), []);
    assert.deepEqual(gh.statusesFor(sha), []);
    const missing = await client.post<WebhookDelivery>('/api/v1/GetWebhookDelivery', { delivery_id: 'bad-sig' }).catch((e: Error) => e);
    assert.ok(missing instanceof Error, 'an unverified delivery is not even recorded');
  });

  test('a malformed hearth.yaml gets exactly one error status with file:line:col and no run', async () => {
    const sha = commit('feature/broken', { 'hearth.yaml': 'actions:\n  - name: Broken\n    timeout: [1]\n    steps:\n      - run: true\n' });
    await pushSmall('feature/broken', sha, 'broken-config');
    const d = await processed('broken-config');
    assert.match(d.outcome, /invalid config/);
    await sleep(500);
    const statuses = gh.statusesFor(sha);
    assert.equal(statuses.length, 1, JSON.stringify(statuses));
    assert.equal(statuses[0]!.state, 'error');
    assert.match(statuses[0]!.description, /hearth\.yaml:3:14/);
    assert.deepEqual(await runsFor(sha), []);
  });

  test('a branch deletion starts nothing; a redelivered X-GitHub-Delivery runs once', async () => {
    const del = await deliver('push', pushPayload({ fullName: 'acme/small', cloneUrl: small.url, ref: 'refs/heads/topic', after: '0'.repeat(40), deleted: true }), 'deletion');
    assert.equal(del.status, 202);
    assert.equal(del.body.status, 'ignored');
    const d = await processed('deletion');
    assert.deepEqual(d.invocation_ids, []);

    const sha = commit('feature/redeliver', { 'r.txt': 'r\n' });
    const answers = await Promise.all([pushSmall('feature/redeliver', sha, 'same-id'), pushSmall('feature/redeliver', sha, 'same-id')]);
    assert.deepEqual(answers.map((a) => a.body.status).sort(), ['duplicate', 'queued']);
    await processed('same-id');
    const again = await pushSmall('feature/redeliver', sha, 'same-id');
    assert.equal(again.body.status, 'duplicate');
    await sleep(300);
    assert.equal((await runsFor(sha)).length, 1);
  });

  test('a merge conflict fails the run naming both branches', async () => {
    commit('main', { 'conflict.txt': 'base version\n' });
    const head = commit('clash', { 'conflict.txt': 'head version\n' }, 'main~1');
    const payload = pullRequestPayload({
      action: 'synchronize',
      number: 13,
      base: { fullName: 'acme/small', cloneUrl: small.url, branch: 'main' },
      head: { fullName: 'acme/small', cloneUrl: small.url, branch: 'clash', sha: head },
    });
    await deliver('pull_request', payload, 'pr-conflict');
    const [id] = (await processed('pr-conflict')).invocation_ids;
    const inv = await finished(id!);
    assert.equal(inv.status, 'failed');
    assert.match(inv.status_reason, /merge conflict between clash and base branch main/);
    assert.match(inv.status_reason, /conflict\.txt/);
    const st = await gh.waitForStatus((s) => s.sha === head && s.state !== 'pending');
    assert.equal(st.state, 'failure');
    assert.match(st.description, /clash.*main/);
  });

  test('a newer push to a branch supersedes the running run of the action', async () => {
    const first = commit('slow/x', { 's.txt': '1\n' });
    await pushSmall('slow/x', first, 'slow-1');
    const [id1] = (await processed('slow-1')).invocation_ids;
    for (let i = 0; i < 300; i++) {
      const log = Buffer.from((await client.getLog({ invocation_id: id1! })).data, 'base64').toString();
      if (log.includes('slow-started')) break;
      await sleep(100);
    }
    const second = commit('slow/x', { 's.txt': '2\n' });
    await pushSmall('slow/x', second, 'slow-2');
    const [id2] = (await processed('slow-2')).invocation_ids;
    const old = await finished(id1!, 30_000);
    assert.equal(old.status, 'cancelled');
    assert.equal(old.workflow?.superseded_by, second);
    const st = await gh.waitForStatus((s) => s.sha === first && s.state === 'error');
    assert.match(st.description, /superseded by/);
    const fresh = await client.getInvocation(id2!);
    assert.ok(fresh.status === 'queued' || fresh.status === 'running', fresh.status);
    await client.cancelInvocation(id2!);
    await finished(id2!, 30_000);
  });

  test('manual runs: ExecuteWorkflow (and `hearth workflows run --wait`) run an action at a ref', async () => {
    const res = await client.post<{ commit_sha: string; action_runs: Array<{ action_name: string; invocation_id: string }> }>('/api/v1/ExecuteWorkflow', {
      repo_url: small.url,
      ref: 'main',
      action_names: ['Check'],
      env: { EXTRA: '1' },
    });
    assert.equal(res.commit_sha, git(small.dir, 'rev-parse', 'main'));
    const inv = await finished(res.action_runs[0]!.invocation_id);
    assert.equal(inv.status, 'succeeded', inv.status_reason);
    assert.equal(inv.workflow?.event, 'manual');

    const cli = startHearth(['workflows', 'run', '--server', node.url, '--repo', 'acme/small', '--ref', 'main', '--action', 'Check', '--clean', '--wait']);
    assert.equal(await cli.exited, 0, cli.output());
    assert.match(cli.output(), /Check: succeeded/);
    const id = /Check: \S+\/invocations\/(\S+)/.exec(cli.output())![1]!;
    const clean = await client.getInvocation(id);
    assert.equal(clean.runner?.kind, 'cold');
    assert.match(clean.runner!.reason, /clean run requested/);
  });
});
