// The read-only first half of validate and check (and offline): resolve the binding, find its
// device, judge the app_version, decide. And the entitlement every runtime answer carries.
import type { FastifyRequest } from "fastify";
import { type BindingRequest, normalizeBinding } from "../../domain/binding.js";
import { type EntitlementData, entitlementData, type FeatureEntitlement, featureEntitlement } from "../../domain/entitlement.js";
import { decide, type RuntimeOperation } from "../../domain/runtime-engine.js";
import type { VersionJudgement } from "../../domain/version-eligibility.js";
import type { BindResult } from "../../store/bindings.js";
import type { Q } from "../../store/db.js";
import { findDeviceByBinding } from "../../store/devices.js";
import { listFeatureAssignments } from "../../store/license-features.js";
import { loadVersionJudgement } from "../../store/product-versions.js";
import type { LicenseRow, PolicyRow } from "../../store/schema.js";

export async function decideReadOnly(req: FastifyRequest, op: RuntimeOperation) {
  const binding = normalizeBinding(req.body as BindingRequest);
  const { license, policy } = req.runtime!;
  const lk = req.server.lk;
  const now = lk.clock.now();
  const [device, version] = await Promise.all([
    findDeviceByBinding(lk.store.db, license.id, binding.key),
    loadVersionJudgement(lk.store.db, license, policy, binding.request.app_version),
  ]);
  // Container caps only matter when binding anew, which is decided again under the license lock.
  const decision = decide({ op, now, license, policy, binding, device: device ?? null, activeContainerCount: 0, version });
  return { binding, license, policy, device, decision, now, version };
}

export interface EntitlementSource {
  license: LicenseRow;
  policy: PolicyRow;
  status: "active" | "grace_period";
  deviceId: string;
  now: number;
  /** The app_version's judgement (from decideReadOnly or bindDevice). */
  version: VersionJudgement;
}

/** The license's feature assignments as entitlement `features[]` (one query). */
export async function featureEntitlements(q: Q, licenseId: string, now: number): Promise<FeatureEntitlement[]> {
  return (await listFeatureAssignments(q, licenseId)).map((a) => featureEntitlement(a, now));
}

/**
 * The entitlement for a bound device, with the license's features (read through `q`: inside a
 * transaction pass the transaction, so the answer shows its own writes) and version eligibility.
 */
export async function entitlementFor(q: Q, s: EntitlementSource): Promise<EntitlementData> {
  const features = await featureEntitlements(q, s.license.id, s.now);
  return entitlementData({ license: s.license, policy: s.policy, status: s.status, deviceId: s.deviceId, now: s.now, version: s.version, features });
}

/** The entitlement after an allowed bindDevice (activate, validate, consume, checkout), read in its transaction. */
export function boundEntitlement(trx: Q, r: Extract<BindResult, { allowed: true }>, now: number): Promise<EntitlementData> {
  return entitlementFor(trx, { license: r.license, policy: r.policy, status: r.decision.status, deviceId: r.device.id, now, version: r.version });
}
