// SQLite only: two indexes on created-at/expires-at times go. Each was one more b-tree page in the
// commit of every write that inserts into its table (docs/benchmarks.md, "Fewer pages per commit"):
// - runtime_changes_created: every license, device or feature-assignment write inserts a feed row.
//   On SQLite only the hourly purge read created_at; it now cuts by seq (purgeRuntimeChanges).
// - idempotency_expires: every keyed write inserts a record. Only the retention purge read
//   expires_at; it now cuts by rowid (purgeExpiredIdempotencyRecords).
// On SQLite a table's rows are in insertion order by seq/rowid, and writers take turns, so those
// times rise with it. PostgreSQL keeps both indexes: its feed poll re-reads a window by created_at,
// and a heap table has no order to cut by.
import type { Kysely } from "kysely";
import type { Engine } from "../db.js";

export async function up(db: Kysely<unknown>, engine: Engine): Promise<void> {
  if (engine !== "sqlite") return;
  await db.schema.dropIndex("runtime_changes_created").ifExists().execute();
  await db.schema.dropIndex("idempotency_expires").ifExists().execute();
}
