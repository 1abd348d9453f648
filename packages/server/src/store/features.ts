// Product features: the codes licenses are entitled to and metered on (NOTES §7).
import { newId } from "../ids.js";
import type { Q } from "./db.js";
import { iso, parseJsonObject } from "./json.js";
import { toPage } from "./pagination.js";
import type { FeatureRow } from "./schema.js";

export interface FeatureView {
  id: string;
  product_id: string;
  code: string;
  name: string;
  metadata: Record<string, unknown>;
  created_at: string;
}

export function featureView(r: FeatureRow): FeatureView {
  return { id: r.id, product_id: r.product_id, code: r.code, name: r.name, metadata: parseJsonObject(r.metadata), created_at: iso(r.created_at) };
}

export async function insertFeature(
  q: Q,
  productId: string,
  input: { name: string; code: string; metadata?: Record<string, unknown> },
  now: number,
): Promise<FeatureRow> {
  const row: FeatureRow = {
    id: newId("feat", now),
    product_id: productId,
    code: input.code,
    name: input.name,
    metadata: JSON.stringify(input.metadata ?? {}),
    created_at: now,
    updated_at: now,
  };
  await q.insertInto("features").values(row).execute();
  return row;
}

export function findFeature(q: Q, id: string): Promise<FeatureRow | undefined> {
  return q.selectFrom("features").selectAll().where("id", "=", id).executeTakeFirst();
}

export function findFeatureByCode(q: Q, productId: string, code: string): Promise<FeatureRow | undefined> {
  return q.selectFrom("features").selectAll().where("product_id", "=", productId).where("code", "=", code).executeTakeFirst();
}

/** Newest first (by id, i.e. by creation), `limit` per page. */
export async function listFeatures(q: Q, productId: string, limit: number, before: string | null) {
  let qb = q.selectFrom("features").selectAll().where("product_id", "=", productId).orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}
