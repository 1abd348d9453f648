// Policies: the rules a license runs under (NOTES §8, D11).
import type { LicenseType } from "../domain/license-types.js";
import { POLICY_DEFAULTS } from "../domain/policy-defaults.js";
import { newId } from "../ids.js";
import { type Engine, forUpdate, type Q } from "./db.js";
import { iso, parseJsonObject } from "./json.js";
import { toPage } from "./pagination.js";
import { prepare } from "./prepared.js";
import type { PolicyRow } from "./schema.js";

export interface PolicyInput {
  name: string;
  code: string;
  license_type: string;
  max_activations?: number;
  max_floating_users?: number;
  max_container_instances?: number;
  floating_timeout_minutes?: number;
  grace_period_days?: number;
  validation_interval_minutes?: number;
  require_heartbeat?: boolean;
  allow_offline_activation?: boolean;
  offline_grace_days?: number;
  allow_vm?: boolean;
  allow_container?: boolean;
  max_transfers?: number;
  duration_days?: number;
  max_deactivations?: number;
  deactivation_window_days?: number;
  metadata?: Record<string, unknown>;
}

export interface PolicyView {
  id: string;
  product_id: string;
  name: string;
  code: string;
  license_type: LicenseType;
  max_activations: number;
  max_floating_users: number;
  max_container_instances: number;
  floating_timeout_minutes: number;
  grace_period_days: number;
  validation_interval_minutes: number;
  require_heartbeat: boolean;
  allow_offline_activation: boolean;
  offline_grace_days: number;
  allow_vm: boolean;
  allow_container: boolean;
  max_transfers: number;
  duration_days?: number;
  max_deactivations: number;
  deactivation_window_days: number;
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export function policyView(r: PolicyRow): PolicyView {
  return {
    id: r.id,
    product_id: r.product_id,
    name: r.name,
    code: r.code,
    license_type: r.license_type as LicenseType,
    max_activations: r.max_activations,
    max_floating_users: r.max_floating_users,
    max_container_instances: r.max_container_instances,
    floating_timeout_minutes: r.floating_timeout_minutes,
    grace_period_days: r.grace_period_days,
    validation_interval_minutes: r.validation_interval_minutes,
    require_heartbeat: r.require_heartbeat === 1,
    allow_offline_activation: r.allow_offline_activation === 1,
    offline_grace_days: r.offline_grace_days,
    allow_vm: r.allow_vm === 1,
    allow_container: r.allow_container === 1,
    max_transfers: r.max_transfers,
    ...(r.duration_days !== null ? { duration_days: r.duration_days } : {}),
    max_deactivations: r.max_deactivations,
    deactivation_window_days: r.deactivation_window_days,
    metadata: parseJsonObject(r.metadata),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

const bit = (b: boolean): number => (b ? 1 : 0);

export async function insertPolicy(q: Q, productId: string, input: PolicyInput, now: number): Promise<PolicyRow> {
  const d = POLICY_DEFAULTS;
  const row: PolicyRow = {
    id: newId("pol", now),
    product_id: productId,
    name: input.name,
    code: input.code,
    license_type: input.license_type,
    max_activations: input.max_activations ?? d.max_activations,
    max_floating_users: input.max_floating_users ?? d.max_floating_users,
    max_container_instances: input.max_container_instances ?? d.max_container_instances,
    floating_timeout_minutes: input.floating_timeout_minutes ?? d.floating_timeout_minutes,
    grace_period_days: input.grace_period_days ?? d.grace_period_days,
    validation_interval_minutes: input.validation_interval_minutes ?? d.validation_interval_minutes,
    require_heartbeat: bit(input.require_heartbeat ?? d.require_heartbeat),
    allow_offline_activation: bit(input.allow_offline_activation ?? d.allow_offline_activation),
    offline_grace_days: input.offline_grace_days ?? d.offline_grace_days,
    allow_vm: bit(input.allow_vm ?? d.allow_vm),
    allow_container: bit(input.allow_container ?? d.allow_container),
    max_deactivations: input.max_deactivations ?? d.max_deactivations,
    deactivation_window_days: input.deactivation_window_days ?? d.deactivation_window_days,
    max_transfers: input.max_transfers ?? d.max_transfers,
    duration_days: input.duration_days ?? d.duration_days,
    metadata: JSON.stringify(input.metadata ?? {}),
    created_at: now,
    updated_at: now,
  };
  await q.insertInto("policies").values(row).execute();
  return row;
}

const policyById = prepare(1, (q, id: string) => q.selectFrom("policies").selectAll().where("id", "=", id));

export function findPolicy(q: Q, id: string): Promise<PolicyRow | undefined> {
  return policyById.first(q, id);
}

/** The policy a license row points at (the foreign key guarantees it exists). */
export function policyOf(q: Q, license: { policy_id: string }): Promise<PolicyRow> {
  return policyById.one(q, license.policy_id);
}

export async function listPolicies(q: Q, productId: string, limit: number, before: string | null) {
  let qb = q.selectFrom("policies").selectAll().where("product_id", "=", productId).orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}

/** A PATCH body: every field optional; `duration_days: null` clears it. */
export type PolicyPatch = Partial<Omit<PolicyInput, "duration_days">> & { duration_days?: number | null };

/** Row lock for a policy that is about to change or be deleted. */
export function lockPolicy(q: Q, engine: Engine, id: string): Promise<PolicyRow | undefined> {
  return forUpdate(engine, q.selectFrom("policies").selectAll().where("id", "=", id)).executeTakeFirst();
}

/** The patch as column values: booleans as 0/1, metadata as JSON text. */
function patchColumns(patch: PolicyPatch): Partial<PolicyRow> {
  const cols: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    if (typeof value === "boolean") cols[field] = bit(value);
    else if (field === "metadata") cols[field] = JSON.stringify(value);
    else cols[field] = value;
  }
  return cols as Partial<PolicyRow>;
}

/** The changed columns of `row` under `patch` (only those whose stored value differs). */
export function policyChanges(row: PolicyRow, patch: PolicyPatch): Partial<PolicyRow> {
  const changes: Record<string, unknown> = {};
  for (const [col, value] of Object.entries(patchColumns(patch))) {
    if (row[col as keyof PolicyRow] !== value) changes[col] = value;
  }
  return changes as Partial<PolicyRow>;
}

/** Applies column changes (from policyChanges) and returns the new row. */
export async function updatePolicy(q: Q, row: PolicyRow, changes: Partial<PolicyRow>, now: number): Promise<PolicyRow> {
  const set = { ...changes, updated_at: now };
  await q.updateTable("policies").set(set).where("id", "=", row.id).execute();
  return { ...row, ...set };
}

export async function countPolicyLicenses(q: Q, id: string): Promise<number> {
  const r = await q
    .selectFrom("licenses")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("policy_id", "=", id)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function deletePolicy(q: Q, id: string): Promise<void> {
  await q.deleteFrom("policies").where("id", "=", id).execute();
}
