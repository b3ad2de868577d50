import { randomBytes } from 'node:crypto';
import type { LinkedRepository, LinkRepositoryRequest, RepositorySelector } from '@hearth/api';
import { badRequest, normalizeRepoUrl, notFound } from '@hearth/core';
import type { Db } from '../db/index.ts';
import type { RepositoriesTable } from '../db/schema.ts';
import type { RepositoryRef } from './events.ts';

export const DEFAULT_GITHUB_API_URL = 'https://api.github.com';

export type RepoRow = RepositoriesTable;

/**
 * `owner/name` from a GitHub-like clone URL (https://host/owner/name(.git), ssh://git@host/owner/name,
 * git@host:owner/name.git); null for anything else (file://, deeper paths), which must say it.
 */
export function deriveFullName(repoUrl: string): string | null {
  const norm = normalizeRepoUrl(repoUrl);
  const m = /^(https?|ssh|git):\/\/[^/]+\/([^/]+)\/([^/]+)$/.exec(norm);
  return m ? `${m[2]}/${m[3]}` : null;
}

/** Linked repositories and their secrets. Nothing here returns a token or a secret value to callers outside the server. */
export class RepoStore {
  constructor(private readonly db: Db) {}

  async link(req: LinkRepositoryRequest): Promise<string> {
    const key = normalizeRepoUrl(req.repo_url);
    const fullName = req.full_name ?? deriveFullName(req.repo_url);
    if (!fullName) {
      throw badRequest(`cannot tell the GitHub owner/name of ${JSON.stringify(req.repo_url)}: pass "full_name" (e.g. "acme/app")`);
    }
    let apiUrl = (req.github_api_url ?? DEFAULT_GITHUB_API_URL).replace(/\/+$/, '');
    try {
      const u = new URL(apiUrl);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error();
    } catch {
      throw badRequest(`"github_api_url" must be an http(s) URL, got ${JSON.stringify(req.github_api_url)}`);
    }
    const now = Date.now();
    const existing = await this.db.selectFrom('repositories').select(['id']).where('repo_url_key', '=', key).executeTakeFirst();
    const fields = {
      repo_url: req.repo_url,
      full_name: fullName,
      default_branch: req.default_branch,
      webhook_secret: req.webhook_secret,
      // Relinking without a token keeps the stored one: rotating the webhook secret must not drop it.
      ...(req.access_token !== undefined ? { access_token: req.access_token || null } : {}),
      github_api_url: apiUrl,
      updated_at: now,
    };
    if (existing) {
      await this.db.updateTable('repositories').set(fields).where('id', '=', existing.id).execute();
      return existing.id;
    }
    const id = `repo-${randomBytes(6).toString('hex')}`;
    await this.db
      .insertInto('repositories')
      .values({ id, repo_url_key: key, created_at: now, access_token: null, ...fields })
      .execute();
    return id;
  }

  async unlink(sel: RepositorySelector): Promise<void> {
    const repo = await this.find(sel);
    await this.db.deleteFrom('repository_secrets').where('repo_id', '=', repo.id).execute();
    await this.db.deleteFrom('repositories').where('id', '=', repo.id).execute();
  }

  async byId(id: string): Promise<RepoRow | undefined> {
    return this.db.selectFrom('repositories').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async all(): Promise<RepoRow[]> {
    return this.db.selectFrom('repositories').selectAll().orderBy('created_at').execute();
  }

  /** By id, clone URL (any spelling of it) or owner/name. */
  async find(sel: RepositorySelector): Promise<RepoRow> {
    if (sel.repo_id) {
      const r = await this.byId(sel.repo_id);
      if (!r) throw notFound(`no linked repository with id ${JSON.stringify(sel.repo_id)}`);
      return r;
    }
    if (!sel.repo_url) throw badRequest('name the repository with "repo_id" or "repo_url"');
    const r = await this.lookup(sel.repo_url);
    if (!r) throw notFound(`repository ${JSON.stringify(sel.repo_url)} is not linked: link it with \`hearth workflows link\``);
    return r;
  }

  async lookup(urlOrFullName: string): Promise<RepoRow | undefined> {
    const rows = await this.all();
    const key = normalizeRepoUrl(urlOrFullName);
    return (
      rows.find((r) => r.repo_url_key === key) ??
      rows.find((r) => r.full_name !== null && r.full_name.toLowerCase() === urlOrFullName.toLowerCase())
    );
  }

  /** Linked repositories a webhook's `repository` could be: by clone/html/ssh URL, then by owner/name. */
  async matchRepository(ref: RepositoryRef): Promise<RepoRow[]> {
    const rows = await this.all();
    const keys = new Set([ref.clone_url, ref.html_url, ref.ssh_url].filter((u): u is string => !!u).map(normalizeRepoUrl));
    const byUrl = rows.filter((r) => keys.has(r.repo_url_key));
    if (byUrl.length > 0) return byUrl;
    const name = ref.full_name?.toLowerCase();
    return name ? rows.filter((r) => r.full_name?.toLowerCase() === name) : [];
  }

  async setSecret(repoId: string, name: string, value: string): Promise<void> {
    const now = Date.now();
    await this.db
      .insertInto('repository_secrets')
      .values({ repo_id: repoId, name, value, updated_at: now })
      .onConflict((oc) => oc.columns(['repo_id', 'name']).doUpdateSet({ value, updated_at: now }))
      .execute();
  }

  async deleteSecret(repoId: string, name: string): Promise<boolean> {
    const res = await this.db.deleteFrom('repository_secrets').where('repo_id', '=', repoId).where('name', '=', name).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async secretNames(repoId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('repository_secrets').select(['name']).where('repo_id', '=', repoId).orderBy('name').execute();
    return rows.map((r) => r.name);
  }

  /** Secret values, for trusted runs only, as they are leased. */
  async secretValues(repoId: string): Promise<Record<string, string>> {
    const rows = await this.db.selectFrom('repository_secrets').select(['name', 'value']).where('repo_id', '=', repoId).execute();
    return Object.fromEntries(rows.map((r) => [r.name, r.value]));
  }

  async toPublic(r: RepoRow, publicUrl: string): Promise<LinkedRepository> {
    return {
      repo_id: r.id,
      repo_url: r.repo_url,
      full_name: r.full_name,
      default_branch: r.default_branch,
      github_api_url: r.github_api_url,
      has_access_token: !!r.access_token,
      secret_names: await this.secretNames(r.id),
      created_at: new Date(Number(r.created_at)).toISOString(),
      updated_at: new Date(Number(r.updated_at)).toISOString(),
      webhook_url: `${publicUrl}/webhooks/github`,
    };
  }
}
