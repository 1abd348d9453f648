// Products.
import { newId } from "../ids.js";
import { type Engine, forUpdate, type Q } from "./db.js";
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

export interface ProductPatch {
  name?: string;
  code?: string;
  metadata?: Record<string, unknown>;
}

/** Row lock for a product that is about to change or be deleted. */
export function lockProduct(q: Q, engine: Engine, id: string): Promise<ProductRow | undefined> {
  return forUpdate(engine, q.selectFrom("products").selectAll().where("id", "=", id)).executeTakeFirst();
}

/** The patch fields whose value differs from the row (metadata compared as JSON text). */
export function changedProductFields(row: ProductRow, patch: ProductPatch): (keyof ProductPatch)[] {
  const changed: (keyof ProductPatch)[] = [];
  if (patch.name !== undefined && patch.name !== row.name) changed.push("name");
  if (patch.code !== undefined && patch.code !== row.code) changed.push("code");
  if (patch.metadata !== undefined && JSON.stringify(patch.metadata) !== row.metadata) changed.push("metadata");
  return changed;
}

/** Writes the changed fields and returns the new row. Metadata is replaced, not merged. */
export async function updateProduct(q: Q, row: ProductRow, patch: ProductPatch, now: number): Promise<ProductRow> {
  const next: ProductRow = {
    ...row,
    name: patch.name ?? row.name,
    code: patch.code ?? row.code,
    metadata: patch.metadata !== undefined ? JSON.stringify(patch.metadata) : row.metadata,
    updated_at: now,
  };
  await q.updateTable("products").set({ name: next.name, code: next.code, metadata: next.metadata, updated_at: now }).where("id", "=", row.id).execute();
  return next;
}

/** Every table whose rows point at a product, with the noun used in a 409 detail. */
const PRODUCT_REFERENCES = [
  ["policies", "policy", "policies"],
  ["licenses", "license", "licenses"],
  ["product_versions", "version", "versions"],
  ["features", "feature", "features"],
  ["orders", "order", "orders"],
  ["subscriptions", "subscription", "subscriptions"],
  ["custom_field_definitions", "custom-field definition", "custom-field definitions"],
] as const;

/** What still references the product, e.g. ["2 policies", "1 license"]; empty when it can be deleted. */
export async function productReferences(q: Q, id: string): Promise<string[]> {
  const out: string[] = [];
  for (const [table, one, many] of PRODUCT_REFERENCES) {
    const r = await q
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .where("product_id", "=", id)
      .executeTakeFirstOrThrow();
    const n = Number(r.n);
    if (n > 0) out.push(`${n} ${n === 1 ? one : many}`);
  }
  return out;
}

export async function deleteProduct(q: Q, id: string): Promise<void> {
  await q.deleteFrom("products").where("id", "=", id).execute();
}
