// Per-license hourly counts of successful validate/check calls (D7). The hot path only counts in
// memory; the batched side-effect flush adds each (license, hour, operation) total with an upsert,
// so several processes on one database add up instead of overwriting each other.
import type { Kysely } from "kysely";
import type { Engine } from "../db.js";

export async function up(db: Kysely<unknown>, _engine: Engine): Promise<void> {
  const ms = "bigint" as const;

  // hour_start: epoch ms of the start of the UTC hour; operation: 'validate' | 'check'. The primary
  // key also serves the lookup of one license's hours in a range.
  await db.schema
    .createTable("runtime_call_counts")
    // No foreign key: these are statistics written by a batched flush, and one row that could not
    // be written (say, for a license deleted in between) must never block every later flush.
    .addColumn("license_id", "text", (c) => c.notNull())
    .addColumn("hour_start", ms, (c) => c.notNull())
    .addColumn("operation", "text", (c) => c.notNull())
    .addColumn("calls", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("runtime_call_counts_pk", ["license_id", "hour_start", "operation"])
    .execute();
}
