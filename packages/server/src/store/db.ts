// Opens the database named by LICENSEKIT_DATABASE_URL: embedded SQLite (WAL, lock waits that do not
// block the event loop, foreign keys) or PostgreSQL (pool). Everything above this file sees one typed Kysely<Database>.
import fs from "node:fs";
import path from "node:path";
import Sqlite from "better-sqlite3";
import { Kysely, PostgresDialect, type SelectQueryBuilder, type Transaction } from "kysely";
import pg from "pg";
import { type DatabaseConfig, SQLITE_LOCK_WAIT_MS } from "../config.js";
import type { Database } from "./schema.js";
import { SqliteBatchWriter } from "./sqlite-batch-writer.js";
import { ImmediateSqliteDialect, type SqliteLockWaits } from "./sqlite-driver.js";
import { WalCheckpointer } from "./wal-checkpointer.js";

export type Engine = "sqlite" | "postgres";
export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** A query runner: the root handle or a transaction. */
export type Q = Kysely<Database> | Transaction<Database>;

export interface Store {
  db: Db;
  engine: Engine;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** A SQLite database file's background checkpoints (started by a serving process); none for PostgreSQL or :memory:. */
  checkpointer?: WalCheckpointer;
  /** A SQLite database file's thread for the batched side effects (started by a serving process); none for PostgreSQL or :memory:. */
  batchWriter?: SqliteBatchWriter;
  /** SQLite: how often a statement found another process's write lock taken, and what came of it. */
  lockWaits?: SqliteLockWaits;
}

/** How long a request waits for a PostgreSQL connection before it is answered 503. */
export const PG_CONNECT_TIMEOUT_MS = 2000;

const INT8_OID = 20;
const pgTypes = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    // Counters and epoch-millisecond timestamps are bigint; all stay below 2^53.
    if (oid === INT8_OID) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
};

export async function openStore(config: DatabaseConfig): Promise<Store> {
  if (config.engine === "sqlite") {
    if (config.file !== ":memory:") fs.mkdirSync(path.dirname(config.file), { recursive: true });
    const raw = new Sqlite(config.file);
    raw.pragma("journal_mode = WAL");
    // The driver waits for another process's write lock itself, between turns of the event loop.
    raw.pragma("busy_timeout = 0");
    raw.pragma("foreign_keys = ON");
    raw.pragma("synchronous = NORMAL");
    const lockWaitMs = config.lockWaitMs ?? SQLITE_LOCK_WAIT_MS;
    const dialect = new ImmediateSqliteDialect(raw, lockWaitMs);
    const db = new Kysely<Database>({ dialect });
    // The background threads open the file with connections of their own; an in-memory database has none to share.
    const onFile = config.file !== ":memory:";
    const checkpointer = onFile ? new WalCheckpointer(raw, config.file) : undefined;
    const batchWriter = onFile ? new SqliteBatchWriter(config.file, lockWaitMs) : undefined;
    return {
      db,
      engine: "sqlite",
      ping: async () => {
        raw.prepare("select 1").get();
      },
      close: async () => {
        await batchWriter?.stop();
        await checkpointer?.stop();
        await db.destroy();
      },
      lockWaits: dialect.lockWaits,
      ...(checkpointer ? { checkpointer } : {}),
      ...(batchWriter ? { batchWriter } : {}),
    };
  }
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize,
    // Waiting for a connection (a new one, or a free one from a busy pool) gives up after this, so a
    // request fails fast with 503 while the database is unreachable instead of hanging.
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
    keepAlive: true,
    types: pgTypes,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on("error", () => {});
  // Neither may a client in use that loses it between two statements (a transaction awaiting its
  // own work while the server restarts): with no query to fail, pg emits 'error' on the client. The
  // next query on it fails ("not queryable", answered 503) and the pool discards it on release.
  pool.on("connect", (client) => {
    client.on("error", () => {});
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    engine: "postgres",
    ping: async () => {
      const client = await pool.connect();
      try {
        await client.query("select 1");
      } finally {
        client.release();
      }
    },
    close: () => db.destroy(),
  };
}

/** Row lock for the read-check-write pattern: FOR UPDATE on PostgreSQL; on SQLite the
 * BEGIN IMMEDIATE transaction already holds the database write lock. */
// biome-ignore lint/suspicious/noExplicitAny: generic over any select builder
export function forUpdate<QB extends SelectQueryBuilder<Database, any, any>>(engine: Engine, qb: QB): QB {
  return engine === "postgres" ? (qb.forUpdate() as QB) : qb;
}

interface DriverError {
  code?: string;
  message?: string;
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as DriverError;
  return e?.code === "23505" || e?.code === "SQLITE_CONSTRAINT_UNIQUE" || e?.code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

export function isForeignKeyViolation(err: unknown): boolean {
  const e = err as DriverError;
  return e?.code === "23503" || e?.code === "SQLITE_CONSTRAINT_FOREIGNKEY";
}

/** Errors that mean "the database cannot serve right now" (answered 503 with Retry-After), as opposed to bugs. */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as DriverError & { errors?: unknown[] };
  // a connect that tried several addresses fails with an AggregateError of the single failures
  if (Array.isArray(e?.errors) && e.errors.length > 0 && e.errors.every(isDatabaseUnavailable)) return true;
  const code = e?.code ?? "";
  if (["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH"].includes(code)) return true;
  if (/^(08|53|57P)/.test(code)) return true; // connection exception, insufficient resources, operator intervention
  // A deadlock or serialization failure rolled the whole transaction back: nothing was written, and
  // the same request can simply be sent again (503 + Retry-After; 5xx answers are never stored as
  // idempotent replays).
  if (code === "40P01" || code === "40001") return true;
  if (/^SQLITE_(BUSY|LOCKED|CANTOPEN|IOERR|FULL|READONLY)/.test(code)) return true;
  const msg = e?.message ?? "";
  return /Connection terminated|not queryable|timeout exceeded when trying to connect|Cannot use a pool after calling end|database connection is not open|The database connection is not open|driver has already been destroyed/i.test(
    msg,
  );
}
