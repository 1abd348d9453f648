// Licenses. The key itself is never stored: only its keyed hash, a display prefix and last four.
import { DAY_MS } from "../clock.js";
import { effectiveStatus, type LicenseStatus } from "../domain/license-status.js";
import type { ExpressionBuilder } from "kysely";
import type { Engine, Q } from "./db.js";
import { iso, parseJsonObject } from "./json.js";
import { toPage } from "./pagination.js";
import { policyOf } from "./policies.js";
import { prepare } from "./prepared.js";
import type { Database, LicenseRow, PolicyRow } from "./schema.js";

export interface LicenseView {
  id: string;
  product_id: string;
  policy_id: string;
  customer_id?: string;
  order_id?: string;
  subscription_id?: string;
  status: LicenseStatus;
  license_key_prefix: string;
  license_key_last4: string;
  customer_email?: string;
  customer_name?: string;
  active_device_count: number;
  times_activated: number;
  times_transferred: number;
  total_consumptions: number;
  entitlement_version: number;
  starts_at?: string;
  expires_at?: string;
  maintenance_expires_at?: string;
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

/** `{key: value}` when the column is set, `{}` otherwise: optional contract fields are omitted, never null. */
const opt = <K extends string>(key: K, v: string | null): { [P in K]?: string } =>
  (v === null ? {} : { [key]: v }) as { [P in K]?: string };
const optIso = <K extends string>(key: K, ms: number | null) => opt(key, ms === null ? null : iso(ms));

export function licenseView(r: LicenseRow, graceDays: number, now: number): LicenseView {
  return {
    id: r.id,
    product_id: r.product_id,
    policy_id: r.policy_id,
    ...opt("customer_id", r.customer_id),
    ...opt("order_id", r.order_id),
    ...opt("subscription_id", r.subscription_id),
    status: effectiveStatus(r, graceDays, now),
    license_key_prefix: r.key_prefix,
    license_key_last4: r.key_last4,
    ...opt("customer_email", r.customer_email),
    ...opt("customer_name", r.customer_name),
    active_device_count: r.active_device_count,
    times_activated: r.times_activated,
    times_transferred: r.times_transferred,
    total_consumptions: r.total_consumptions,
    entitlement_version: r.entitlement_version,
    ...optIso("starts_at", r.starts_at),
    ...optIso("expires_at", r.expires_at),
    ...optIso("maintenance_expires_at", r.maintenance_expires_at),
    metadata: parseJsonObject(r.metadata),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

export async function insertLicense(q: Q, row: LicenseRow): Promise<void> {
  await q.insertInto("licenses").values(row).execute();
}

const licenseById = prepare(1, (q, id: string) => q.selectFrom("licenses").selectAll().where("id", "=", id));
/** PostgreSQL: the row locked until the transaction ends; SQLite's BEGIN IMMEDIATE already holds the write lock. */
const licenseByIdForUpdate = prepare(1, (q, id: string) => q.selectFrom("licenses").selectAll().where("id", "=", id).forUpdate());
const licenseByKeyHash = prepare(1, (q, keyHash: string) => q.selectFrom("licenses").selectAll().where("key_hash", "=", keyHash));

export function findLicense(q: Q, id: string): Promise<LicenseRow | undefined> {
  return licenseById.first(q, id);
}

/** The license row under its row lock (see forUpdate), for a read-check-write in this transaction. */
export function lockLicenseRow(q: Q, engine: Engine, id: string): Promise<LicenseRow | undefined> {
  return (engine === "postgres" ? licenseByIdForUpdate : licenseById).first(q, id);
}

/** A license with its policy, under the license's row lock. */
export interface LockedLicense {
  license: LicenseRow;
  policy: PolicyRow;
}

export async function lockLicense(q: Q, engine: Engine, id: string): Promise<LockedLicense | undefined> {
  return withPolicy(q, await lockLicenseRow(q, engine, id));
}

export function findLicenseByKeyHash(q: Q, keyHash: string): Promise<LicenseRow | undefined> {
  return licenseByKeyHash.first(q, keyHash);
}

async function withPolicy(q: Q, license: LicenseRow | undefined): Promise<LockedLicense | undefined> {
  if (!license) return undefined;
  return { license, policy: await policyOf(q, license) };
}

export async function findLicenseWithPolicy(q: Q, id: string) {
  return withPolicy(q, await findLicense(q, id));
}

export interface LicenseFilters {
  product_id?: string;
  policy_id?: string;
  customer_id?: string;
  order_id?: string;
  subscription_id?: string;
  status?: LicenseStatus;
  expires_before?: number;
  expires_after?: number;
}

export async function listLicenses(q: Q, f: LicenseFilters, now: number, limit: number, before: string | null) {
  let qb = q
    .selectFrom("licenses")
    .innerJoin("policies", "policies.id", "licenses.policy_id")
    .selectAll("licenses")
    .select("policies.grace_period_days as grace_days")
    .orderBy("licenses.id", "desc")
    .limit(limit + 1);
  if (before) qb = qb.where("licenses.id", "<", before);
  if (f.product_id) qb = qb.where("licenses.product_id", "=", f.product_id);
  if (f.policy_id) qb = qb.where("licenses.policy_id", "=", f.policy_id);
  if (f.customer_id) qb = qb.where("licenses.customer_id", "=", f.customer_id);
  if (f.order_id) qb = qb.where("licenses.order_id", "=", f.order_id);
  if (f.subscription_id) qb = qb.where("licenses.subscription_id", "=", f.subscription_id);
  if (f.expires_before !== undefined) qb = qb.where("licenses.expires_at", "<", f.expires_before);
  if (f.expires_after !== undefined) qb = qb.where("licenses.expires_at", ">", f.expires_after);
  // Status is computed from the stored state and the clock, exactly as effectiveStatus() does.
  const graceEnd = (eb: ExpressionBuilder<Database, "licenses" | "policies">) =>
    eb("licenses.expires_at", "+", eb("policies.grace_period_days", "*", DAY_MS));
  switch (f.status) {
    case "suspended":
    case "revoked":
      qb = qb.where("licenses.state", "=", f.status);
      break;
    case "active":
      qb = qb.where("licenses.state", "=", "active").where((eb) => eb.or([eb("licenses.expires_at", "is", null), eb("licenses.expires_at", ">", now)]));
      break;
    case "grace_period":
      qb = qb
        .where("licenses.state", "=", "active")
        .where("licenses.expires_at", "<=", now)
        .where((eb) => eb(graceEnd(eb), ">", now));
      break;
    case "expired":
      qb = qb
        .where("licenses.state", "=", "active")
        .where("licenses.expires_at", "<=", now)
        .where((eb) => eb(graceEnd(eb), "<=", now));
      break;
    default:
      break;
  }
  const rows = await qb.execute();
  const page = toPage(rows, limit);
  return { rows: page.rows.map((r) => licenseView(r, r.grace_days, now)), nextCursor: page.nextCursor };
}
