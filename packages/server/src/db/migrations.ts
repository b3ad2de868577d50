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
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};
