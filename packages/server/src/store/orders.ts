// Orders: linked external purchase facts of a product (NOTES §13). No billing logic.
import { newId } from "../ids.js";
import { type Engine, forUpdate, type Q } from "./db.js";
import { iso, parseJsonObject } from "./json.js";
import { toPage } from "./pagination.js";
import type { OrderRow } from "./schema.js";

export const ORDER_STATUSES = ["pending", "paid", "fulfilled", "canceled", "refunded"] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export interface OrderView {
  id: string;
  product_id: string;
  customer_id?: string;
  subscription_id?: string;
  external_system: string;
  external_id: string;
  status: OrderStatus;
  period_start?: string;
  period_end?: string;
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export function orderView(r: OrderRow): OrderView {
  return {
    id: r.id,
    product_id: r.product_id,
    ...(r.customer_id !== null ? { customer_id: r.customer_id } : {}),
    ...(r.subscription_id !== null ? { subscription_id: r.subscription_id } : {}),
    external_system: r.external_system,
    external_id: r.external_id,
    status: r.status,
    ...(r.period_start !== null ? { period_start: iso(r.period_start) } : {}),
    ...(r.period_end !== null ? { period_end: iso(r.period_end) } : {}),
    metadata: parseJsonObject(r.metadata),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

/** The stored fields a create or update sets (timestamps in epoch ms). */
export interface OrderFields {
  customer_id: string | null;
  subscription_id: string | null;
  external_system: string;
  external_id: string;
  status: OrderStatus;
  period_start: number | null;
  period_end: number | null;
  metadata: Record<string, unknown>;
}

export async function insertOrder(q: Q, productId: string, f: OrderFields, now: number): Promise<OrderRow> {
  const row: OrderRow = {
    id: newId("ord", now),
    product_id: productId,
    customer_id: f.customer_id,
    subscription_id: f.subscription_id,
    external_system: f.external_system,
    external_id: f.external_id,
    status: f.status,
    period_start: f.period_start,
    period_end: f.period_end,
    metadata: JSON.stringify(f.metadata),
    created_at: now,
    updated_at: now,
  };
  await q.insertInto("orders").values(row).execute();
  return row;
}

export function findOrder(q: Q, id: string): Promise<OrderRow | undefined> {
  return q.selectFrom("orders").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Row lock for an order that is about to change. */
export function lockOrder(q: Q, engine: Engine, id: string): Promise<OrderRow | undefined> {
  return forUpdate(engine, q.selectFrom("orders").selectAll().where("id", "=", id)).executeTakeFirst();
}

export function findOrderByExternal(q: Q, productId: string, externalSystem: string, externalId: string): Promise<OrderRow | undefined> {
  return q
    .selectFrom("orders")
    .selectAll()
    .where("product_id", "=", productId)
    .where("external_system", "=", externalSystem)
    .where("external_id", "=", externalId)
    .executeTakeFirst();
}

export async function listOrders(q: Q, productId: string, limit: number, before: string | null) {
  let qb = q.selectFrom("orders").selectAll().where("product_id", "=", productId).orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}

/** The current stored fields of a row, in the shape a create takes. */
export function orderFields(r: OrderRow): OrderFields {
  return {
    customer_id: r.customer_id,
    subscription_id: r.subscription_id,
    external_system: r.external_system,
    external_id: r.external_id,
    status: r.status,
    period_start: r.period_start,
    period_end: r.period_end,
    metadata: parseJsonObject(r.metadata),
  };
}

/** Writes every field of `f` and returns the new row. Metadata is replaced, not merged. */
export async function updateOrder(q: Q, row: OrderRow, f: OrderFields, now: number): Promise<OrderRow> {
  const set = { ...f, metadata: JSON.stringify(f.metadata), updated_at: now };
  await q.updateTable("orders").set(set).where("id", "=", row.id).execute();
  return { ...row, ...set };
}
