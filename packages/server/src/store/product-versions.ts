// Product versions: the release catalogue version eligibility is judged against (NOTES §9).
import { sql } from "kysely";
import { judgeVersion, type VersionCatalogFacts, type VersionJudgement } from "../domain/version-eligibility.js";
import { newId } from "../ids.js";
import type { Q } from "./db.js";
import { iso, parseJsonObject } from "./json.js";
import { toPage } from "./pagination.js";
import { prepare } from "./prepared.js";
import type { ProductVersionRow } from "./schema.js";

export interface ProductVersionView {
  id: string;
  product_id: string;
  version: string;
  released_at: string;
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export function productVersionView(r: ProductVersionRow): ProductVersionView {
  return {
    id: r.id,
    product_id: r.product_id,
    version: r.version,
    released_at: iso(r.released_at),
    metadata: parseJsonObject(r.metadata),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

export async function insertProductVersion(
  q: Q,
  productId: string,
  input: { version: string; released_at: number; metadata?: Record<string, unknown> },
  now: number,
): Promise<ProductVersionRow> {
  const row: ProductVersionRow = {
    id: newId("ver", now),
    product_id: productId,
    version: input.version,
    released_at: input.released_at,
    metadata: JSON.stringify(input.metadata ?? {}),
    created_at: now,
    updated_at: now,
  };
  await q.insertInto("product_versions").values(row).execute();
  return row;
}

export function findProductVersionByVersion(q: Q, productId: string, version: string): Promise<ProductVersionRow | undefined> {
  return q.selectFrom("product_versions").selectAll().where("product_id", "=", productId).where("version", "=", version).executeTakeFirst();
}

/** Newest first (by id, i.e. by creation), `limit` per page. */
export async function listProductVersions(q: Q, productId: string, limit: number, before: string | null) {
  let qb = q.selectFrom("product_versions").selectAll().where("product_id", "=", productId).orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}

const catalogue = (q: Q, productId: string) => q.selectFrom("product_versions").select(["version", "released_at"]).where("product_id", "=", productId).limit(1);
const anyVersion = prepare(1, catalogue);
/** The entry for the version if there is one, else any: the catalogue exists either way. */
const versionFirst = prepare(2, (q, productId: string, appVersion: string) => catalogue(q, productId).orderBy(sql`case when version = ${appVersion} then 0 else 1 end`));

/**
 * What version gating needs to know, in one indexed query: whether the product has a catalogue at
 * all, and the entry for `appVersion` (matched exactly as sent) if there is one.
 */
export async function findVersionCatalogFacts(q: Q, productId: string, appVersion: string | undefined): Promise<VersionCatalogFacts> {
  const row = appVersion === undefined ? await anyVersion.first(q, productId) : await versionFirst.first(q, productId, appVersion);
  return { catalogue: row !== undefined, release: row !== undefined && row.version === appVersion ? row : null };
}


/** Loads the catalogue facts and judges `appVersion` for the license (D2 step 6). */
export async function loadVersionJudgement(
  q: Q,
  license: { product_id: string; expires_at: number | null; maintenance_expires_at: number | null },
  policy: { license_type: string },
  appVersion: string | undefined,
): Promise<VersionJudgement> {
  const facts = await findVersionCatalogFacts(q, license.product_id, appVersion);
  return judgeVersion({ appVersion, licenseType: policy.license_type, license, facts });
}
