// Subscriptions: linked external billing facts of a product (NOTES §13). No billing logic.
import { newId } from "../ids.js";
import { type Engine, forUpdate, type Q } from "./db.js";
import { iso, parseJsonObject } from "./json.js";
import { toPage } from "./pagination.js";
import type { SubscriptionRow } from "./schema.js";

export const SUBSCRIPTION_STATUSES = ["trialing", "active", "past_due", "paused", "canceled"] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

export interface SubscriptionView {
  id: string;
  product_id: string;
  customer_id?: string;
  external_system: string;
  external_id: string;
  status: SubscriptionStatus;
  current_period_start: string;
  current_period_end: string;
  cancel_at_period_end: boolean;
  canceled_at?: string;
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export function subscriptionView(r: SubscriptionRow): SubscriptionView {
  return {
    id: r.id,
    product_id: r.product_id,
    ...(r.customer_id !== null ? { customer_id: r.customer_id } : {}),
    external_system: r.external_system,
    external_id: r.external_id,
    status: r.status,
    current_period_start: iso(r.current_period_start),
    current_period_end: iso(r.current_period_end),
    cancel_at_period_end: r.cancel_at_period_end === 1,
    ...(r.canceled_at !== null ? { canceled_at: iso(r.canceled_at) } : {}),
    metadata: parseJsonObject(r.metadata),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

/** The stored fields a create or update sets (timestamps in epoch ms). */
export interface SubscriptionFields {
  customer_id: string | null;
  external_system: string;
  external_id: string;
  status: SubscriptionStatus;
  current_period_start: number;
  current_period_end: number;
  cancel_at_period_end: boolean;
  canceled_at: number | null;
  metadata: Record<string, unknown>;
}

/** The stored columns of the fields a create or update writes. */
function columns(f: SubscriptionFields) {
  return {
    customer_id: f.customer_id,
    external_system: f.external_system,
    external_id: f.external_id,
    status: f.status,
    current_period_start: f.current_period_start,
    current_period_end: f.current_period_end,
    cancel_at_period_end: f.cancel_at_period_end ? 1 : 0,
    canceled_at: f.canceled_at,
    metadata: JSON.stringify(f.metadata),
  };
}

export async function insertSubscription(q: Q, productId: string, f: SubscriptionFields, now: number): Promise<SubscriptionRow> {
  const row: SubscriptionRow = {
    id: newId("sub", now),
    product_id: productId,
    ...columns(f),
    created_at: now,
    updated_at: now,
  };
  await q.insertInto("subscriptions").values(row).execute();
  return row;
}

export function findSubscription(q: Q, id: string): Promise<SubscriptionRow | undefined> {
  return q.selectFrom("subscriptions").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Row lock for a subscription that is about to change. */
export function lockSubscription(q: Q, engine: Engine, id: string): Promise<SubscriptionRow | undefined> {
  return forUpdate(engine, q.selectFrom("subscriptions").selectAll().where("id", "=", id)).executeTakeFirst();
}

export function findSubscriptionByExternal(q: Q, productId: string, externalSystem: string, externalId: string): Promise<SubscriptionRow | undefined> {
  return q
    .selectFrom("subscriptions")
    .selectAll()
    .where("product_id", "=", productId)
    .where("external_system", "=", externalSystem)
    .where("external_id", "=", externalId)
    .executeTakeFirst();
}

export async function listSubscriptions(q: Q, productId: string, limit: number, before: string | null) {
  let qb = q.selectFrom("subscriptions").selectAll().where("product_id", "=", productId).orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}

/** The current stored fields of a row, in the shape a create takes. */
export function subscriptionFields(r: SubscriptionRow): SubscriptionFields {
  return {
    customer_id: r.customer_id,
    external_system: r.external_system,
    external_id: r.external_id,
    status: r.status,
    current_period_start: r.current_period_start,
    current_period_end: r.current_period_end,
    cancel_at_period_end: r.cancel_at_period_end === 1,
    canceled_at: r.canceled_at,
    metadata: parseJsonObject(r.metadata),
  };
}

/** Writes every field of `f` and returns the new row. Metadata is replaced, not merged. */
export async function updateSubscription(q: Q, row: SubscriptionRow, f: SubscriptionFields, now: number): Promise<SubscriptionRow> {
  const set = {
    ...columns(f),
    updated_at: now,
  };
  await q.updateTable("subscriptions").set(set).where("id", "=", row.id).execute();
  return { ...row, ...set };
}
