import type { HostEvent } from '../../machine/events.js'
import type { PersistedFlow } from '../../machine/persistence.js'
import type { UserType } from '../../machine/types.js'
import { DependencyError, UnfinishedFlowExistsError } from '../server/errors.js'
import {
  HISTORY_LIMIT,
  type FlowCounts,
  type FlowHistoryEntry,
  type FlowListFilter,
  type FlowRecord,
  type FlowState,
  type FlowStore,
  type FlowView,
  type FlowWrite,
  type InboxEntry,
  type NewFlow,
} from '../server/types.js'
import { SCHEMA_VERSION, SchemaTooNewError, checkSchemaName, migratePostgresSchema, quoteSchema, schemaVersion } from './migrations.js'
import { fnv32, loadPool, secretsOf, storeError, type PgPool, type PgQuery } from './pg.js'

/** Options of {@link createPostgresFlowStore}: a `pool` or a `connectionString`, not both. */
export interface PostgresFlowStoreOptions {
  /**
   * A `pg.Pool` (or anything with its `query`, `connect` and `end`) the store uses; `close()`
   * leaves it open. Give it an `'error'` listener, as `pg` asks of every pool. The store's
   * timeouts (`connectTimeoutMs`, `statementTimeoutMs`) are then the pool's to set.
   * @default undefined (the store makes its own pool from `connectionString`)
   */
  pool?: PgPool
  /**
   * `postgres://user:password@host:5432/database` (or any form `pg` accepts): the store loads
   * `pg`, makes its own pool on first use and ends it on `close()`. Never appears in errors.
   * @default undefined
   */
  connectionString?: string
  /**
   * The schema that holds the store's tables (`flows`, `inbox`, `history`, `schema_migrations`):
   * a plain lower-case SQL identifier, created when missing.
   * @default 'tenpay_identification'
   */
  schema?: string
  /**
   * Create and migrate the schema on first use. `false`: a schema migrated by someone else
   * (e.g. a role with DDL rights) is required at exactly {@link SCHEMA_VERSION}.
   * @default true
   */
  migrate?: boolean
  /** Bounds the wait for another replica's migration and each migration statement (ms). @default 60000 */
  migrationTimeoutMs?: number
  /** Connections of the store's own pool. @default 10 */
  maxConnections?: number
  /** Own pool: how long a new connection may take before the call fails (ms). @default 5000 */
  connectTimeoutMs?: number
  /**
   * Own pool: `statement_timeout` of every connection, and a client-side read timeout one
   * second longer (a peer that stops answering fails the call instead of hanging it); `0`: none.
   * @default 10000
   */
  statementTimeoutMs?: number
  /** Own pool: how long an idle connection stays open (ms). @default 30000 */
  idleTimeoutMs?: number
  /**
   * Send the store's statements as named prepared statements (parsed and planned once per
   * connection). Turn off behind a pooler that does not support them (PgBouncer in transaction
   * mode before 1.21).
   * @default true
   */
  preparedStatements?: boolean
  /** Own pool: `application_name` of the connections (shows in `pg_stat_activity`). @default '10npay-identification' */
  applicationName?: string
}

/** A {@link FlowStore} on PostgreSQL. */
export interface PostgresFlowStore extends FlowStore {
  readonly kind: 'PostgreSQL'
  readonly exclusive: false
  /** The schema that holds the tables. */
  readonly schema: string
  /** Sets up the pool and the schema now instead of on first use (fail fast at start-up). */
  ready(): Promise<void>
  /** Flows by state, failure reason, user or age, most recently changed first (`10npay-id flows`). */
  listFlows(filter?: FlowListFilter): Promise<FlowRecord[]>
  /** Ends the store's own pool (a `pool` passed in stays open); later calls reject. */
  close(): Promise<void>
}

/** The index that keeps one unfinished flow per user. */
const ONE_UNFINISHED = 'flows_one_unfinished_per_user'

interface FlowRow {
  id: string
  user_type: number
  user_id: number
  version: number
  state: string
  working: boolean
  ended: boolean
  stretch: number
  snapshot: unknown
  view: unknown
  applied_seq: number
  lease_owner: string | null
  lease_epoch: number
  lease_until: number | null
  created_at: number
  updated_at: number
}

const toRecord = (r: FlowRow): FlowRecord => ({
  id: r.id,
  userId: r.user_id,
  userType: r.user_type as UserType,
  version: r.version,
  state: r.state as FlowState,
  working: r.working,
  ended: r.ended,
  stretch: r.stretch,
  flow: r.snapshot as PersistedFlow,
  view: r.view as FlowView,
  appliedSeq: r.applied_seq,
  lease: r.lease_owner === null ? null : { owner: r.lease_owner, epoch: r.lease_epoch, until: r.lease_until ?? 0 },
  createdAt: r.created_at,
  updatedAt: r.updated_at,
})

/** JSON text for a `json` parameter (sent as text: `pg` would turn a JS array into a SQL array). */
const json = (value: unknown): string => JSON.stringify(value)

const isUniqueViolation = (err: unknown, constraint: string) =>
  (err as { code?: unknown })?.code === '23505' && (err as { constraint?: unknown }).constraint === constraint

function positive(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new TypeError(`createPostgresFlowStore: ${name} must be a number ≥ ${min}, got ${String(value)}`)
  }
  return value
}

/**
 * A {@link FlowStore} on PostgreSQL through `pg` 8 (an optional peer dependency:
 * `npm install pg@8`), for any number of service replicas. Flows are rows compared-and-set on
 * their version; every write of a running flow is fenced by its lease's owner and epoch; lease
 * times come from the database's clock; a partial unique index keeps one unfinished flow per
 * user; each flow has an inbox of host events and a bounded history. The factory is synchronous:
 * `pg` is loaded, the pool made and the schema created or migrated on first use.
 *
 * @example
 * import { createIdentificationService } from '10npay-identification/server'
 * import { createPostgresFlowStore } from '10npay-identification/postgres'
 *
 * const store = createPostgresFlowStore({ connectionString: process.env.DATABASE_URL })
 * await store.ready() // optional: migrate now and fail fast
 * const service = createIdentificationService({ api, store, coordinator })
 * // or with a pool of the application's: createPostgresFlowStore({ pool, schema: 'kyc' })
 */
export function createPostgresFlowStore(options: PostgresFlowStoreOptions): PostgresFlowStore {
  if (typeof options !== 'object' || options === null) throw new TypeError('createPostgresFlowStore: options must be an object with pool or connectionString')
  const { pool: given, connectionString } = options
  if (given !== undefined && (typeof given !== 'object' || given === null || typeof given.query !== 'function' || typeof given.connect !== 'function')) {
    throw new TypeError('createPostgresFlowStore: pool must be a pg.Pool (an object with query and connect)')
  }
  if (connectionString !== undefined && (typeof connectionString !== 'string' || connectionString.trim() === '')) {
    throw new TypeError('createPostgresFlowStore: connectionString must be a non-empty string')
  }
  if ((given === undefined) === (connectionString === undefined)) {
    throw new TypeError('createPostgresFlowStore: pass either pool or connectionString (exactly one)')
  }
  const schema = options.schema ?? 'tenpay_identification'
  checkSchemaName(schema)
  if (options.migrate !== undefined && typeof options.migrate !== 'boolean') throw new TypeError('createPostgresFlowStore: migrate must be a boolean')
  if (options.preparedStatements !== undefined && typeof options.preparedStatements !== 'boolean') {
    throw new TypeError('createPostgresFlowStore: preparedStatements must be a boolean')
  }
  if (options.applicationName !== undefined && typeof options.applicationName !== 'string') throw new TypeError('createPostgresFlowStore: applicationName must be a string')
  const migrationTimeoutMs = positive('migrationTimeoutMs', options.migrationTimeoutMs, 60_000)
  const maxConnections = positive('maxConnections', options.maxConnections, 10)
  const connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs, 5_000)
  const statementTimeoutMs = positive('statementTimeoutMs', options.statementTimeoutMs, 10_000, 0)
  const idleTimeoutMs = positive('idleTimeoutMs', options.idleTimeoutMs, 30_000)
  const migrate = options.migrate ?? true
  const prepared = options.preparedStatements ?? true
  const secrets = secretsOf(connectionString)

  // ---- statements: identifiers only (the checked schema), every value a parameter ----
  const s = quoteSchema(schema)
  const ms = (col: string) => `floor(extract(epoch FROM ${col}) * 1000)::float8`
  const cols = (t: string) =>
    `${t}.id, ${t}.user_type, ${t}.user_id::float8 AS user_id, ${t}.version, ${t}.state, ${t}.working, ${t}.ended, ${t}.stretch, ${t}.snapshot, ${t}.view, ` +
    `${t}.applied_seq::float8 AS applied_seq, ${t}.lease_owner, ${t}.lease_epoch, ${ms(`${t}.lease_until`)} AS lease_until, ` +
    `${ms(`${t}.created_at`)} AS created_at, ${ms(`${t}.updated_at`)} AS updated_at`
  const ttl = (param: string) => `now() + ${param}::float8 * interval '1 millisecond'`
  const stmt = (op: string, text: string): PgQuery => ({ text, name: prepared ? `tenpay_${op}_${(fnv32(text) >>> 0).toString(36)}` : undefined })

  const writeSql = (fenced: boolean) => `
    WITH upd AS (
      UPDATE ${s}.flows AS f
      SET version = f.version + 1, state = $3, working = $4, ended = $5, stretch = $6, snapshot = $7::json, view = $8::json,
          applied_seq = $9::bigint, history_n = f.history_n + $11::bigint, updated_at = now()${fenced ? `,
          lease_until = CASE WHEN $14::boolean THEN to_timestamp(0) ELSE f.lease_until END` : ''}
      WHERE f.id = $1 AND f.version = $2::int${fenced ? ' AND f.lease_owner = $12 AND f.lease_epoch = $13::int' : ''}
      RETURNING f.*
    ), applied AS (
      DELETE FROM ${s}.inbox AS i USING upd WHERE i.flow_id = upd.id AND i.seq <= upd.applied_seq
    ), appended AS (
      INSERT INTO ${s}.history (flow_id, n, entry)
      SELECT upd.id, upd.history_n - $11::bigint + h.n, h.entry
      FROM upd, json_array_elements($10::json) WITH ORDINALITY AS h(entry, n)
      WHERE h.n > $11::bigint - ${HISTORY_LIMIT}
    ), trimmed AS (
      DELETE FROM ${s}.history AS h USING upd WHERE h.flow_id = upd.id AND h.n <= upd.history_n - ${HISTORY_LIMIT}
    )
    SELECT ${cols('upd')} FROM upd`

  const sql = {
    create: stmt(
      'create',
      `WITH ins AS (
        INSERT INTO ${s}.flows AS f (id, user_type, user_id, version, state, working, ended, stretch, snapshot, view, history_n, lease_owner, lease_epoch, lease_until)
        SELECT $1::text, $2::smallint, $3::bigint, 1, $4::text, $5::boolean, $6::boolean, $7::int, $8::json, $9::json, $11::bigint,
               $12::text, CASE WHEN $12::text IS NULL THEN 0 ELSE 1 END, CASE WHEN $12::text IS NULL THEN NULL ELSE ${ttl('$13')} END
        WHERE NOT EXISTS (SELECT 1 FROM ${s}.flows AS u WHERE u.user_type = $2::smallint AND u.user_id = $3::bigint AND NOT u.ended)
        ON CONFLICT (user_type, user_id) WHERE NOT ended DO NOTHING
        RETURNING f.*
      ), appended AS (
        INSERT INTO ${s}.history (flow_id, n, entry)
        SELECT ins.id, h.n, h.entry FROM ins, json_array_elements($10::json) WITH ORDINALITY AS h(entry, n)
        WHERE h.n > $11::bigint - ${HISTORY_LIMIT}
      )
      SELECT ${cols('ins')} FROM ins`,
    ),
    unfinished: stmt('unfinished', `SELECT ${cols('f')} FROM ${s}.flows AS f WHERE f.user_type = $1 AND f.user_id = $2 AND NOT f.ended`),
    get: stmt('get', `SELECT ${cols('f')} FROM ${s}.flows AS f WHERE f.id = $1`),
    list: stmt(
      'list',
      `SELECT ${cols('f')} FROM ${s}.flows AS f
       WHERE ($1::text IS NULL OR f.state = $1) AND ($2::text IS NULL OR (f.view -> 'failure' ->> 'reason') = $2)
         AND ($3::int IS NULL OR f.user_type = $3) AND ($4::bigint IS NULL OR f.user_id = $4)
         AND ($5::float8 IS NULL OR f.updated_at < to_timestamp($5::float8 / 1000))
       ORDER BY f.updated_at DESC, f.id LIMIT $6::int`,
    ),
    findByUser: stmt('findByUser', `SELECT ${cols('f')} FROM ${s}.flows AS f WHERE f.user_type = $1 AND f.user_id = $2 ORDER BY f.created_at DESC, f.id DESC LIMIT 1`),
    write: stmt('write', writeSql(false)),
    writeFenced: stmt('writeFenced', writeSql(true)),
    otherUnfinished: stmt(
      'otherUnfinished',
      `SELECT o.id, o.user_type, o.user_id::float8 AS user_id FROM ${s}.flows AS f
       JOIN ${s}.flows AS o ON o.user_type = f.user_type AND o.user_id = f.user_id AND NOT o.ended AND o.id <> f.id
       WHERE f.id = $1`,
    ),
    acquireLease: stmt(
      'acquireLease',
      `UPDATE ${s}.flows AS f SET lease_owner = $2, lease_epoch = f.lease_epoch + 1, lease_until = ${ttl('$3')}
       WHERE f.id = $1 AND ($4::boolean OR f.lease_owner IS NULL OR f.lease_until <= now() OR f.lease_owner = $2)
       RETURNING ${cols('f')}, EXISTS (SELECT 1 FROM ${s}.inbox AS i WHERE i.flow_id = f.id AND i.seq > f.applied_seq) AS pending`,
    ),
    // One statement for the batch. Rows are locked in id order (no deadlock between two renewals).
    renewLeases: stmt(
      'renewLeases',
      `WITH req AS (
        SELECT r.id, r.epoch, r.ord FROM unnest($2::text[], $3::int[]) WITH ORDINALITY AS r(id, epoch, ord)
      ), held AS (
        SELECT f.id FROM ${s}.flows AS f JOIN req ON req.id = f.id
        WHERE f.lease_owner = $1 AND f.lease_epoch = req.epoch AND f.lease_until > now()
        ORDER BY f.id FOR UPDATE OF f
      ), upd AS (
        UPDATE ${s}.flows AS f SET lease_until = ${ttl('$4')} FROM held WHERE f.id = held.id
        RETURNING f.id, f.applied_seq
      )
      SELECT upd.id, EXISTS (SELECT 1 FROM ${s}.inbox AS i WHERE i.flow_id = upd.id AND i.seq > upd.applied_seq) AS pending
      FROM upd JOIN req ON req.id = upd.id ORDER BY req.ord`,
    ),
    releaseLease: stmt(
      'releaseLease',
      `UPDATE ${s}.flows SET lease_until = to_timestamp(0) WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3::int`,
    ),
    // The flow's row is locked before the sequence number is drawn: per flow, numbers are
    // committed in order, so a reader never skips an event committed late under a lower number.
    appendEvent: stmt(
      'appendEvent',
      `WITH f AS (SELECT id FROM ${s}.flows WHERE id = $1 FOR NO KEY UPDATE)
       INSERT INTO ${s}.inbox (flow_id, event, received_by) SELECT f.id, $2::json, $3::text FROM f
       RETURNING seq::float8 AS seq`,
    ),
    events: stmt(
      'events',
      `SELECT i.seq::float8 AS seq, i.event, i.received_by, ${ms('i.at')} AS at FROM ${s}.inbox AS i
       WHERE i.flow_id = $1 AND i.seq > $2::bigint ORDER BY i.seq`,
    ),
    orphans: stmt(
      'orphans',
      // Working flows, and waiting ones with inbox events not applied (found from the inbox,
      // which holds only events not applied yet).
      `SELECT o.id, o.stretch, o.working FROM (
         SELECT f.id, f.stretch, f.working, f.updated_at FROM ${s}.flows AS f
         WHERE f.working AND ($2::boolean OR f.lease_owner IS NULL OR f.lease_until <= now())
         UNION
         SELECT f.id, f.stretch, f.working, f.updated_at FROM ${s}.inbox AS i JOIN ${s}.flows AS f ON f.id = i.flow_id
         WHERE NOT f.working AND i.seq > f.applied_seq AND ($2::boolean OR f.lease_owner IS NULL OR f.lease_until <= now())
       ) AS o ORDER BY o.updated_at, o.id LIMIT $1::int`,
    ),
    history: stmt('history', `SELECT h.entry FROM ${s}.history AS h WHERE h.flow_id = $1 ORDER BY h.n`),
    counts: stmt(
      'counts',
      `SELECT count(*) FILTER (WHERE f.working AND NOT f.ended)::float8 AS working,
              count(*) FILTER (WHERE NOT f.working AND NOT f.ended)::float8 AS parked,
              count(*) FILTER (WHERE f.ended)::float8 AS ended
       FROM ${s}.flows AS f`,
    ),
  }

  // ---- the pool and the schema, set up once on first use ----
  let own: PgPool | undefined
  let setup: Promise<PgPool> | undefined
  let closed = false
  let closing: Promise<void> | undefined
  const closedError = () => new Error('PostgreSQL flow store: closed')

  async function init(): Promise<PgPool> {
    let pool = given ?? own
    if (!pool) {
      const Pool = await loadPool()
      if (closed) throw closedError()
      try {
        const p = new Pool({
          connectionString: connectionString!,
          max: maxConnections,
          connectionTimeoutMillis: connectTimeoutMs,
          idleTimeoutMillis: idleTimeoutMs,
          keepAlive: true,
          application_name: options.applicationName ?? '10npay-identification',
          ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs, query_timeout: statementTimeoutMs + 1_000 } : {}),
        })
        // An idle connection that breaks (a restarted server) is dropped by the pool; the next call makes a new one.
        p.on('error', () => {})
        own = pool = p
      } catch (err) {
        throw storeError('creating the pool', err, secrets)
      }
    }
    let version: number | undefined
    try {
      if (migrate) await migratePostgresSchema(pool, { schema, timeoutMs: migrationTimeoutMs })
      else version = await schemaVersion(pool, schema)
    } catch (err) {
      if (err instanceof SchemaTooNewError) throw err
      throw storeError('setting up the store', err, secrets)
    }
    if (version !== undefined) {
      if (version > SCHEMA_VERSION) throw new SchemaTooNewError(schema, version)
      if (version !== SCHEMA_VERSION) {
        throw new Error(`PostgreSQL flow store: schema "${schema}" is at version ${version}, this code needs ${SCHEMA_VERSION} (migrate: false; run the migrations)`)
      }
    }
    return pool
  }

  function ready(): Promise<PgPool> {
    if (closed) return Promise.reject(closedError())
    // A failed set-up is tried again by the next call (the database may be back by then).
    setup ??= init().catch((err: unknown) => {
      setup = undefined
      throw err
    })
    return setup
  }

  /** Runs one statement (one round trip); failures become a `DependencyError` naming PostgreSQL, redacted. */
  async function run<R>(op: string, query: PgQuery, values: unknown[]): Promise<R[]> {
    const pool = await ready()
    try {
      return (await pool.query({ ...query, values })).rows as R[]
    } catch (err) {
      throw storeError(op, err, secrets)
    }
  }

  const historyParams = (history: FlowHistoryEntry[] | undefined) => [json(history ?? []), history?.length ?? 0]

  return {
    kind: 'PostgreSQL',
    exclusive: false,
    schema,

    async ready() {
      await ready()
    },

    async create(flow: NewFlow, history?: FlowHistoryEntry[], lease?: { owner: string; ttlMs: number }) {
      const values = [
        flow.id, flow.userType, flow.userId, flow.state, flow.working, flow.ended, flow.stretch, json(flow.flow), json(flow.view), ...historyParams(history),
        lease ? lease.owner : null, lease ? lease.ttlMs : 0,
      ]
      // The insert and the read of the user's unfinished flow are two statements: between them
      // that flow may end, so the pair is tried again (a handful of times at most).
      for (let attempt = 0; attempt < 5; attempt++) {
        const pool = await ready()
        let rows: FlowRow[]
        try {
          rows = (await pool.query({ ...sql.create, values })).rows as FlowRow[]
        } catch (err) {
          if (isUniqueViolation(err, 'flows_pkey')) throw new Error(`PostgreSQL flow store: flow ${flow.id} exists`)
          throw storeError('create', err, secrets)
        }
        if (rows[0]) return { created: true, record: toRecord(rows[0]) }
        const existing = await run<FlowRow>('create', sql.unfinished, [flow.userType, flow.userId])
        if (existing[0]) return { created: false, record: toRecord(existing[0]) }
      }
      throw new DependencyError('PostgreSQL', `create failed: the unfinished flow of user ${flow.userType}:${flow.userId} kept changing; try again`)
    },

    async get(id) {
      const rows = await run<FlowRow>('get', sql.get, [id])
      return rows[0] && toRecord(rows[0])
    },

    async findByUser(userType, userId) {
      const rows = await run<FlowRow>('findByUser', sql.findByUser, [userType, userId])
      return rows[0] && toRecord(rows[0])
    },

    async write(id, expectedVersion, changes: FlowWrite, fence) {
      const values = [
        id,
        expectedVersion,
        changes.state,
        changes.working,
        changes.ended,
        changes.stretch,
        json(changes.flow),
        json(changes.view),
        changes.appliedSeq,
        ...historyParams(changes.history),
        ...(fence ? [fence.owner, fence.epoch, fence.release === true] : []),
      ]
      for (let attempt = 0; ; attempt++) {
        const pool = await ready()
        try {
          const rows = (await pool.query({ ...(fence ? sql.writeFenced : sql.write), values })).rows as FlowRow[]
          return rows[0] ? toRecord(rows[0]) : null
        } catch (err) {
          // An ended flow coming back (RETRY, RESTART) while the user has another unfinished one.
          if (!isUniqueViolation(err, ONE_UNFINISHED)) throw storeError('write', err, secrets)
          const other = await run<{ id: string; user_type: number; user_id: number }>('write', sql.otherUnfinished, [id])
          if (other[0]) throw new UnfinishedFlowExistsError(other[0].user_type, other[0].user_id, other[0].id)
          // That other flow ended in the meantime: the write may go through now.
          if (attempt >= 2) throw storeError('write', err, secrets)
        }
      }
    },

    async acquireLease(id, owner, ttlMs, o) {
      const rows = await run<FlowRow & { pending: boolean }>('acquireLease', sql.acquireLease, [id, owner, ttlMs, o?.force === true])
      return rows[0] ? { ...toRecord(rows[0]), pending: rows[0].pending } : null
    },

    async renewLeases(owner, leases, ttlMs) {
      if (leases.length === 0) return []
      const epochs = new Map<string, number>()
      for (const l of leases) if (!epochs.has(l.id)) epochs.set(l.id, l.epoch)
      return run<{ id: string; pending: boolean }>('renewLeases', sql.renewLeases, [owner, [...epochs.keys()], [...epochs.values()], ttlMs])
    },

    async releaseLease(id, owner, epoch) {
      await run('releaseLease', sql.releaseLease, [id, owner, epoch])
    },

    async appendEvent(id, event: HostEvent, receivedBy) {
      const rows = await run<{ seq: number }>('appendEvent', sql.appendEvent, [id, json(event), receivedBy])
      if (!rows[0]) throw new Error(`PostgreSQL flow store: no flow ${id}`)
      return rows[0].seq
    },

    async events(id, afterSeq) {
      const rows = await run<{ seq: number; event: HostEvent; received_by: string; at: number }>('events', sql.events, [id, afterSeq])
      return rows.map((r): InboxEntry => ({ seq: r.seq, event: r.event, receivedBy: r.received_by, at: r.at }))
    },

    async orphans(limit, o) {
      return run<{ id: string; stretch: number; working: boolean }>('orphans', sql.orphans, [limit, o?.includeHeld === true])
    },

    async listFlows(filter = {}) {
      const rows = await run<FlowRow>('list', sql.list, [
        filter.state ?? null, filter.reason ?? null, filter.userType ?? null, filter.userId ?? null, filter.updatedBefore ?? null, filter.limit ?? 50,
      ])
      return rows.map(toRecord)
    },

    async history(id) {
      return (await run<{ entry: FlowHistoryEntry }>('history', sql.history, [id])).map((r) => r.entry)
    },

    async counts(): Promise<FlowCounts> {
      const [row] = await run<FlowCounts>('counts', sql.counts, [])
      return { working: row!.working, parked: row!.parked, ended: row!.ended }
    },

    close() {
      if (!closing) {
        closed = true
        closing = (async () => {
          await setup?.catch(() => {})
          if (own) {
            try {
              await own.end()
            } catch (err) {
              throw storeError('close', err, secrets)
            }
          }
        })()
      }
      return closing
    },
  }
}
