import type { Command } from 'commander';
import type {
  ExecuteWorkflowRequest,
  ExecuteWorkflowResponse,
  Invocation,
  LinkRepositoryRequest,
  LinkRepositoryResponse,
  ListRepositoriesResponse,
  ListRepositorySecretsResponse,
} from '@hearth/api';

/**
 * `hearth workflows …`: link GitHub repositories, manage their secrets, start runs by hand.
 * Tokens and secret values can come from stdin (`-`) so they stay out of shell history and `ps`.
 */
export function registerWorkflowsCommand(program: Command): void {
  const wf = program
    .command('workflows')
    .description('CI from hearth.yaml / buildbuddy.yaml on GitHub pushes and pull requests: link repos, set secrets, run by hand.');
  const serverOption = (cmd: Command) => cmd.option('--server <url>', 'hearth server (default: $HEARTH_SERVER or http://127.0.0.1:8080)');

  serverOption(
    wf
      .command('link')
      .description('Link a GitHub repository: its webhook (POST <server>/webhooks/github, push + pull_request) starts runs.')
      .requiredOption('--repo <url>', 'clone URL runners fetch from, e.g. https://github.com/acme/app.git')
      .requiredOption('--default-branch <name>', 'the repository default branch')
      .requiredOption('--webhook-secret <secret>', 'the secret set on the GitHub webhook ("-" reads it from stdin)')
      .option('--token <token>', 'GitHub token for statuses, config and cloning ("-" reads it from stdin)')
      .option('--full-name <owner/name>', 'GitHub owner/name (default: from --repo)')
      .option('--github-api-url <url>', 'GitHub API base URL (GitHub Enterprise: https://HOST/api/v3)'),
  ).action(async (opts) => {
    const client = await clientFor(opts.server);
    if (opts.webhookSecret === '-' && opts.token === '-') throw new Error('only one of --webhook-secret and --token can be read from stdin');
    const req: LinkRepositoryRequest = {
      repo_url: opts.repo,
      default_branch: opts.defaultBranch,
      webhook_secret: opts.webhookSecret === '-' ? await readStdin() : opts.webhookSecret,
      ...(opts.token !== undefined ? { access_token: opts.token === '-' ? await readStdin() : opts.token } : {}),
      ...(opts.fullName ? { full_name: opts.fullName } : {}),
      ...(opts.githubApiUrl ? { github_api_url: opts.githubApiUrl } : {}),
    };
    const res = await client.post<LinkRepositoryResponse>('/api/v1/LinkRepository', req);
    process.stdout.write(`linked ${opts.repo} as ${res.repo_id}\n  point the GitHub webhook at ${client.baseUrl}/webhooks/github (content type application/json, events: push, pull_request)\n`);
  });

  serverOption(wf.command('list').description('List linked repositories (never shows tokens or secret values).')).action(async (opts) => {
    const client = await clientFor(opts.server);
    const res = await client.post<ListRepositoriesResponse>('/api/v1/ListRepositories', {});
    if (res.repositories.length === 0) process.stdout.write('no linked repositories\n');
    for (const r of res.repositories) {
      process.stdout.write(
        `${r.repo_id}  ${r.full_name ?? '-'}  ${r.repo_url}  default branch ${r.default_branch}  token: ${r.has_access_token ? 'yes' : 'no'}  secrets: ${r.secret_names.join(', ') || '-'}\n`,
      );
    }
  });

  serverOption(wf.command('unlink').description('Unlink a repository and delete its secrets.').argument('<repo>', 'clone URL, owner/name or repo id')).action(
    async (repo: string, opts) => {
      const client = await clientFor(opts.server);
      await client.post('/api/v1/UnlinkRepository', selector(repo));
      process.stdout.write(`unlinked ${repo}\n`);
    },
  );

  const secrets = wf.command('secrets').description("A linked repository's secrets: env vars of trusted runs, masked in logs.");
  serverOption(
    secrets
      .command('set')
      .description('Set a secret (VALUE omitted or "-": read from stdin).')
      .argument('<repo>', 'clone URL, owner/name or repo id')
      .argument('<name>', 'env var name, e.g. DEPLOY_KEY')
      .argument('[value]', 'the value, or "-" for stdin'),
  ).action(async (repo: string, name: string, value: string | undefined, opts) => {
    const client = await clientFor(opts.server);
    const v = value === undefined || value === '-' ? await readStdin() : value;
    await client.post('/api/v1/SetRepositorySecret', { ...selector(repo), name, value: v });
    process.stdout.write(`secret ${name} set for ${repo}\n`);
  });
  serverOption(secrets.command('list').description('List secret names.').argument('<repo>', 'clone URL, owner/name or repo id')).action(
    async (repo: string, opts) => {
      const client = await clientFor(opts.server);
      const res = await client.post<ListRepositorySecretsResponse>('/api/v1/ListRepositorySecrets', selector(repo));
      process.stdout.write(res.names.length ? `${res.names.join('\n')}\n` : 'no secrets\n');
    },
  );
  serverOption(
    secrets.command('delete').description('Delete a secret.').argument('<repo>', 'clone URL, owner/name or repo id').argument('<name>', 'secret name'),
  ).action(async (repo: string, name: string, opts) => {
    const client = await clientFor(opts.server);
    await client.post('/api/v1/DeleteRepositorySecret', { ...selector(repo), name });
    process.stdout.write(`secret ${name} deleted from ${repo}\n`);
  });

  serverOption(
    wf
      .command('run')
      .description("Run a linked repository's workflow actions by hand at a branch, tag or commit.")
      .requiredOption('--repo <url>', 'clone URL or owner/name of a linked repository')
      .requiredOption('--ref <ref>', 'branch, refs/tags/NAME or full commit sha')
      .option('--action <name>', 'run only this action (repeatable; default: all)', collect, [])
      .option('--clean', 'start from a cold runner')
      .option('--env <K=V>', 'env var for the steps, overriding the action (repeatable)', collect, [])
      .option('--wait', 'wait for the runs to end; exit non-zero if any did not succeed'),
  ).action(async (opts) => {
    const client = await clientFor(opts.server);
    const env: Record<string, string> = {};
    for (const kv of opts.env as string[]) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new Error(`--env wants NAME=VALUE, got ${JSON.stringify(kv)}`);
      env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const req: ExecuteWorkflowRequest = {
      repo_url: opts.repo,
      ref: opts.ref,
      ...((opts.action as string[]).length ? { action_names: opts.action } : {}),
      ...(opts.clean ? { clean: true } : {}),
      ...(Object.keys(env).length ? { env } : {}),
    };
    const res = await client.post<ExecuteWorkflowResponse>('/api/v1/ExecuteWorkflow', req);
    process.stdout.write(`commit ${res.commit_sha}${res.branch ? ` (${res.branch})` : ''}\n`);
    for (const r of res.action_runs) process.stdout.write(`  ${r.action_name}: ${r.url}\n`);
    if (!opts.wait) return;
    let failed = 0;
    for (const r of res.action_runs) {
      const inv = await waitForEnd(client, r.invocation_id);
      process.stdout.write(`  ${r.action_name}: ${inv.status}${inv.exit_code === null ? '' : ` (exit ${inv.exit_code})`} ${inv.status_reason}\n`);
      if (inv.status !== 'succeeded') failed++;
    }
    if (failed > 0) process.exitCode = 1;
  });
}

function collect(v: string, acc: string[]): string[] {
  return [...acc, v];
}

function selector(repo: string): { repo_id: string } | { repo_url: string } {
  return /^repo-[0-9a-f]+$/.test(repo) ? { repo_id: repo } : { repo_url: repo };
}

async function clientFor(server: string | undefined) {
  const { HearthClient } = await import('@hearth/api');
  return new HearthClient({ baseUrl: server ?? process.env.HEARTH_SERVER ?? 'http://127.0.0.1:8080' });
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('reading the value from stdin (end with Ctrl-D)\n');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(Buffer.from(c));
  // One trailing newline (from echo or a file) is not part of the value.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function waitForEnd(client: Awaited<ReturnType<typeof clientFor>>, id: string): Promise<Invocation> {
  for (;;) {
    const inv = await client.getInvocation(id);
    if (!['queued', 'running'].includes(inv.status)) return inv;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
