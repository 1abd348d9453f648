// Runtime operations that never bind a device — deactivate (releases a seat, D12 churn limit) and
// offline (reads a binding) — decided under the license row lock, the same lock bindDevice takes,
// so a deactivation, an activation and an offline issue of one license never interleave.
import { DAY_MS } from "../clock.js";
import type { Binding } from "../domain/binding.js";
import { type Decision, decide } from "../domain/runtime-engine.js";
import type { VersionJudgement } from "../domain/version-eligibility.js";
import { recordEvent } from "./audit-events.js";
import { bindingSummary } from "./bindings.js";
import type { Engine, Q, Tx } from "./db.js";
import { findDeviceByBinding } from "./devices.js";
import { releaseLeasesOf } from "./leases.js";
import { loadVersionJudgement } from "./product-versions.js";
import { lockLicense } from "./licenses.js";
import type { DeviceRow, LicenseRow, PolicyRow } from "./schema.js";

type Denial = Extract<Decision, { allow: false }>;
type Allowed = Extract<Decision, { allow: true }>;

export interface LockedRequest {
  licenseId: string;
  binding: Binding;
  ip: string | null;
  requestId: string;
  now: number;
}

/** `version` is the app_version's eligibility, judged under the lock (D2 step 6; the entitlement shows it). */
export type LockedDecision =
  | { allowed: true; decision: Allowed; license: LicenseRow; policy: PolicyRow; device: DeviceRow; version: VersionJudgement }
  | { allowed: false; decision: Denial; license: LicenseRow; policy: PolicyRow };

function actorOf(license: LicenseRow, r: LockedRequest) {
  return {
    actor_type: "license" as const,
    actor_id: license.id,
    resource_type: "license",
    resource_id: license.id,
    request_id: r.requestId,
    ip_address: r.ip,
    created_at: r.now,
  };
}

/**
 * Locks the license and runs the D2 decision for an operation that needs an existing active binding
 * (`deactivate` → NOT_FOUND without one, `offline` → DEVICE_NOT_ACTIVATED). A denial is recorded as
 * `license.validation_denied` in the same transaction (D7).
 */
export async function decideLocked(trx: Tx, engine: Engine, op: "deactivate" | "offline", r: LockedRequest): Promise<LockedDecision> {
  const locked = await lockLicense(trx, engine, r.licenseId);
  if (!locked) throw new Error(`license ${r.licenseId} not found`);
  const { license, policy } = locked;
  const device = await findDeviceByBinding(trx, license.id, r.binding.key);
  const version = await loadVersionJudgement(trx, license, policy, r.binding.request.app_version);
  // Neither operation binds anew, so container caps never matter here.
  const decision = decide({ op, now: r.now, license, policy, binding: r.binding, device: device ?? null, activeContainerCount: 0, version });
  if (!decision.allow) {
    await recordDenial(trx, license, r, op, decision);
    return { allowed: false, decision, license, policy };
  }
  if (!device) throw new Error("an allowed deactivate/offline decision always has a bound device");
  return { allowed: true, decision, license, policy, device, version };
}

/** Records a refused deactivate/offline call (fingerprint hashed, D7). */
export async function recordDenial(trx: Tx, license: LicenseRow, r: LockedRequest, op: "deactivate" | "offline", d: Denial): Promise<void> {
  await recordEvent(trx, {
    ...actorOf(license, r),
    event_type: "license.validation_denied",
    metadata: { operation: op, code: d.code, ...bindingSummary(r.binding) },
  });
}

/** Client deactivations (`license.deactivated` events) of a license since `since` (epoch ms, exclusive). */
export async function countDeactivationsSince(q: Q, licenseId: string, since: number): Promise<number> {
  const r = await q
    .selectFrom("audit_events")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("resource_id", "=", licenseId)
    .where("event_type", "=", "license.deactivated")
    .where("created_at", ">", since)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

export type ReleaseResult =
  | { released: true; status: Allowed["status"]; license: LicenseRow; policy: PolicyRow; device: DeviceRow }
  | { released: false; decision: Denial; license: LicenseRow; policy: PolicyRow };

/**
 * Releases the active binding for `r.binding` (POST /license/deactivate): D2 checks, then the D12
 * limit — at most `max_deactivations` client deactivations in the last `deactivation_window_days`
 * days (0 = unlimited; management device resets are `device.reset` events and are not counted) —
 * then the device becomes `deactivated`, the license loses one active device and its
 * entitlement_version moves on. Exactly one event either way: `license.deactivated`,
 * `license.deactivation_limit_exceeded` or `license.validation_denied`.
 */
export async function releaseBinding(trx: Tx, engine: Engine, r: LockedRequest): Promise<ReleaseResult> {
  const locked = await decideLocked(trx, engine, "deactivate", r);
  if (!locked.allowed) return { released: false, decision: locked.decision, license: locked.license, policy: locked.policy };
  const { license, policy, device } = locked;
  const actor = actorOf(license, r);

  if (policy.max_deactivations > 0) {
    // Counted under the license lock: concurrent deactivations of one license are serialised here.
    const used = await countDeactivationsSince(trx, license.id, r.now - policy.deactivation_window_days * DAY_MS);
    if (used >= policy.max_deactivations) {
      await recordEvent(trx, {
        ...actor,
        event_type: "license.deactivation_limit_exceeded",
        metadata: {
          device_id: device.id,
          ...bindingSummary(r.binding),
          max_deactivations: policy.max_deactivations,
          deactivation_window_days: policy.deactivation_window_days,
        },
      });
      const detail = `all ${policy.max_deactivations} deactivations allowed in ${policy.deactivation_window_days} days are used; retry later or ask the vendor to reset the device`;
      return { released: false, decision: { allow: false, code: "DEACTIVATION_LIMIT_EXCEEDED", detail }, license, policy };
    }
  }

  const deactivated: DeviceRow = { ...device, status: "deactivated", ip_address: r.ip ?? device.ip_address, last_seen_at: r.now, updated_at: r.now };
  await trx
    .updateTable("devices")
    .set({ status: deactivated.status, ip_address: deactivated.ip_address, last_seen_at: r.now, updated_at: r.now })
    .where("id", "=", device.id)
    .execute();
  await releaseLeasesOf(trx, license.id, device.id, r.now);
  const updated = await trx
    .updateTable("licenses")
    .set((eb) => ({
      active_device_count: eb("active_device_count", "-", 1),
      entitlement_version: eb("entitlement_version", "+", 1),
      updated_at: r.now,
    }))
    .where("id", "=", license.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await recordEvent(trx, { ...actor, event_type: "license.deactivated", metadata: { device_id: device.id, ...bindingSummary(r.binding) } });
  return { released: true, status: locked.decision.status, license: updated, policy, device: deactivated };
}
