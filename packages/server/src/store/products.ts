// Products.
import { newId } from "../ids.js";
import type { Q } from "./db.js";
import { iso, parseJsonObject } from "./json.js";
import { toPage } from "./pagination.js";
import type { ProductRow } from "./schema.js";

export interface ProductView {
  id: string;
  name: string;
  code: string;
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export function productView(r: ProductRow): ProductView {
  return { id: r.id, name: r.name, code: r.code, metadata: parseJsonObject(r.metadata), created_at: iso(r.created_at), updated_at: iso(r.updated_at) };
}

export async function insertProduct(q: Q, input: { name: string; code: string; metadata?: Record<string, unknown> }, now: number): Promise<ProductRow> {
  const row: ProductRow = {
    id: newId("prod", now),
    name: input.name,
    code: input.code,
    metadata: JSON.stringify(input.metadata ?? {}),
    created_at: now,
    updated_at: now,
  };
  await q.insertInto("products").values(row).execute();
  return row;
}

export function findProduct(q: Q, id: string): Promise<ProductRow | undefined> {
  return q.selectFrom("products").selectAll().where("id", "=", id).executeTakeFirst();
}

export function findProductByCode(q: Q, code: string): Promise<ProductRow | undefined> {
  return q.selectFrom("products").selectAll().where("code", "=", code).executeTakeFirst();
}

export async function listProducts(q: Q, limit: number, before: string | null) {
  let qb = q.selectFrom("products").selectAll().orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}
