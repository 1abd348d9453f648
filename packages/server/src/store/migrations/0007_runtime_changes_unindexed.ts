// SQLite only: the runtime change feed loses its index on created_at. Every license, device or
// feature-assignment write inserts a feed row, and that index was one more b-tree page in each of
// their commits (docs/benchmarks.md). On SQLite only the hourly purge read created_at, and it now
// finds where to cut by seq (jobs/runtime-invalidation.ts, purgeRuntimeChanges). PostgreSQL keeps
// the index: its poll re-reads a short window of the feed by created_at.
import type { Kysely } from "kysely";
import type { Engine } from "../db.js";

export async function up(db: Kysely<unknown>, engine: Engine): Promise<void> {
  if (engine === "sqlite") await db.schema.dropIndex("runtime_changes_created").ifExists().execute();
}
