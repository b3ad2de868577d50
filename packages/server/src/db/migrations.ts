import { type Kysely, type Migration, type MigrationProvider } from 'kysely';

/** In-code migrations, so the server needs no files next to it. Append only; never edit one that shipped. */
const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('invocations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('status_reason', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('exit_code', 'integer')
        .addColumn('repo', 'text', (c) => c.notNull())
        .addColumn('branch', 'text')
        .addColumn('commit_sha', 'text')
        .addColumn('default_branch', 'text')
        .addColumn('spec_json', 'text', (c) => c.notNull())
        .addColumn('runner_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('queued_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint')
        .addColumn('finished_at', 'bigint')
        .addColumn('executor_id', 'text')
        .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('runner_json', 'text')
        .addColumn('timings_json', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('failed_step', 'integer')
        .addColumn('current_step', 'integer')
        .addColumn('cancel_requested', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('invocations_status_queued').on('invocations').columns(['status', 'queued_at']).execute();
      await db.schema.createIndex('invocations_executor').on('invocations').columns(['executor_id', 'status']).execute();
      await db.schema
        .createTable('executors')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('hostname', 'text', (c) => c.notNull())
        .addColumn('os', 'text', (c) => c.notNull())
        .addColumn('arch', 'text', (c) => c.notNull())
        .addColumn('max_runners', 'integer', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('registered_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
        .addColumn('idle_runner_keys_json', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('free_slots', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('lost', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
  },
  '0002_workflows': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('repositories')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('repo_url', 'text', (c) => c.notNull())
        .addColumn('repo_url_key', 'text', (c) => c.notNull().unique())
        .addColumn('full_name', 'text')
        .addColumn('default_branch', 'text', (c) => c.notNull())
        .addColumn('webhook_secret', 'text', (c) => c.notNull())
        .addColumn('access_token', 'text')
        .addColumn('github_api_url', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('repository_secrets')
        .addColumn('repo_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('repository_secrets_pk', ['repo_id', 'name'])
        .execute();
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('repo_id', 'text')
        .addColumn('received_at', 'bigint', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('invocation_ids_json', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('trigger_json', 'text')
        .execute();
      await db.schema.createIndex('webhook_deliveries_received').on('webhook_deliveries').columns(['received_at']).execute();
      await db.schema.alterTable('invocations').addColumn('trusted', 'integer', (c) => c.notNull().defaultTo(1)).execute();
      await db.schema.alterTable('invocations').addColumn('workflow_json', 'text').execute();
      await db.schema.alterTable('invocations').addColumn('workflow_key', 'text').execute();
      await db.schema.alterTable('invocations').addColumn('commit_status_reported', 'text').execute();
      await db.schema.createIndex('invocations_workflow_key').on('invocations').columns(['workflow_key', 'status']).execute();
    },
  },
  '0003_snapshots': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('snapshots')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('manifest_hash', 'text', (c) => c.notNull())
        .addColumn('manifest_size', 'bigint', (c) => c.notNull())
        .addColumn('size_bytes', 'bigint', (c) => c.notNull())
        .addColumn('instance', 'text', (c) => c.notNull())
        .addColumn('git_ref', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('snapshots_instance').on('snapshots').column('instance').execute();
    },
  },
  '0004_executor_snapshot_refs': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('executors').addColumn('snapshot_refs_json', 'text', (c) => c.notNull().defaultTo('[]')).execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};
