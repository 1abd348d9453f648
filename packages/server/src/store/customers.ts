// Customers.
import { newId } from "../ids.js";
import { type Engine, forUpdate, type Q } from "./db.js";
import { iso, parseJsonObject } from "./json.js";
import { toPage } from "./pagination.js";
import type { CustomerRow } from "./schema.js";

export interface CustomerView {
  id: string;
  name: string;
  code: string;
  email?: string;
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export function customerView(r: CustomerRow): CustomerView {
  return {
    id: r.id,
    name: r.name,
    code: r.code,
    ...(r.email !== null ? { email: r.email } : {}),
    metadata: parseJsonObject(r.metadata),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

export async function insertCustomer(
  q: Q,
  input: { name: string; code: string; email?: string; metadata?: Record<string, unknown> },
  now: number,
): Promise<CustomerRow> {
  const row: CustomerRow = {
    id: newId("cust", now),
    name: input.name,
    code: input.code,
    email: input.email ?? null,
    metadata: JSON.stringify(input.metadata ?? {}),
    created_at: now,
    updated_at: now,
  };
  await q.insertInto("customers").values(row).execute();
  return row;
}

export function findCustomer(q: Q, id: string): Promise<CustomerRow | undefined> {
  return q.selectFrom("customers").selectAll().where("id", "=", id).executeTakeFirst();
}

export function findCustomerByCode(q: Q, code: string): Promise<CustomerRow | undefined> {
  return q.selectFrom("customers").selectAll().where("code", "=", code).executeTakeFirst();
}

export async function listCustomers(q: Q, limit: number, before: string | null) {
  let qb = q.selectFrom("customers").selectAll().orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}

export interface CustomerPatch {
  name?: string;
  code?: string;
  /** An empty string clears the email. */
  email?: string;
  metadata?: Record<string, unknown>;
}

/** Row lock for a customer that is about to change or be deleted. */
export function lockCustomer(q: Q, engine: Engine, id: string): Promise<CustomerRow | undefined> {
  return forUpdate(engine, q.selectFrom("customers").selectAll().where("id", "=", id)).executeTakeFirst();
}

/** The patch fields whose value differs from the row (metadata compared as JSON text). */
export function changedCustomerFields(row: CustomerRow, patch: CustomerPatch): (keyof CustomerPatch)[] {
  const changed: (keyof CustomerPatch)[] = [];
  if (patch.name !== undefined && patch.name !== row.name) changed.push("name");
  if (patch.code !== undefined && patch.code !== row.code) changed.push("code");
  if (patch.email !== undefined && (patch.email === "" ? null : patch.email) !== row.email) changed.push("email");
  if (patch.metadata !== undefined && JSON.stringify(patch.metadata) !== row.metadata) changed.push("metadata");
  return changed;
}

/** Writes the patch and returns the new row. Metadata is replaced, not merged. */
export async function updateCustomer(q: Q, row: CustomerRow, patch: CustomerPatch, now: number): Promise<CustomerRow> {
  const next: CustomerRow = {
    ...row,
    name: patch.name ?? row.name,
    code: patch.code ?? row.code,
    email: patch.email === undefined ? row.email : patch.email === "" ? null : patch.email,
    metadata: patch.metadata !== undefined ? JSON.stringify(patch.metadata) : row.metadata,
    updated_at: now,
  };
  await q
    .updateTable("customers")
    .set({ name: next.name, code: next.code, email: next.email, metadata: next.metadata, updated_at: now })
    .where("id", "=", row.id)
    .execute();
  return next;
}

/** Every table whose rows point at a customer, with the nouns used in a 409 detail. */
const CUSTOMER_REFERENCES = [
  ["licenses", "license", "licenses"],
  ["orders", "order", "orders"],
  ["subscriptions", "subscription", "subscriptions"],
] as const;

/** What still references the customer, e.g. ["2 licenses", "1 order"]; empty when it can be deleted. */
export async function customerReferences(q: Q, id: string): Promise<string[]> {
  const out: string[] = [];
  for (const [table, one, many] of CUSTOMER_REFERENCES) {
    const r = await q
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .where("customer_id", "=", id)
      .executeTakeFirstOrThrow();
    const n = Number(r.n);
    if (n > 0) out.push(`${n} ${n === 1 ? one : many}`);
  }
  return out;
}

/** Deletes the customer and its custom-field values (they describe it and mean nothing without it). */
export async function deleteCustomer(q: Q, id: string): Promise<void> {
  await q.deleteFrom("custom_field_values").where("resource_id", "=", id).execute();
  await q.deleteFrom("customers").where("id", "=", id).execute();
}
