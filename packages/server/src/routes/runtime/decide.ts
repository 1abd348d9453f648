// The read-only first half of validate and check (and offline): resolve the binding, find its
// device, judge the app_version, decide. And the entitlement every runtime answer carries.
import type { FastifyRequest } from "fastify";
import { type RuntimeDevice, runtimeEntryOf } from "../../cache/runtime-cache.js";
import { type BindingRequest, normalizeBinding } from "../../domain/binding.js";
import { type EntitlementData, entitlementData, type FeatureAssignment, featureEntitlement } from "../../domain/entitlement.js";
import { decide, type RuntimeOperation } from "../../domain/runtime-engine.js";
import { judgeVersion, type VersionJudgement } from "../../domain/version-eligibility.js";
import { markReadOnly } from "../../jobs/runtime-invalidation.js";
import type { BindResult } from "../../store/bindings.js";
import type { Q } from "../../store/db.js";
import { findDeviceByBinding } from "../../store/devices.js";
import { listFeatureAssignments } from "../../store/license-features.js";
import { loadVersionJudgement } from "../../store/product-versions.js";
import type { LicenseRow, PolicyRow } from "../../store/schema.js";

/**
 * `cached` (validate and check only): the device and the product's version catalogue come from the
 * runtime cache (cache/runtime-cache.ts), which reads the database only on a miss, and the request
 * is marked read-only so that answering it invalidates nothing.
 */
export async function decideReadOnly(req: FastifyRequest, op: RuntimeOperation, opts: { cached?: boolean } = {}) {
  const binding = normalizeBinding(req.body as BindingRequest);
  const { license, policy } = req.runtime!;
  const lk = req.server.lk;
  const now = lk.clock.now();
  const entry = opts.cached ? runtimeEntryOf(req) : undefined;
  let device: RuntimeDevice | undefined;
  let version: VersionJudgement;
  if (entry) {
    markReadOnly(req);
    const appVersion = binding.request.app_version;
    const [found, facts] = await Promise.all([
      lk.runtimeCache.device(lk.store.db, entry, binding.key),
      lk.runtimeCache.versionFacts(lk.store.db, license.product_id, appVersion),
    ]);
    device = found;
    version = judgeVersion({ appVersion, licenseType: policy.license_type, license, facts });
  } else {
    [device, version] = await Promise.all([
      findDeviceByBinding(lk.store.db, license.id, binding.key),
      loadVersionJudgement(lk.store.db, license, policy, binding.request.app_version),
    ]);
  }
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

/** The entitlement of `s` with the license's feature assignments as given (stored, cached, or as a write has just left them). */
export function entitlementWith(s: EntitlementSource, assignments: readonly FeatureAssignment[]): EntitlementData {
  const features = assignments.map((a) => featureEntitlement(a, s.now));
  return entitlementData({ license: s.license, policy: s.policy, status: s.status, deviceId: s.deviceId, now: s.now, version: s.version, features });
}

/**
 * The entitlement for a bound device, with the license's features (read through `q`: inside a
 * transaction pass the transaction, so the answer shows its own writes) and version eligibility.
 */
export async function entitlementFor(q: Q, s: EntitlementSource): Promise<EntitlementData> {
  return entitlementWith(s, await listFeatureAssignments(q, s.license.id));
}

/**
 * The entitlement of a read-only validate/check: the feature assignments come from the runtime
 * cache entry of the request when there is one (read once per license), else from the database.
 */
export async function readOnlyEntitlement(req: FastifyRequest, s: EntitlementSource): Promise<EntitlementData> {
  const lk = req.server.lk;
  const entry = runtimeEntryOf(req);
  if (!entry) return entitlementFor(lk.store.db, s);
  return entitlementWith(s, await lk.runtimeCache.features(lk.store.db, entry));
}

/** What an allowed bindDevice's answer is built from. */
export function boundSource(r: Extract<BindResult, { allowed: true }>, now: number): EntitlementSource {
  return { license: r.license, policy: r.policy, status: r.decision.status, deviceId: r.device.id, now, version: r.version };
}

/** The entitlement after an allowed bindDevice (activate, validate, consume, checkout), read in its transaction. */
export function boundEntitlement(trx: Q, r: Extract<BindResult, { allowed: true }>, now: number): Promise<EntitlementData> {
  return entitlementFor(trx, boundSource(r, now));
}
