// Marks floating leases that passed their timeout without a heartbeat as 'expired', with one
// `floating.expired` event each (actor system). Seats do not wait for this job: a lease counts only
// while unexpired. The job is bookkeeping and audit, safe to run from several processes at once
// (each lease is matched by exactly one conditional update, so it is audited exactly once).
import type { Clock } from "../clock.js";
import { type EventInput, recordEvent } from "../store/audit-events.js";
import type { Store } from "../store/db.js";
import { expireDueLeases, type LeaseRow } from "../store/leases.js";

const BATCH = 500;

/** The one `floating.expired` event of a lease, whoever noticed the expiry first (this job or a heartbeat). */
export function leaseExpiredEvent(lease: LeaseRow, now: number, requestId?: string): EventInput {
  return {
    event_type: "floating.expired",
    actor_type: "system",
    actor_id: "lease-expiry",
    resource_type: "license",
    resource_id: lease.license_id,
    metadata: { lease_id: lease.id, device_id: lease.device_id, lease_expires_at: new Date(lease.expires_at).toISOString() },
    ...(requestId ? { request_id: requestId } : {}),
    created_at: now,
  };
}

export async function expireFloatingLeases(store: Store, clock: Clock): Promise<number> {
  let total = 0;
  for (;;) {
    const now = clock.now();
    const marked = await store.db.transaction().execute(async (trx) => {
      const rows = await expireDueLeases(trx, now, BATCH);
      for (const lease of rows) {
        await recordEvent(trx, leaseExpiredEvent(lease, now));
      }
      return rows.length;
    });
    total += marked;
    if (marked < BATCH) return total;
  }
}
