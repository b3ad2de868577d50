import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Webhooks } from '@octokit/webhooks';
import {
  DeleteRepositorySecretRequest,
  ExecuteWorkflowRequest,
  GetWebhookDeliveryRequest,
  LinkRepositoryRequest,
  ListWebhookDeliveriesRequest,
  ListWorkflowRunsRequest,
  RepositorySelector,
  SetRepositorySecretRequest,
  type WebhookDelivery,
} from '@hearth/api';
import { HearthError, notFound } from '@hearth/core';
import type { ServerContext } from '../context.ts';
import type { WebhookDeliveriesTable } from '../db/schema.ts';
import { type RepositoryRef, parseWebhook, repositoryRef } from './events.ts';
import { GitHub, type GitHubOptions } from './github.ts';
import { RepoStore } from './repos.ts';
import { WorkflowService } from './service.ts';
import { CommitStatusReporter } from './statusReporter.ts';

export interface Workflows {
  repos: RepoStore;
  service: WorkflowService;
  reporter: CommitStatusReporter;
}

/** GitHub caps webhook payloads at 25 MB. */
const WEBHOOK_BODY_LIMIT = 26 << 20;

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Workflows: linked repositories and their secrets, the GitHub webhook, manual runs, and commit
 * status reporting. Registered from startServer like the other route modules.
 */
export function registerWorkflows(app: FastifyInstance, ctx: ServerContext, opts: { github?: GitHubOptions } = {}): Workflows {
  const log = ctx.log.child({ component: 'workflows' });
  const repos = new RepoStore(ctx.db);
  const github = new GitHub(log, opts.github);
  const service = new WorkflowService(ctx, repos, github, log);
  const reporter = new CommitStatusReporter(ctx.runs, repos, github, log);
  ctx.scheduler.taskHooks.push(service.taskHook);
  // Catch-up work (statuses of runs that changed while no server ran, deliveries accepted but not
  // processed) starts once the server knows its public URL, which status links are built from.
  app.server.once('listening', () => {
    void (async () => {
      for (let i = 0; i < 250 && !ctx.runs.publicUrl; i++) await new Promise((r) => setTimeout(r, 20));
      await reporter.start();
      await service.recover();
    })().catch((err) => log.error({ err }, 'workflows startup failed'));
  });
  app.addHook('onClose', async () => {
    service.close();
    reporter.stop();
    // In-flight GitHub calls get a moment; the DB closes right after.
    await Promise.race([Promise.all([service.idle(), reporter.idle()]), new Promise((r) => setTimeout(r, 2000).unref())]);
  });

  // --- repositories and secrets ---
  app.post('/api/v1/LinkRepository', { schema: { body: LinkRepositoryRequest } }, async (req) => {
    return { repo_id: await repos.link(req.body as LinkRepositoryRequest) };
  });

  app.post('/api/v1/UnlinkRepository', { schema: { body: RepositorySelector } }, async (req) => {
    await repos.unlink(req.body as RepositorySelector);
    return {};
  });

  app.post('/api/v1/ListRepositories', async () => {
    const rows = await repos.all();
    return { repositories: await Promise.all(rows.map((r) => repos.toPublic(r, ctx.runs.publicUrl))) };
  });

  app.post('/api/v1/SetRepositorySecret', { schema: { body: SetRepositorySecretRequest } }, async (req) => {
    const b = req.body as SetRepositorySecretRequest;
    const repo = await repos.find(b);
    await repos.setSecret(repo.id, b.name, b.value);
    return { repo_id: repo.id, name: b.name };
  });

  app.post('/api/v1/DeleteRepositorySecret', { schema: { body: DeleteRepositorySecretRequest } }, async (req) => {
    const b = req.body as DeleteRepositorySecretRequest;
    const repo = await repos.find(b);
    if (!(await repos.deleteSecret(repo.id, b.name))) throw notFound(`${repo.full_name} has no secret named ${JSON.stringify(b.name)}`);
    return {};
  });

  app.post('/api/v1/ListRepositorySecrets', { schema: { body: RepositorySelector } }, async (req) => {
    const repo = await repos.find(req.body as RepositorySelector);
    return { names: await repos.secretNames(repo.id) };
  });

  // --- runs ---
  app.post('/api/v1/ExecuteWorkflow', { schema: { body: ExecuteWorkflowRequest } }, async (req) => {
    return service.executeWorkflow(req.body as ExecuteWorkflowRequest);
  });

  app.post('/api/v1/ListWorkflowRuns', { schema: { body: ListWorkflowRunsRequest } }, async (req) => {
    const b = req.body as ListWorkflowRunsRequest;
    let q = ctx.db.selectFrom('invocations').selectAll().where('workflow_json', 'is not', null);
    if (b.repo_url) q = q.where('repo', '=', (await repos.find({ repo_url: b.repo_url })).repo_url);
    if (b.commit_sha) q = q.where('commit_sha', '=', b.commit_sha.toLowerCase());
    const rows = await q.orderBy('created_at', 'desc').limit(b.limit ?? 100).execute();
    return { invocations: rows.map((r) => ctx.runs.toInvocation(r)) };
  });

  // --- deliveries ---
  const toDelivery = (r: WebhookDeliveriesTable): WebhookDelivery => ({
    delivery_id: r.id,
    event: r.event,
    repo_id: r.repo_id,
    received_at: new Date(Number(r.received_at)).toISOString(),
    state: r.state,
    outcome: r.outcome,
    invocation_ids: JSON.parse(r.invocation_ids_json) as string[],
  });
  const delivery = async (id: string) => {
    const r = await ctx.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound(`no webhook delivery ${JSON.stringify(id)}`);
    return toDelivery(r);
  };

  app.post('/api/v1/GetWebhookDelivery', { schema: { body: GetWebhookDeliveryRequest } }, async (req) => {
    return delivery((req.body as GetWebhookDeliveryRequest).delivery_id);
  });

  app.post('/api/v1/ListWebhookDeliveries', { schema: { body: ListWebhookDeliveriesRequest } }, async (req) => {
    const b = req.body as ListWebhookDeliveriesRequest;
    let q = ctx.db.selectFrom('webhook_deliveries').selectAll();
    if (b.repo_url) q = q.where('repo_id', '=', (await repos.find({ repo_url: b.repo_url })).id);
    const rows = await q.orderBy('received_at', 'desc').limit(b.limit ?? 100).execute();
    return { deliveries: rows.map(toDelivery) };
  });

  // Where a config-error status links to: the whole error, every diagnostic.
  app.get('/workflows/deliveries/:id', async (req, reply) => {
    const d = await delivery((req.params as { id: string }).id);
    const runs = d.invocation_ids.map((i) => `<li><a href="/invocations/${esc(i)}">${esc(i)}</a></li>`).join('');
    reply.type('text/html; charset=utf-8');
    return `<!doctype html><html><head><meta charset="utf-8"><title>delivery ${esc(d.delivery_id)} · hearth</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em}pre{background:#111;color:#ddd;padding:1em;white-space:pre-wrap}</style></head><body>
<h1>GitHub ${esc(d.event)} delivery</h1><p>Delivery <code>${esc(d.delivery_id)}</code> received ${esc(d.received_at)} · ${esc(d.state)}</p>
<pre>${esc(d.outcome)}</pre><ul>${runs}</ul></body></html>`;
  });

  // --- the webhook ---
  app.register(async (scope) => {
    // The signature covers the exact bytes GitHub sent: this route sees the raw body, unparsed.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_req, body, done) => done(null, body));
    scope.post('/webhooks/github', { bodyLimit: WEBHOOK_BODY_LIMIT }, (req, reply) => handleWebhook(req, reply));
  });

  async function handleWebhook(req: FastifyRequest, reply: FastifyReply) {
    const header = (name: string) => {
      const v = req.headers[name];
      return typeof v === 'string' && v !== '' ? v : null;
    };
    const event = header('x-github-event');
    const deliveryId = header('x-github-delivery');
    const signature = header('x-hub-signature-256');
    if (!event || !deliveryId) throw new HearthError('invalid_argument', 'not a GitHub webhook: X-GitHub-Event and X-GitHub-Delivery are required', 400);
    if (!signature) throw unauthenticated('X-Hub-Signature-256 is missing: set a secret on the GitHub webhook (the same one hearth has)');
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const text = raw.toString('utf8');
    let payload: unknown;
    try {
      const form = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
      payload = JSON.parse(form ? (new URLSearchParams(text).get('payload') ?? '') : text);
    } catch {
      throw new HearthError('invalid_argument', 'the webhook body is not JSON (or a form with a JSON "payload")', 400);
    }
    const ref: RepositoryRef | null = repositoryRef((payload as { repository?: unknown } | null)?.repository);
    if (!ref) throw new HearthError('invalid_argument', `the ${event} payload names no repository`, 400);
    const candidates = await repos.matchRepository(ref);
    if (candidates.length === 0) {
      throw notFound(`repository ${ref.full_name ?? ref.clone_url} is not linked to hearth: link it with \`hearth workflows link\``);
    }
    // The exact bytes: a body that is not valid UTF-8 would not survive the string round trip.
    const exact = Buffer.from(text, 'utf8').equals(raw);
    let repo = null;
    for (const c of candidates) {
      if (exact && (await verifySignature(c.webhook_secret, text, signature))) {
        repo = c;
        break;
      }
    }
    if (!repo) throw unauthenticated('X-Hub-Signature-256 does not match the webhook secret of the linked repository');
    if (event === 'ping') return reply.status(200).send({ delivery_id: deliveryId, status: 'pong' });

    let parsed;
    try {
      parsed = parseWebhook(event, payload);
    } catch (err) {
      throw new HearthError('invalid_argument', `malformed ${event} payload: ${(err as Error).message}`, 400);
    }
    const trigger = 'trigger' in parsed ? parsed.trigger : null;
    const ignored = 'ignored' in parsed ? `ignored: ${parsed.ignored}` : '';
    const fresh = {
      event,
      repo_id: repo.id,
      received_at: Date.now(),
      state: trigger ? 'received' : 'done',
      outcome: ignored,
      invocation_ids_json: '[]',
      trigger_json: trigger ? JSON.stringify(trigger) : null,
    };
    const inserted = await ctx.db.insertInto('webhook_deliveries').values({ id: deliveryId, ...fresh }).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) {
      // Seen before. Only a delivery whose processing failed (e.g. GitHub was down) is processed again.
      const retried = await ctx.db.updateTable('webhook_deliveries').set(fresh).where('id', '=', deliveryId).where('state', '=', 'failed').executeTakeFirst();
      if (Number(retried.numUpdatedRows) === 0) {
        log.info({ delivery: deliveryId, event }, 'duplicate webhook delivery ignored');
        return reply.status(200).send({ delivery_id: deliveryId, status: 'duplicate' });
      }
    }
    if (!trigger) {
      log.info({ delivery: deliveryId, event, why: ignored }, 'webhook delivery starts nothing');
      return reply.status(202).send({ delivery_id: deliveryId, status: 'ignored', reason: ignored });
    }
    // Answer now; reading the config and queuing runs happens after (GitHub waits 10 s at most).
    service.enqueue(deliveryId, repo.id);
    return reply.status(202).send({ delivery_id: deliveryId, status: 'queued' });
  }

  return { repos, service, reporter };
}

function unauthenticated(message: string): HearthError {
  return new HearthError('unauthenticated', message, 401);
}

async function verifySignature(secret: string, payload: string, signature: string): Promise<boolean> {
  try {
    return await new Webhooks({ secret }).verify(payload, signature);
  } catch {
    return false; // empty payload or secret
  }
}
