/**
 * Workflows API: linking GitHub repositories, their secrets, manual runs and webhook deliveries.
 * Tokens, webhook secrets and secret values go in, and never come out of any answer.
 */
import { Type, type Static } from 'typebox';
import { Invocation } from './schemas.ts';

const StringMap = Type.Record(Type.String(), Type.String());

export const LinkRepositoryRequest = Type.Object(
  {
    /** Clone URL runners fetch from, e.g. https://github.com/acme/app.git */
    repo_url: Type.String({ minLength: 1 }),
    /** owner/name on GitHub; derived from a GitHub-like repo_url when omitted. Needed for statuses and config. */
    full_name: Type.Optional(Type.String({ pattern: '^[^/\\s]+/[^/\\s]+$' })),
    default_branch: Type.String({ minLength: 1 }),
    /** The secret configured on the GitHub webhook (X-Hub-Signature-256 is checked against it). */
    webhook_secret: Type.String({ minLength: 1 }),
    /** Token for the GitHub API (statuses, config, refs) and for cloning over HTTPS in trusted runs. */
    access_token: Type.Optional(Type.String()),
    /** Default https://api.github.com; GitHub Enterprise: https://HOST/api/v3. */
    github_api_url: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
export type LinkRepositoryRequest = Static<typeof LinkRepositoryRequest>;

export const LinkRepositoryResponse = Type.Object({ repo_id: Type.String() });
export type LinkRepositoryResponse = Static<typeof LinkRepositoryResponse>;

/** Names a linked repository by id, or by clone URL / owner/name. */
export const RepositorySelector = Type.Object(
  {
    repo_id: Type.Optional(Type.String({ minLength: 1 })),
    repo_url: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
export type RepositorySelector = Static<typeof RepositorySelector>;

export const LinkedRepository = Type.Object({
  repo_id: Type.String(),
  repo_url: Type.String(),
  full_name: Type.Union([Type.String(), Type.Null()]),
  default_branch: Type.String(),
  github_api_url: Type.String(),
  has_access_token: Type.Boolean(),
  secret_names: Type.Array(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String(),
  /** Where to point the GitHub webhook (content type application/json, events push + pull_request). */
  webhook_url: Type.String(),
});
export type LinkedRepository = Static<typeof LinkedRepository>;

export const ListRepositoriesResponse = Type.Object({ repositories: Type.Array(LinkedRepository) });
export type ListRepositoriesResponse = Static<typeof ListRepositoriesResponse>;

export const SECRET_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';

export const SetRepositorySecretRequest = Type.Object(
  {
    repo_id: Type.Optional(Type.String({ minLength: 1 })),
    repo_url: Type.Optional(Type.String({ minLength: 1 })),
    name: Type.String({ pattern: SECRET_NAME_PATTERN, maxLength: 200 }),
    value: Type.String({ maxLength: 65536 }),
  },
  { additionalProperties: false },
);
export type SetRepositorySecretRequest = Static<typeof SetRepositorySecretRequest>;

export const DeleteRepositorySecretRequest = Type.Object(
  {
    repo_id: Type.Optional(Type.String({ minLength: 1 })),
    repo_url: Type.Optional(Type.String({ minLength: 1 })),
    name: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);
export type DeleteRepositorySecretRequest = Static<typeof DeleteRepositorySecretRequest>;

export const ListRepositorySecretsResponse = Type.Object({ names: Type.Array(Type.String()) });
export type ListRepositorySecretsResponse = Static<typeof ListRepositorySecretsResponse>;

export const ExecuteWorkflowRequest = Type.Object(
  {
    /** Clone URL or owner/name of a linked repository. */
    repo_url: Type.String({ minLength: 1 }),
    /** Branch, tag (refs/tags/…) or full commit sha. */
    ref: Type.String({ minLength: 1 }),
    /** Only these actions (all of the config's actions when omitted). */
    action_names: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    /** Start from a cold runner. */
    clean: Type.Optional(Type.Boolean()),
    /** Overrides the actions' env. */
    env: Type.Optional(StringMap),
  },
  { additionalProperties: false },
);
export type ExecuteWorkflowRequest = Static<typeof ExecuteWorkflowRequest>;

export const ActionRun = Type.Object({ action_name: Type.String(), invocation_id: Type.String(), url: Type.String() });
export type ActionRun = Static<typeof ActionRun>;

export const ExecuteWorkflowResponse = Type.Object({
  commit_sha: Type.String(),
  branch: Type.Union([Type.String(), Type.Null()]),
  action_runs: Type.Array(ActionRun),
});
export type ExecuteWorkflowResponse = Static<typeof ExecuteWorkflowResponse>;

export const ListWorkflowRunsRequest = Type.Object(
  {
    repo_url: Type.Optional(Type.String({ minLength: 1 })),
    commit_sha: Type.Optional(Type.String({ minLength: 1 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);
export type ListWorkflowRunsRequest = Static<typeof ListWorkflowRunsRequest>;

export const ListWorkflowRunsResponse = Type.Object({ invocations: Type.Array(Invocation) });
export type ListWorkflowRunsResponse = Static<typeof ListWorkflowRunsResponse>;

export const WebhookDelivery = Type.Object({
  delivery_id: Type.String(),
  event: Type.String(),
  repo_id: Type.Union([Type.String(), Type.Null()]),
  received_at: Type.String(),
  /** received → processing → done | failed. A failed delivery may be redelivered. */
  state: Type.String(),
  /** What came of it, in words: "started 2 runs", "ignored: branch deletion", "hearth.yaml:3:5: …". */
  outcome: Type.String(),
  invocation_ids: Type.Array(Type.String()),
});
export type WebhookDelivery = Static<typeof WebhookDelivery>;

export const GetWebhookDeliveryRequest = Type.Object({ delivery_id: Type.String({ minLength: 1 }) }, { additionalProperties: false });
export type GetWebhookDeliveryRequest = Static<typeof GetWebhookDeliveryRequest>;

export const ListWebhookDeliveriesRequest = Type.Object(
  { repo_url: Type.Optional(Type.String({ minLength: 1 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) },
  { additionalProperties: false },
);
export type ListWebhookDeliveriesRequest = Static<typeof ListWebhookDeliveriesRequest>;

export const ListWebhookDeliveriesResponse = Type.Object({ deliveries: Type.Array(WebhookDelivery) });
export type ListWebhookDeliveriesResponse = Static<typeof ListWebhookDeliveriesResponse>;
