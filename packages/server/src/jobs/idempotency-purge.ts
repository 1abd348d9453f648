// Deletes idempotency records past their retention (D3: 24 h by default).
import { sql } from "kysely";
import type { Clock } from "../clock.js";
import type { Store } from "../store/db.js";

/**
 * Deletes the completed records whose retention has ended; returns how many. Unfinished records are
 * left to the request that takes their key over.
 *
 * On SQLite there is no index on expires_at (migration 0007). Records are in insertion order by
 * rowid, and every completed one keeps its answer for the same retention, so expires_at rises with
 * rowid. The rows are read in rowid order up to the first one still retained, and the completed ones
 * before it go. A record out of that order is at worst kept until a later purge: one taken first and
 * completed after records written meanwhile (a report export's), or any after a change of the
 * retention setting. Until then a request with its key finds it expired and replaces it.
 */
export async function purgeExpiredIdempotencyRecords(store: Store, clock: Clock): Promise<number> {
  const now = clock.now();
  const db = store.db;
  let del = db.deleteFrom("idempotency_records").where("state", "=", "completed").where("expires_at", "<=", now);
  if (store.engine === "sqlite") {
    const keep = await db
      .selectFrom("idempotency_records")
      .select(sql<number>`rowid`.as("at"))
      .where("expires_at", ">", now)
      .orderBy(sql`rowid`)
      .limit(1)
      .executeTakeFirst();
    if (keep) del = del.where(sql<number>`rowid`, "<", keep.at);
  }
  const res = await del.executeTakeFirst();
  return Number(res.numDeletedRows ?? 0);
}
