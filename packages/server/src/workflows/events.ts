/**
 * GitHub webhook payloads → what hearth acts on. Pure: no I/O, so every rule (deletions ignored,
 * `edited` only for base changes, fork detection) is unit-tested on plain objects.
 */
import type { EmitterWebhookEvent } from '@octokit/webhooks';

type PushPayload = EmitterWebhookEvent<'push'>['payload'];
type PullRequestPayload = EmitterWebhookEvent<'pull_request'>['payload'];

/** How a payload names a repository; any of these may identify a linked repository. */
export interface RepositoryRef {
  clone_url: string | null;
  html_url: string | null;
  ssh_url: string | null;
  full_name: string | null;
  default_branch: string | null;
}

export interface PushTrigger {
  kind: 'push';
  repository: RepositoryRef;
  sha: string;
  /** Set for a branch push (no `refs/heads/`). */
  branch: string | null;
  /** Set for a tag push (no `refs/tags/`). */
  tag: string | null;
}

export interface PullRequestTrigger {
  kind: 'pull_request';
  /** The base repository: the one the PR targets and the webhook belongs to. */
  repository: RepositoryRef;
  action: string;
  number: number;
  headSha: string;
  headBranch: string;
  /** Clone URL of the head repository (the fork's when it is one); null if the fork was deleted. */
  headRepoUrl: string | null;
  headFullName: string | null;
  baseBranch: string;
  /** Head and base are the same repository. False for forks, and when the head repo is gone. */
  sameRepo: boolean;
}

export type Trigger = PushTrigger | PullRequestTrigger;

export type ParsedWebhook = { trigger: Trigger } | { ignored: string };

const ZERO_SHA = /^0+$/;
const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/i;

export function repositoryRef(repo: unknown): RepositoryRef | null {
  if (!repo || typeof repo !== 'object') return null;
  const r = repo as Record<string, unknown>;
  const str = (k: string) => (typeof r[k] === 'string' && r[k] !== '' ? (r[k] as string) : null);
  const ref: RepositoryRef = {
    clone_url: str('clone_url'),
    html_url: str('html_url'),
    ssh_url: str('ssh_url'),
    full_name: str('full_name'),
    default_branch: str('default_branch'),
  };
  return ref.clone_url || ref.html_url || ref.full_name ? ref : null;
}

/**
 * Turns a webhook into a trigger, or says why it starts nothing. Throws on a payload that lacks
 * what its event must have (the route answers 400).
 */
export function parseWebhook(event: string, payload: unknown): ParsedWebhook {
  if (!payload || typeof payload !== 'object') throw new Error('the payload is not a JSON object');
  if (event === 'push') return parsePush(payload as PushPayload);
  if (event === 'pull_request') return parsePullRequest(payload as PullRequestPayload);
  return { ignored: `event "${event}" does not start workflows (only push and pull_request do)` };
}

function parsePush(p: PushPayload): ParsedWebhook {
  const repository = repositoryRef(p.repository);
  if (!repository) throw new Error('push payload has no repository');
  if (typeof p.ref !== 'string') throw new Error('push payload has no "ref"');
  const after = typeof p.after === 'string' ? p.after : '';
  if (p.deleted === true || ZERO_SHA.test(after)) return { ignored: `${p.ref} was deleted` };
  if (!SHA.test(after)) throw new Error(`push payload has no valid "after" commit (got ${JSON.stringify(after)})`);
  const sha = after.toLowerCase();
  if (p.ref.startsWith('refs/heads/')) return { trigger: { kind: 'push', repository, sha, branch: p.ref.slice('refs/heads/'.length), tag: null } };
  if (p.ref.startsWith('refs/tags/')) return { trigger: { kind: 'push', repository, sha, branch: null, tag: p.ref.slice('refs/tags/'.length) } };
  return { ignored: `push to ${p.ref} is neither a branch nor a tag` };
}

function parsePullRequest(p: PullRequestPayload): ParsedWebhook {
  const repository = repositoryRef(p.repository);
  if (!repository) throw new Error('pull_request payload has no repository');
  const pr = p.pull_request as PullRequestPayload['pull_request'] | undefined;
  if (!pr || typeof pr !== 'object') throw new Error('pull_request payload has no "pull_request"');
  const action = typeof p.action === 'string' ? p.action : '';
  // GitHub sends `edited` for title/body edits too; only a new base branch changes what is built.
  if (action === 'edited' && !(p as { changes?: { base?: unknown } }).changes?.base) {
    return { ignored: `pull request #${pr.number} was edited but its base branch did not change` };
  }
  const head = pr.head;
  const base = pr.base;
  if (!head || !base || typeof head.sha !== 'string' || typeof head.ref !== 'string' || typeof base.ref !== 'string') {
    throw new Error('pull_request payload lacks head/base sha and refs');
  }
  if (!SHA.test(head.sha)) throw new Error(`pull_request head sha ${JSON.stringify(head.sha)} is not a commit sha`);
  const headRepo = repositoryRef(head.repo);
  const baseRepo = repositoryRef(base.repo) ?? repository;
  const headId = (head.repo as { id?: unknown } | null)?.id;
  const baseId = (base.repo as { id?: unknown } | null)?.id;
  let sameRepo = false;
  if (headRepo) {
    if (typeof headId === 'number' && typeof baseId === 'number') sameRepo = headId === baseId;
    else if (headRepo.full_name && baseRepo.full_name) sameRepo = headRepo.full_name.toLowerCase() === baseRepo.full_name.toLowerCase();
    else sameRepo = !!headRepo.clone_url && headRepo.clone_url === baseRepo.clone_url;
  }
  return {
    trigger: {
      kind: 'pull_request',
      repository,
      action,
      number: typeof pr.number === 'number' ? pr.number : Number(p.number),
      headSha: head.sha.toLowerCase(),
      headBranch: head.ref,
      headRepoUrl: headRepo?.clone_url ?? null,
      headFullName: headRepo?.full_name ?? null,
      baseBranch: base.ref,
      sameRepo,
    },
  };
}

/** One line for logs and delivery outcomes. */
export function describeTrigger(t: Trigger): string {
  if (t.kind === 'push') return t.tag !== null ? `push of tag ${t.tag} (${t.sha.slice(0, 12)})` : `push to ${t.branch} (${t.sha.slice(0, 12)})`;
  const from = t.sameRepo ? '' : ` from fork ${t.headFullName ?? '(deleted)'}`;
  return `pull request #${t.number} ${t.action || 're-run'}: ${t.headBranch}${from} → ${t.baseBranch} (${t.headSha.slice(0, 12)})`;
}
