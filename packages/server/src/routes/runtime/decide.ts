// The read-only first half of validate and check (and offline): resolve the binding, find its
// device, judge the app_version, decide. And the entitlement every runtime answer carries.
import type { FastifyRequest } from "fastify";
import { type RuntimeDevice, runtimeEntryOf } from "../../cache/runtime-cache.js";
import { type Binding, type BindingRequest, normalizeBinding } from "../../domain/binding.js";
import { type EntitlementData, entitlementData, type FeatureAssignment, featureEntitlement } from "../../domain/entitlement.js";
import { type Decision, decide, type RuntimeOperation } from "../../domain/runtime-engine.js";
import { judgeVersion, type VersionCatalogFacts, type VersionJudgement } from "../../domain/version-eligibility.js";
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
 * is marked read-only so that answering it invalidates nothing. When the cache already holds both,
 * the decision is returned as it is, not as a promise (validate and check run at the rate of the
 * whole service; each promise on their path is paid on every request).
 */
export function decideReadOnly(req: FastifyRequest, op: RuntimeOperation, opts: { cached?: boolean } = {}): ReadOnlyDecision | Promise<ReadOnlyDecision> {
  const binding = normalizeBinding(req.body as BindingRequest);
  const lk = req.server.lk;
  const entry = opts.cached ? runtimeEntryOf(req) : undefined;
  if (!entry) return decideFromDatabase(req, op, binding);
  markReadOnly(req);
  const { license } = req.runtime!;
  const appVersion = binding.request.app_version;
  const cache = lk.runtimeCache;
  const device = cache.knownDevice(entry, binding.key);
  const facts = cache.knownVersionFacts(license.product_id, appVersion);
  if (device !== undefined && facts !== undefined) return decideWithFacts(req, op, binding, device ?? undefined, facts);
  return Promise.all([cache.device(lk.store.db, entry, binding.key), cache.versionFacts(lk.store.db, license.product_id, appVersion)]).then(([d, f]) =>
    decideWithFacts(req, op, binding, d, f),
  );
}

export interface ReadOnlyDecision {
  binding: Binding;
  license: LicenseRow;
  policy: PolicyRow;
  device: RuntimeDevice | undefined;
  decision: Decision;
  now: number;
  version: VersionJudgement;
}

async function decideFromDatabase(req: FastifyRequest, op: RuntimeOperation, binding: Binding): Promise<ReadOnlyDecision> {
  const { license, policy } = req.runtime!;
  const db = req.server.lk.store.db;
  const [device, version] = await Promise.all([
    findDeviceByBinding(db, license.id, binding.key),
    loadVersionJudgement(db, license, policy, binding.request.app_version),
  ]);
  return decideWithVersion(req, op, binding, device, version);
}

function decideWithFacts(req: FastifyRequest, op: RuntimeOperation, binding: Binding, device: RuntimeDevice | undefined, facts: VersionCatalogFacts): ReadOnlyDecision {
  const { license, policy } = req.runtime!;
  const version = judgeVersion({ appVersion: binding.request.app_version, licenseType: policy.license_type, license, facts });
  return decideWithVersion(req, op, binding, device, version);
}

function decideWithVersion(req: FastifyRequest, op: RuntimeOperation, binding: Binding, device: RuntimeDevice | undefined, version: VersionJudgement): ReadOnlyDecision {
  const { license, policy } = req.runtime!;
  const now = req.server.lk.clock.now();
  // Container caps only matter when binding anew, which is decided again under the license lock.
  const d = decide({ op, now, license, policy, binding, device: device ?? null, activeContainerCount: 0, version });
  return { binding, license, policy, device, decision: d, now, version };
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
 * cache entry of the request when there is one (read once per license), else from the database;
 * not a promise when the entry holds them.
 */
export function readOnlyEntitlement(req: FastifyRequest, s: EntitlementSource): EntitlementData | Promise<EntitlementData> {
  const lk = req.server.lk;
  const entry = runtimeEntryOf(req);
  if (!entry) return entitlementFor(lk.store.db, s);
  const known = lk.runtimeCache.knownFeatures(entry);
  if (known) return entitlementWith(s, known);
  return lk.runtimeCache.features(lk.store.db, entry).then((features) => entitlementWith(s, features));
}

/** What an allowed bindDevice's answer is built from. */
export function boundSource(r: Extract<BindResult, { allowed: true }>, now: number): EntitlementSource {
  return { license: r.license, policy: r.policy, status: r.decision.status, deviceId: r.device.id, now, version: r.version };
}

/** The entitlement after an allowed bindDevice (activate, validate, consume, checkout), read in its transaction. */
export function boundEntitlement(trx: Q, r: Extract<BindResult, { allowed: true }>, now: number): Promise<EntitlementData> {
  return entitlementFor(trx, boundSource(r, now));
}
