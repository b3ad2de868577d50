import { Octokit } from '@octokit/rest';
import type { Logger } from 'pino';
import { WORKFLOW_CONFIG_FILE_NAMES } from '@hearth/core';
import type { RepoRow } from './repos.ts';

export type CommitState = 'pending' | 'success' | 'failure' | 'error';

export interface CommitStatus {
  state: CommitState;
  description: string;
  context: string;
  target_url: string;
}

export interface GitHubOptions {
  /** Per request. */
  timeoutMs?: number;
  /** Attempts for calls that failed with a network error, 5xx or 429. */
  attempts?: number;
  /** First retry delay; doubles. */
  backoffMs?: number;
}

/** An error from the GitHub API, with its HTTP status when there was an answer. */
export class GitHubError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = 'GitHubError';
  }
}

const statusOf = (err: unknown): number | null => {
  const s = (err as { status?: unknown }).status;
  return typeof s === 'number' ? s : null;
};

/** GitHub's limit for a status description. */
export const MAX_STATUS_DESCRIPTION = 140;

export function splitFullName(fullName: string): { owner: string; repo: string } {
  const i = fullName.indexOf('/');
  return { owner: fullName.slice(0, i), repo: fullName.slice(i + 1) };
}

/**
 * The GitHub REST calls workflows make, through @octokit/rest against each repository's own API URL
 * (github.com or GitHub Enterprise) with its token. Retries transient failures; never logs tokens.
 */
export class GitHub {
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly backoffMs: number;

  constructor(
    private readonly log: Logger,
    opts: GitHubOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.attempts = opts.attempts ?? 4;
    this.backoffMs = opts.backoffMs ?? 500;
  }

  private octokit(repo: RepoRow): Octokit {
    const quiet = () => {};
    return new Octokit({
      auth: repo.access_token ?? undefined,
      baseUrl: repo.github_api_url,
      userAgent: 'hearth/0.1.0',
      log: { debug: quiet, info: quiet, warn: (m: string) => this.log.warn(m), error: (m: string) => this.log.error(m) },
    });
  }

  private async call<T>(what: string, fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    let delay = this.backoffMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const s = signal ? AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]) : AbortSignal.timeout(this.timeoutMs);
        return await fn(s);
      } catch (err) {
        const status = statusOf(err);
        const transient = status === null || status >= 500 || status === 429;
        const message = `${what}: ${status === null ? '' : `HTTP ${status}: `}${(err as Error).message}`;
        if (!transient || attempt >= this.attempts || signal?.aborted) throw new GitHubError(message, status);
        this.log.warn({ attempt, status }, `${message}; retrying`);
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
      }
    }
  }

  /**
   * The workflow config at `sha`: `hearth.yaml`, else `buildbuddy.yaml`, read from `fullName`
   * (the head repository for pull requests, as the reference does). null when neither exists.
   */
  async readConfig(repo: RepoRow, fullName: string, sha: string, signal?: AbortSignal): Promise<{ file: string; text: string } | null> {
    const { owner, repo: name } = splitFullName(fullName);
    const kit = this.octokit(repo);
    for (const file of WORKFLOW_CONFIG_FILE_NAMES) {
      try {
        const res = await this.call(
          `reading ${file} of ${fullName} at ${sha.slice(0, 12)}`,
          (s) => kit.repos.getContent({ owner, repo: name, path: file, ref: sha, request: { signal: s } }),
          signal,
        );
        const data = res.data;
        if (Array.isArray(data) || data.type !== 'file') continue;
        if (!('content' in data) || data.encoding !== 'base64') {
          throw new GitHubError(`${file} of ${fullName} is too large to read through the contents API`, null);
        }
        return { file, text: Buffer.from(data.content, 'base64').toString('utf8') };
      } catch (err) {
        if (err instanceof GitHubError && err.status === 404) continue;
        throw err;
      }
    }
    return null;
  }

  /** A branch, tag or sha → full commit sha, through `GET /repos/{o}/{r}/commits/{ref}`. */
  async resolveRef(repo: RepoRow, ref: string, signal?: AbortSignal): Promise<string> {
    const { owner, repo: name } = splitFullName(repo.full_name!);
    const res = await this.call(
      `resolving ${ref} in ${repo.full_name}`,
      (s) => this.octokit(repo).repos.getCommit({ owner, repo: name, ref, request: { signal: s } }),
      signal,
    );
    return res.data.sha;
  }

  async createStatus(repo: RepoRow, sha: string, status: CommitStatus, signal?: AbortSignal): Promise<void> {
    const { owner, repo: name } = splitFullName(repo.full_name!);
    const description =
      status.description.length > MAX_STATUS_DESCRIPTION ? `${status.description.slice(0, MAX_STATUS_DESCRIPTION - 1)}…` : status.description;
    await this.call(
      `posting status ${status.state} "${status.context}" on ${repo.full_name}@${sha.slice(0, 12)}`,
      (s) => this.octokit(repo).repos.createCommitStatus({ owner, repo: name, sha, ...status, description, request: { signal: s } }),
      signal,
    );
  }
}
