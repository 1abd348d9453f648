// The webhook outbox (D6): rows are written by recordEvent in the event's own transaction; this file
// claims due rows for the delivery worker, records each attempt's outcome, and serves the delivery
// list and the operator's retry. A claim is `claimed_until` in the future: on PostgreSQL candidates
// are chosen `FOR UPDATE SKIP LOCKED`, so concurrent workers in any number of processes never pick
// the same row; on SQLite the write transaction is exclusive anyway. Outcomes are written only while
// the writer's own claim still stands, so a lapsed claim can never record an attempt twice.
import { type Engine, forUpdate, type Q, type Store } from "./db.js";
import { iso } from "./json.js";
import { toPage } from "./pagination.js";
import type { WebhookDeliveriesTable } from "./schema.js";
import type { Selectable } from "kysely";

export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
export type WebhookDeliveryStatus = WebhookDeliveriesTable["status"];
export const WEBHOOK_DELIVERY_STATUSES = ["pending", "delivered", "failed"] as const;

/** How long a claimed delivery belongs to its worker; longer than any attempt can take. */
export const CLAIM_MS = 30_000;
/** At most this much of a receiver's answer is kept (bytes of UTF-8). */
export const RESPONSE_BODY_LIMIT = 2048;

/** The delivery as GET /webhooks/{id}/deliveries shows it. */
export interface WebhookDeliveryView {
  id: string;
  webhook_id: string;
  event_sequence: number;
  event_type: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  last_response_body: string | null;
  delivered_at: string | null;
  created_at: string;
}

export function webhookDeliveryView(r: WebhookDeliveryRow): WebhookDeliveryView {
  const at = (ms: number | null) => (ms === null ? null : iso(ms));
  return {
    id: r.id,
    webhook_id: r.endpoint_id,
    event_sequence: Number(r.event_sequence),
    event_type: r.event_type,
    status: r.status,
    attempts: Number(r.attempts),
    next_attempt_at: r.status === "pending" ? iso(r.next_attempt_at) : null,
    last_attempt_at: at(r.last_attempt_at),
    last_status_code: r.last_status_code,
    last_error: r.last_error,
    last_response_body: r.last_response_body,
    delivered_at: at(r.delivered_at),
    created_at: iso(r.created_at),
  };
}

/** Whether anything is due: a plain read, so an idle poll takes no write lock (SQLite) or row locks. */
export async function hasDueDelivery(q: Q, now: number): Promise<boolean> {
  const row = await q
    .selectFrom("webhook_deliveries")
    .select("id")
    .where("status", "=", "pending")
    .where("next_attempt_at", "<=", now)
    .where((eb) => eb.or([eb("claimed_until", "is", null), eb("claimed_until", "<", now)]))
    .where("endpoint_id", "in", (eb) => eb.selectFrom("webhook_endpoints").select("id").where("is_active", "=", 1))
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Claims the oldest due delivery of an active endpoint (pending, next_attempt_at <= now, no live
 * claim) until `now + CLAIM_MS`, in one transaction. Undefined when nothing is due. Deliveries of a
 * deactivated endpoint are never claimed: they wait, neither sent nor failed.
 */
export async function claimDueDelivery(store: Store, now: number): Promise<WebhookDeliveryRow | undefined> {
  return store.db.transaction().execute(async (trx) => {
    let candidates = trx
      .selectFrom("webhook_deliveries")
      .selectAll()
      .where("status", "=", "pending")
      .where("next_attempt_at", "<=", now)
      .where((eb) => eb.or([eb("claimed_until", "is", null), eb("claimed_until", "<", now)]))
      .where("endpoint_id", "in", (eb) => eb.selectFrom("webhook_endpoints").select("id").where("is_active", "=", 1))
      .orderBy("next_attempt_at")
      .orderBy("id")
      .limit(1);
    // Rows another transaction is claiming right now are skipped, not waited for; PostgreSQL also
    // re-checks the conditions on a row that was claimed and committed meanwhile.
    if (store.engine === "postgres") candidates = candidates.forUpdate().skipLocked();
    const row = await candidates.executeTakeFirst();
    if (!row) return undefined;
    const claimedUntil = now + CLAIM_MS;
    const res = await trx
      .updateTable("webhook_deliveries")
      .set({ claimed_until: claimedUntil, updated_at: now })
      .where("id", "=", row.id)
      .where("status", "=", "pending")
      .where((eb) => eb.or([eb("claimed_until", "is", null), eb("claimed_until", "<", now)]))
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) return undefined;
    return { ...row, claimed_until: claimedUntil, updated_at: now };
  });
}

/** What one attempt came to. */
export type AttemptOutcome =
  | { kind: "delivered"; statusCode: number; responseBody: string }
  | { kind: "retry"; nextAttemptAt: number; statusCode: number | null; error: string; responseBody: string | null }
  | { kind: "failed"; statusCode: number | null; error: string; responseBody: string | null };

/**
 * Records an attempt on a delivery this worker claimed (`claim` = the row as claimed). Returns false
 * when the claim no longer stands (it lapsed and someone else took the row), in which case nothing
 * is written. A delivered one also stamps its endpoint's last_delivery_at.
 */
export async function recordAttempt(store: Store, claim: WebhookDeliveryRow, outcome: AttemptOutcome, now: number): Promise<boolean> {
  return store.db.transaction().execute(async (trx) => {
    const base = {
      attempts: Number(claim.attempts) + 1,
      claimed_until: null,
      last_attempt_at: now,
      last_status_code: outcome.statusCode,
      last_response_body: outcome.responseBody,
      updated_at: now,
    };
    const set =
      outcome.kind === "delivered"
        ? { ...base, status: "delivered" as const, last_error: null, delivered_at: now }
        : outcome.kind === "retry"
          ? { ...base, status: "pending" as const, last_error: outcome.error, next_attempt_at: outcome.nextAttemptAt }
          : { ...base, status: "failed" as const, last_error: outcome.error };
    const res = await trx
      .updateTable("webhook_deliveries")
      .set(set)
      .where("id", "=", claim.id)
      .where("status", "=", "pending")
      .where("claimed_until", "=", claim.claimed_until)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) return false;
    if (outcome.kind === "delivered") {
      await trx.updateTable("webhook_endpoints").set({ last_delivery_at: now }).where("id", "=", claim.endpoint_id).execute();
    }
    return true;
  });
}

/** Gives a claimed delivery back without counting an attempt (endpoint deactivated meanwhile, shutdown). */
export async function releaseClaim(store: Store, claim: WebhookDeliveryRow, now: number): Promise<void> {
  await store.db
    .updateTable("webhook_deliveries")
    .set({ claimed_until: null, updated_at: now })
    .where("id", "=", claim.id)
    .where("claimed_until", "=", claim.claimed_until)
    .execute();
}

/** A delivery of this endpoint (a delivery of another endpoint is not found), row-locked for a change. */
export function lockEndpointDelivery(q: Q, engine: Engine, endpointId: string, deliveryId: string): Promise<WebhookDeliveryRow | undefined> {
  return forUpdate(engine, q.selectFrom("webhook_deliveries").selectAll().where("id", "=", deliveryId).where("endpoint_id", "=", endpointId)).executeTakeFirst();
}

/** Newest first (ids are time-sortable); `before` is the id the page starts below. */
export async function listEndpointDeliveries(q: Q, endpointId: string, status: WebhookDeliveryStatus | undefined, limit: number, before: string | null) {
  let qb = q.selectFrom("webhook_deliveries").selectAll().where("endpoint_id", "=", endpointId).orderBy("id", "desc").limit(limit + 1);
  if (status !== undefined) qb = qb.where("status", "=", status);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}

/**
 * The operator's retry: the delivery is pending and due now, whatever it was. `attempts` is kept
 * (rounds of 12 are counted from it, so a failed one gets a whole new round). A claim still held by a
 * worker that is sending it right now is left alone: that attempt is the retry.
 */
export async function makeDeliveryDueNow(q: Q, row: WebhookDeliveryRow, now: number): Promise<WebhookDeliveryRow> {
  const claimedUntil = row.claimed_until !== null && row.claimed_until > now ? row.claimed_until : null;
  const next: WebhookDeliveryRow = { ...row, status: "pending", next_attempt_at: now, claimed_until: claimedUntil, updated_at: now };
  await q
    .updateTable("webhook_deliveries")
    .set({ status: "pending", next_attempt_at: now, claimed_until: claimedUntil, updated_at: now })
    .where("id", "=", row.id)
    .execute();
  return next;
}
