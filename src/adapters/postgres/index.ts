export { createPostgresFlowStore } from './postgresFlowStore.js'
export type { PostgresFlowStore, PostgresFlowStoreOptions } from './postgresFlowStore.js'
export { SCHEMA_VERSION, SchemaTooNewError } from './migrations.js'
export type { PgPool, PgPoolClient, PgQuery, PgResult } from './pg.js'
