// Customers.
import { newId } from "../ids.js";
import type { Q } from "./db.js";
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
