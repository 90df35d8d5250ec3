import type { SqliteFlowReader } from '../adapters/node/sqliteFlowStore.js'
import type { FlowHistoryEntry, FlowListFilter, FlowRecord, FlowState } from '../adapters/server/types.js'
import type { UserType } from '../machine/types.js'
import { EXIT, UsageError, type CliIo } from './io.js'

/** Where the flows are: a SQLite file (read-only) or PostgreSQL. */
export interface FlowSource {
  db?: string
  postgres?: string
  schema?: string
}

/** What the command reads through: the SQLite reader, or the PostgreSQL store as it is. */
type Reader = Pick<SqliteFlowReader, 'get' | 'findByUser' | 'history' | 'listFlows' | 'close'>

/** Opens the flows for reading: SQLite read-only (no lease: a running service keeps its file), PostgreSQL without migrating. */
async function open(source: FlowSource): Promise<Reader> {
  if (Boolean(source.db) === Boolean(source.postgres)) throw new UsageError('give either --db <file> (SQLite) or --postgres <url>')
  if (source.db) {
    const { openSqliteFlowReader } = await import('../adapters/node/sqliteFlowStore.js')
    return openSqliteFlowReader(source.db)
  }
  const { createPostgresFlowStore } = await import('../adapters/postgres/postgresFlowStore.js')
  const store = createPostgresFlowStore({ connectionString: source.postgres!, migrate: false, ...(source.schema && { schema: source.schema }) })
  return store
}

/** `10m`, `2h`, `3d`, `90s` → milliseconds. */
export function parseAge(v: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(v.trim())
  if (!m) throw new UsageError(`--older-than must be a number with s, m, h or d (got ${JSON.stringify(v)})`)
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']
}

const ago = (t: number, now: number) => {
  const s = Math.max(0, Math.round((now - t) / 1000))
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : s < 172_800 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86_400)} d ago`
}

/** A table with aligned columns. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n'
}

const reasonOf = (r: FlowRecord) => (r.view.state === 'failed' ? `${r.view.failure.reason}${r.view.failure.phase ? ` (${r.view.failure.phase})` : ''}` : '')

/** `flows list`: flows by state, failure reason, user or age, most recently changed first. */
export async function listFlows(o: FlowSource & { state?: FlowState; reason?: string; userId?: number; userType?: UserType; olderThan?: string; limit: number; json: boolean }, io: CliIo): Promise<number> {
  const filter: FlowListFilter = {
    limit: o.limit,
    ...(o.state && { state: o.state }),
    ...(o.reason && { reason: o.reason }),
    ...(o.userId !== undefined && { userId: o.userId }),
    ...(o.userType !== undefined && { userType: o.userType }),
    ...(o.olderThan && { updatedBefore: Date.now() - parseAge(o.olderThan) }),
  }
  const reader = await open(o)
  try {
    const flows = await reader.listFlows(filter)
    if (o.json) io.stdout.write(`${JSON.stringify(flows.map((f) => ({ ...f.view, updatedAt: new Date(f.updatedAt).toISOString(), createdAt: new Date(f.createdAt).toISOString() })), null, 2)}\n`)
    else if (flows.length === 0) io.stdout.write('no flows match\n')
    else {
      const now = Date.now()
      io.stdout.write(table([['ID', 'USER', 'STATE', 'FAILURE', 'CHANGED'], ...flows.map((f) => [f.id, `${f.userType}:${f.userId}`, f.state, reasonOf(f), ago(f.updatedAt, now)])]))
    }
    return EXIT.ok
  } finally {
    await reader.close()
  }
}

/** One history entry as a line of the timeline. */
function describeEntry(e: FlowHistoryEntry): [string, string] {
  switch (e.kind) {
    case 'view':
      return ['state', `${e.view.state}${e.view.state === 'failed' ? ` — ${e.view.failure.reason}: ${e.view.failure.message}` : ''}${e.view.state === 'finalized' ? ` — individualId ${e.view.result.individualId}` : ''}`]
    case 'event':
      return ['event', `${e.event} received by ${e.receivedBy}${e.applied ? '' : ' (not taken in that state)'}`]
    case 'request':
      return ['request', `${e.operation} → ${e.httpStatus ?? e.outcome}${e.outcome !== 'ok' ? ` ${e.outcome}` : ''}${e.providerStatus ? ` ${e.providerStatus}` : ''} (${e.durationMs} ms)`]
  }
}

/** `flows show`: one flow (by id, or a user's latest) and its timeline. */
export async function showFlow(o: FlowSource & { id?: string; userId?: number; userType: UserType; json: boolean }, io: CliIo): Promise<number> {
  if (!o.id && o.userId === undefined) throw new UsageError('give a flow id, or --user-id for the user\'s latest flow')
  const reader = await open(o)
  try {
    const flow = o.id ? await reader.get(o.id.toLowerCase()) : await reader.findByUser(o.userType, o.userId!)
    if (!flow) {
      io.stderr.write(`error: ${o.id ? `no flow ${o.id}` : `user ${o.userType}:${o.userId} has no flow`}\n`)
      return EXIT.failed
    }
    const history = await reader.history(flow.id)
    if (o.json) {
      io.stdout.write(`${JSON.stringify({ flow: flow.view, createdAt: new Date(flow.createdAt).toISOString(), lease: flow.lease, history }, null, 2)}\n`)
      return EXIT.ok
    }
    const v = flow.view
    io.stdout.write(
      [
        `flow     ${flow.id}`,
        `user     ${flow.userType}:${flow.userId}`,
        `state    ${v.state}${v.state === 'failed' ? ` — ${v.failure.reason}${v.failure.phase ? ` in ${v.failure.phase}` : ''}: ${v.failure.message}` : ''}`,
        ...(v.state === 'finalized' ? [`result   correlationId ${v.result.correlationId}, individualId ${v.result.individualId}`] : []),
        `started  ${new Date(flow.createdAt).toISOString()}`,
        `changed  ${new Date(flow.updatedAt).toISOString()} (version ${flow.version})`,
        ...(flow.lease && flow.lease.until > Date.now() ? [`driven   by ${flow.lease.owner} (epoch ${flow.lease.epoch})`] : []),
        '',
      ].join('\n'),
    )
    if (history.length === 0) io.stdout.write('no history\n')
    else {
      const t0 = history[0]!.at
      io.stdout.write(table([['AT', '+S', 'WHAT', 'DETAIL'], ...history.map((e) => [new Date(e.at).toISOString().slice(11, 23), ((e.at - t0) / 1000).toFixed(1), ...describeEntry(e)])]))
    }
    return EXIT.ok
  } finally {
    await reader.close()
  }
}
