// Feature assignments on a license (NOTES §7): assign-or-update, remove, and usage reset / top-up.
// Writes run under the license row lock (the same lock consumption takes), bump the license's
// entitlement version and record one event; a write that changes nothing records none.
import type { FeatureAssignment } from "../domain/entitlement.js";
import { ApiError } from "../http/errors.js";
import { recordEvent } from "./audit-events.js";
import type { Q, Tx } from "./db.js";
import { iso, parseJsonObject } from "./json.js";
import type { EventBase } from "./license-actions.js";
import type { LockedLicense } from "./licenses.js";
import { toPage } from "./pagination.js";
import { prepare } from "./prepared.js";
import type { Updateable } from "kysely";
import type { FeatureRow, LicenseFeatureRow, LicenseFeaturesTable } from "./schema.js";

export interface LicenseFeatureView {
  license_id: string;
  feature_id: string;
  feature_code: string;
  feature_name: string;
  enabled: boolean;
  max_consumptions?: number;
  total_consumptions: number;
  remaining?: number;
  expires_at?: string;
  metadata: Record<string, unknown>;
}

type JoinedRow = LicenseFeatureRow & { feature_code: string; feature_name: string };

export function licenseFeatureView(r: JoinedRow): LicenseFeatureView {
  return {
    license_id: r.license_id,
    feature_id: r.feature_id,
    feature_code: r.feature_code,
    feature_name: r.feature_name,
    enabled: r.enabled === 1,
    ...(r.max_consumptions !== null ? { max_consumptions: r.max_consumptions } : {}),
    total_consumptions: r.total_consumptions,
    ...(r.max_consumptions !== null ? { remaining: Math.max(r.max_consumptions - r.total_consumptions, 0) } : {}),
    ...(r.expires_at !== null ? { expires_at: iso(r.expires_at) } : {}),
    metadata: parseJsonObject(r.metadata),
  };
}

function joined(q: Q, licenseId: string) {
  return q
    .selectFrom("license_features")
    .innerJoin("features", "features.id", "license_features.feature_id")
    .selectAll("license_features")
    .select(["features.code as feature_code", "features.name as feature_name"])
    .where("license_features.license_id", "=", licenseId);
}

/** A license's assignments, newest feature first; the cursor is the feature id. */
export async function listLicenseFeatures(q: Q, licenseId: string, limit: number, before: string | null) {
  let qb = joined(q, licenseId).orderBy("license_features.feature_id", "desc").limit(limit + 1);
  if (before) qb = qb.where("license_features.feature_id", "<", before);
  const rows = (await qb.execute()).map((r) => ({ ...r, id: r.feature_id }));
  const page = toPage(rows, limit);
  return { rows: page.rows.map(licenseFeatureView), nextCursor: page.nextCursor };
}

export function findAssignment(q: Q, licenseId: string, featureId: string): Promise<JoinedRow | undefined> {
  return joined(q, licenseId).where("license_features.feature_id", "=", featureId).executeTakeFirst();
}

export function findAssignmentByCode(q: Q, licenseId: string, code: string): Promise<JoinedRow | undefined> {
  return joined(q, licenseId).where("features.code", "=", code).executeTakeFirst();
}

/** The columns of a FeatureAssignment, from license_features joined with features (also read by store/runtime-state.ts). */
export const FEATURE_ASSIGNMENT_COLUMNS = [
  "features.code as code",
  "license_features.enabled as enabled",
  "license_features.max_consumptions as max_consumptions",
  "license_features.total_consumptions as total_consumptions",
  "license_features.expires_at as expires_at",
] as const;

const featureAssignments = prepare(1, (q, licenseId: string) =>
  q
    .selectFrom("license_features")
    .innerJoin("features", "features.id", "license_features.feature_id")
    .select(["license_features.feature_id as feature_id", ...FEATURE_ASSIGNMENT_COLUMNS])
    .where("license_features.license_id", "=", licenseId)
    .orderBy("features.code"),
);

/** What the runtime entitlement shows of every assignment of a license, by feature code (one query). */
export function listFeatureAssignments(q: Q, licenseId: string): Promise<(FeatureAssignment & { feature_id: string })[]> {
  return featureAssignments.execute(q, licenseId);
}

function assertNotRevoked(locked: LockedLicense, what: string): void {
  if (locked.license.state === "revoked") throw new ApiError("CONFLICT", `license is revoked; revocation is permanent and its features cannot be ${what}`);
}

async function bumpEntitlement(trx: Tx, licenseId: string, now: number, totalConsumptions?: number): Promise<void> {
  await trx
    .updateTable("licenses")
    .set((eb) => ({
      entitlement_version: eb("entitlement_version", "+", 1),
      ...(totalConsumptions !== undefined ? { total_consumptions: totalConsumptions } : {}),
      updated_at: now,
    }))
    .where("id", "=", licenseId)
    .execute();
}

export interface AssignInput {
  feature_id: string;
  enabled?: boolean;
  max_consumptions?: number;
  expires_at?: number;
  metadata?: Record<string, unknown>;
}

/**
 * Assigns a feature of the license's product, or updates the assignment: fields left out keep their
 * current value (on a new assignment: enabled, no quota, no expiry, empty metadata).
 */
export async function assignFeature(trx: Tx, locked: LockedLicense, input: AssignInput, event: EventBase): Promise<LicenseFeatureView> {
  const { license } = locked;
  const now = event.created_at;
  assertNotRevoked(locked, "changed");
  const feature: FeatureRow | undefined = await trx.selectFrom("features").selectAll().where("id", "=", input.feature_id).executeTakeFirst();
  if (!feature) throw new ApiError("NOT_FOUND", `field feature_id: feature ${input.feature_id} not found`);
  if (feature.product_id !== license.product_id) {
    throw new ApiError("VALIDATION_ERROR", `field feature_id: feature ${feature.id} belongs to product ${feature.product_id}, not to the license's product ${license.product_id}`);
  }
  if (input.expires_at !== undefined && input.expires_at <= now) throw new ApiError("VALIDATION_ERROR", "field expires_at: must be in the future");
  const existing = await findAssignment(trx, license.id, feature.id);
  const next = {
    enabled: input.enabled === undefined ? (existing?.enabled ?? 1) : input.enabled ? 1 : 0,
    max_consumptions: input.max_consumptions ?? existing?.max_consumptions ?? null,
    expires_at: input.expires_at ?? existing?.expires_at ?? null,
    metadata: input.metadata !== undefined ? JSON.stringify(input.metadata) : (existing?.metadata ?? "{}"),
  };
  if (existing) {
    const changed = (Object.keys(next) as (keyof typeof next)[]).filter((k) => next[k] !== existing[k]);
    if (changed.length === 0) return licenseFeatureView(existing);
    await updateAssignment(trx, license.id, feature.id, next, now);
    await bumpEntitlement(trx, license.id, now);
    await recordEvent(trx, {
      ...event,
      event_type: "license.feature_assigned",
      resource_type: "license",
      resource_id: license.id,
      metadata: { ...event.metadata, feature_id: feature.id, feature_code: feature.code, assignment: "updated", changed_fields: changed },
    });
    return licenseFeatureView({ ...existing, ...next, updated_at: now });
  }
  const row: LicenseFeatureRow = { license_id: license.id, feature_id: feature.id, ...next, total_consumptions: 0, created_at: now, updated_at: now };
  await trx.insertInto("license_features").values(row).execute();
  await bumpEntitlement(trx, license.id, now);
  await recordEvent(trx, {
    ...event,
    event_type: "license.feature_assigned",
    resource_type: "license",
    resource_id: license.id,
    metadata: { ...event.metadata, feature_id: feature.id, feature_code: feature.code, assignment: "created" },
  });
  return licenseFeatureView({ ...row, feature_code: feature.code, feature_name: feature.name });
}

/** Removes an assignment; false when the feature is not assigned to the license. */
export async function removeFeature(trx: Tx, locked: LockedLicense, featureId: string, event: EventBase): Promise<boolean> {
  const { license } = locked;
  const existing = await findAssignment(trx, license.id, featureId);
  if (!existing) return false;
  assertNotRevoked(locked, "changed");
  await trx.deleteFrom("license_features").where("license_id", "=", license.id).where("feature_id", "=", featureId).execute();
  await bumpEntitlement(trx, license.id, event.created_at);
  await recordEvent(trx, {
    ...event,
    event_type: "license.feature_removed",
    resource_type: "license",
    resource_id: license.id,
    metadata: { ...event.metadata, feature_id: featureId, feature_code: existing.feature_code, total_consumptions: existing.total_consumptions },
  });
  return true;
}

export interface UsageResetInput {
  feature_id?: string;
  feature_code?: string;
  add_credits?: number;
  max_consumptions?: number;
  total_consumptions?: number;
  reset_consumed?: boolean;
}

/** Checks the body's shape rules (422) before anything is read. */
export function checkUsageReset(input: UsageResetInput): void {
  if ((input.feature_id === undefined) === (input.feature_code === undefined)) {
    throw new ApiError("VALIDATION_ERROR", "field feature_id, feature_code: provide exactly one of feature_id or feature_code");
  }
  const mutations = [input.add_credits, input.max_consumptions, input.total_consumptions].filter((v) => v !== undefined).length + (input.reset_consumed ? 1 : 0);
  if (mutations === 0) {
    throw new ApiError("VALIDATION_ERROR", "field add_credits: provide at least one of add_credits, max_consumptions, total_consumptions or reset_consumed: true");
  }
  if (input.reset_consumed && input.total_consumptions !== undefined) {
    throw new ApiError("VALIDATION_ERROR", "field total_consumptions: cannot be combined with reset_consumed: true (which sets it to 0)");
  }
  if (input.add_credits !== undefined && input.max_consumptions !== undefined) {
    throw new ApiError("VALIDATION_ERROR", "field add_credits: cannot be combined with max_consumptions; set the quota or top it up, not both");
  }
}

/** The assignment's new quota and counter (pure). */
export function usageAfterReset(current: { max_consumptions: number | null; total_consumptions: number }, input: UsageResetInput) {
  let max = input.max_consumptions ?? current.max_consumptions;
  if (input.add_credits !== undefined) {
    if (max === null) throw new ApiError("VALIDATION_ERROR", "field add_credits: the feature has no quota (max_consumptions unset) to add credits to");
    max += input.add_credits;
    if (!Number.isSafeInteger(max)) throw new ApiError("VALIDATION_ERROR", `field add_credits: the quota would exceed ${Number.MAX_SAFE_INTEGER}`);
  }
  const total = input.reset_consumed ? 0 : (input.total_consumptions ?? current.total_consumptions);
  return { max_consumptions: max, total_consumptions: total };
}

/**
 * Resets or tops up one assignment's usage. The license's own `total_consumptions` moves by the same
 * difference as the feature's counter (never below 0), so it stays the sum of what was consumed.
 */
export async function resetUsage(trx: Tx, locked: LockedLicense, input: UsageResetInput, event: EventBase): Promise<LicenseFeatureView> {
  const { license } = locked;
  const now = event.created_at;
  assertNotRevoked(locked, "reset");
  const current =
    input.feature_id !== undefined ? await findAssignment(trx, license.id, input.feature_id) : await findAssignmentByCode(trx, license.id, input.feature_code!);
  if (!current) {
    const field = input.feature_id !== undefined ? `feature_id: feature ${input.feature_id}` : `feature_code: feature ${input.feature_code}`;
    throw new ApiError("NOT_FOUND", `field ${field} is not assigned to license ${license.id}`);
  }
  const next = usageAfterReset(current, input);
  if (next.max_consumptions === current.max_consumptions && next.total_consumptions === current.total_consumptions) return licenseFeatureView(current);
  await updateAssignment(trx, license.id, current.feature_id, next, now);
  const delta = next.total_consumptions - current.total_consumptions;
  await bumpEntitlement(trx, license.id, now, delta === 0 ? undefined : Math.max(license.total_consumptions + delta, 0));
  await recordEvent(trx, {
    ...event,
    event_type: "license.usage_reset",
    resource_type: "license",
    resource_id: license.id,
    metadata: {
      ...event.metadata,
      feature_id: current.feature_id,
      feature_code: current.feature_code,
      previous_max_consumptions: current.max_consumptions,
      previous_total_consumptions: current.total_consumptions,
      max_consumptions: next.max_consumptions,
      total_consumptions: next.total_consumptions,
      ...(input.add_credits !== undefined ? { add_credits: input.add_credits } : {}),
    },
  });
  return licenseFeatureView({ ...current, ...next, updated_at: now });
}

/** Writes changed fields of one license's feature assignment. */
async function updateAssignment(trx: Tx, licenseId: string, featureId: string, set: Updateable<LicenseFeaturesTable>, now: number): Promise<void> {
  await trx
    .updateTable("license_features")
    .set({ ...set, updated_at: now })
    .where("license_id", "=", licenseId)
    .where("feature_id", "=", featureId)
    .execute();
}
