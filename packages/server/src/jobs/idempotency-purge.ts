// Deletes idempotency records past their retention (D3: 24 h by default).
import type { Clock } from "../clock.js";
import type { Store } from "../store/db.js";

export async function purgeExpiredIdempotencyRecords(store: Store, clock: Clock): Promise<number> {
  const res = await store.db
    .deleteFrom("idempotency_records")
    .where("state", "=", "completed")
    .where("expires_at", "<=", clock.now())
    .executeTakeFirst();
  return Number(res.numDeletedRows ?? 0);
}
