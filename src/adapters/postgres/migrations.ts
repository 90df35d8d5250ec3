/**
 * The PostgreSQL store's schema, as numbered migrations. The store applies the missing ones on
 * first use, each in its own transaction, under a transaction-level advisory lock (so that
 * replicas starting at once migrate one after the other), and records each in
 * `<schema>.schema_migrations`. A schema at a newer version than this code knows is refused.
 *
 * Never edit a released migration: add the next one.
 *
 * Documents (snapshot, view, inbox events, history entries) are `json`, not `jsonb`: the store
 * never looks inside them, and `json` gives back exactly the text it was given (key order
 * included, which `jsonb` sorts), as the memory and SQLite stores do.
 */
import { fnv32, type PgPool, type PgPoolClient, type PgQuery } from './pg.js'

/** One step of the schema. */
export interface Migration {
  /** 1, 2, 3, …: the version the schema is at once the migration is applied. */
  version: number
  description: string
  /** The DDL, given the quoted schema name. Run in order, in one transaction. */
  statements(schema: string): string[]
}

/** Every migration, in order (`MIGRATIONS[k - 1].version === k`). */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'flows with versions and leases; one unfinished flow per user; indexes by user and of working flows',
    statements: (s) => [
      `CREATE TABLE ${s}.flows (
        id text PRIMARY KEY,
        user_type smallint NOT NULL,
        user_id bigint NOT NULL,
        version integer NOT NULL,
        state text NOT NULL,
        working boolean NOT NULL,
        ended boolean NOT NULL,
        stretch integer NOT NULL,
        snapshot json NOT NULL,
        view json NOT NULL,
        lease_owner text,
        lease_epoch integer NOT NULL DEFAULT 0,
        lease_until timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      ) WITH (fillfactor = 80)`,
      // The store's invariant, enforced by PostgreSQL itself.
      `CREATE UNIQUE INDEX flows_one_unfinished_per_user ON ${s}.flows (user_type, user_id) WHERE NOT ended`,
      `CREATE INDEX flows_by_user ON ${s}.flows (user_type, user_id, created_at DESC)`,
      // Orphans: only working flows, on a column that never changes (writes stay HOT updates).
      `CREATE INDEX flows_working ON ${s}.flows (created_at) WHERE working`,
    ],
  },
  {
    version: 2,
    description: 'inbox of host events per flow; applied_seq on flows',
    statements: (s) => [
      `ALTER TABLE ${s}.flows ADD COLUMN applied_seq bigint NOT NULL DEFAULT 0`,
      `CREATE TABLE ${s}.inbox (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        flow_id text NOT NULL REFERENCES ${s}.flows (id) ON DELETE CASCADE,
        event json NOT NULL,
        received_by text NOT NULL,
        at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX inbox_by_flow ON ${s}.inbox (flow_id, seq)`,
    ],
  },
  {
    version: 3,
    description: 'bounded history per flow; history_n (entries ever appended) on flows',
    statements: (s) => [
      `ALTER TABLE ${s}.flows ADD COLUMN history_n bigint NOT NULL DEFAULT 0`,
      `CREATE TABLE ${s}.history (
        flow_id text NOT NULL REFERENCES ${s}.flows (id) ON DELETE CASCADE,
        n bigint NOT NULL,
        entry json NOT NULL,
        PRIMARY KEY (flow_id, n)
      )`,
    ],
  },
]

/** The schema version this code reads and writes. */
export const SCHEMA_VERSION = MIGRATIONS.length

/** The advisory lock class of the store's migrations (the object is a hash of the schema name). */
const LOCK_CLASS = 0x10e9a1d

/** The two keys of the advisory lock taken around migrating `schema` (`pg_advisory_xact_lock(int, int)`). */
export const migrationLockKey = (schema: string): [number, number] => [LOCK_CLASS, fnv32(schema)]

/** Throws a `TypeError` unless `schema` is a plain SQL identifier PostgreSQL lets a user create. */
export function checkSchemaName(schema: unknown, option = 'schema'): asserts schema is string {
  if (typeof schema !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(schema) || schema.startsWith('pg_')) {
    throw new TypeError(`createPostgresFlowStore: ${option} must be a plain lower-case SQL identifier (a-z, 0-9, _; at most 63 characters; not pg_…), got ${JSON.stringify(schema)}`)
  }
}

/** The schema name quoted for SQL (it was checked by {@link checkSchemaName}). */
export const quoteSchema = (schema: string) => `"${schema}"`

/** The schema is at a version newer than this code knows. */
export class SchemaTooNewError extends Error {
  override readonly name = 'SchemaTooNewError'
  constructor(
    readonly schema: string,
    readonly found: number,
  ) {
    super(
      `PostgreSQL flow store: schema "${schema}" is at version ${found}, newer than this version of 10npay-identification knows (${SCHEMA_VERSION}); ` +
        'refusing to use it: upgrade the package on every replica',
    )
  }
}

type Queryable = Pick<PgPool, 'query'> | PgPoolClient

/** The schema's version: 0 when the schema or its `schema_migrations` table does not exist. */
export async function schemaVersion(db: Queryable, schema: string): Promise<number> {
  checkSchemaName(schema)
  const s = quoteSchema(schema)
  // The catalogs are read with the statement's snapshot, not through to_regclass(): its cached
  // lookup is not refreshed by an advisory lock wait, and would miss a table another replica
  // created while this one waited for the lock.
  const present = await db.query({
    text: `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
           WHERE n.nspname = $1 AND c.relname = 'schema_migrations') AS present`,
    values: [schema],
  })
  if (!(present.rows[0] as { present: boolean }).present) return 0
  const r = await db.query({ text: `SELECT coalesce(max(version), 0)::int AS version FROM ${s}.schema_migrations` })
  return (r.rows[0] as { version: number }).version
}

/** Options of {@link migratePostgresSchema}. */
export interface MigrateOptions {
  /** The schema to create or migrate. */
  schema: string
  /** Migrate up to this version (tests of older versions). @default SCHEMA_VERSION */
  target?: number
  /** Bounds the wait for the migration lock and each migration statement (ms). @default 60000 */
  timeoutMs?: number
}

/**
 * Creates the schema or migrates it to `target`: each missing migration in its own transaction,
 * under `pg_advisory_xact_lock` keyed on the schema, the version read again under the lock.
 * Safe to run from any number of replicas at once.
 *
 * @returns the version found and the version left
 * @throws SchemaTooNewError when the schema is at a version newer than {@link SCHEMA_VERSION}
 */
export async function migratePostgresSchema(pool: PgPool, options: MigrateOptions): Promise<{ from: number; to: number }> {
  const { schema, target = SCHEMA_VERSION, timeoutMs = 60_000 } = options
  checkSchemaName(schema)
  if (!Number.isInteger(target) || target < 0 || target > SCHEMA_VERSION) throw new RangeError(`migratePostgresSchema: target must be an integer from 0 to ${SCHEMA_VERSION}`)
  const s = quoteSchema(schema)
  // Without the lock first: replicas that find the schema current (the usual start) wait for nobody.
  const found = await schemaVersion(pool, schema)
  if (found > SCHEMA_VERSION) throw new SchemaTooNewError(schema, found)
  if (found >= target) return { from: found, to: found }

  const connection = await pool.connect()
  // The lock wait and the DDL may take longer than the pool's read timeout allows a statement.
  const readTimeout = Math.max(1, Math.round(timeoutMs)) + 1_000
  const client = { query: (q: PgQuery) => connection.query({ ...q, query_timeout: readTimeout }) }
  let failed = false
  try {
    for (;;) {
      await client.query({ text: 'BEGIN' })
      try {
        await client.query({
          text: "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $1, true)",
          values: [String(Math.max(1, Math.round(timeoutMs)))],
        })
        await client.query({ text: 'SELECT pg_advisory_xact_lock($1::int, $2::int)', values: migrationLockKey(schema) })
        const version = await schemaVersion(client, schema)
        if (version > SCHEMA_VERSION) throw new SchemaTooNewError(schema, version)
        if (version >= target) {
          await client.query({ text: 'COMMIT' })
          return { from: found, to: version }
        }
        if (version === 0) {
          // Only CREATE what is missing: a role without CREATE on the database can use a schema made for it.
          const exists = await client.query({ text: 'SELECT 1 FROM pg_namespace WHERE nspname = $1', values: [schema] })
          if (exists.rows.length === 0) await client.query({ text: `CREATE SCHEMA ${s}` })
          await client.query({
            text: `CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
          })
        }
        const migration = MIGRATIONS[version]!
        for (const text of migration.statements(s)) await client.query({ text })
        await client.query({ text: `INSERT INTO ${s}.schema_migrations (version, description) VALUES ($1, $2)`, values: [migration.version, migration.description] })
        await client.query({ text: 'COMMIT' })
      } catch (err) {
        await client.query({ text: 'ROLLBACK' }).catch(() => {})
        throw err
      }
    }
  } catch (err) {
    failed = true
    throw err
  } finally {
    // After a failure the connection is discarded: whatever state it is in goes with it.
    connection.release(failed)
  }
}
