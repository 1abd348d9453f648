// The signed entitlement `data` of activate / validate / check / consume (RuntimeEntitlementResponseData).
// Key order follows the contract schema; the bytes signed are JSON.stringify of this object.
import { isoTime, MINUTE_MS } from "../clock.js";
import type { VersionJudgement } from "./version-eligibility.js";

export interface FeatureEntitlement {
  code: string;
  enabled: boolean;
  quota?: number;
  consumed?: number;
  remaining?: number;
}

export interface VersionEligibility {
  app_version: string;
  is_entitled: boolean;
  enforced: boolean;
  released_at?: string;
  eligible_through?: string;
}

export interface EntitlementData {
  license_id: string;
  status: "active" | "grace_period";
  license_type: string;
  entitlement_version: number;
  issued_at: string;
  next_check_at: string;
  expires_at?: string;
  device_id: string;
  features: FeatureEntitlement[];
  version_eligibility?: VersionEligibility;
}

export interface EntitlementInput {
  license: { id: string; entitlement_version: number; expires_at: number | null };
  policy: { license_type: string; validation_interval_minutes: number };
  status: "active" | "grace_period";
  deviceId: string;
  now: number;
  /** The app_version's judgement; shown as version_eligibility when the request named an app_version. */
  version: VersionJudgement;
  features: FeatureEntitlement[];
}

/** A feature assignment as stored (license_features joined with the feature's code). */
export interface FeatureAssignment {
  code: string;
  enabled: number | boolean;
  max_consumptions: number | null;
  total_consumptions: number;
  expires_at: number | null;
}

/** An assignment is usable while enabled and before its own expires_at. */
export function assignmentActive(a: Pick<FeatureAssignment, "enabled" | "expires_at">, now: number): boolean {
  return Boolean(a.enabled) && (a.expires_at === null || now < a.expires_at);
}

/**
 * `{code, enabled, quota?, consumed, remaining?}`: `enabled` is false when the assignment is disabled
 * or past its expires_at; quota and remaining appear only when the assignment has a quota.
 */
export function featureEntitlement(a: FeatureAssignment, now: number): FeatureEntitlement {
  // Built in key order without spreads (this runs for every feature of every runtime answer).
  const f: FeatureEntitlement = { code: a.code, enabled: assignmentActive(a, now) };
  if (a.max_consumptions !== null) f.quota = a.max_consumptions;
  f.consumed = a.total_consumptions;
  if (a.max_consumptions !== null) f.remaining = Math.max(a.max_consumptions - a.total_consumptions, 0);
  return f;
}

/** The entitlement's `version_eligibility`, present when the request named an app_version. */
export function versionEligibilityView(v: VersionJudgement): VersionEligibility | undefined {
  if (v.appVersion === undefined) return undefined;
  return {
    app_version: v.appVersion,
    is_entitled: v.entitled,
    enforced: v.enforced,
    ...(v.releasedAt !== undefined ? { released_at: isoTime(v.releasedAt) } : {}),
    ...(v.eligibleThrough !== undefined ? { eligible_through: isoTime(v.eligibleThrough) } : {}),
  };
}

export function entitlementData(e: EntitlementInput): EntitlementData {
  const data = {
    license_id: e.license.id,
    status: e.status,
    license_type: e.policy.license_type,
    entitlement_version: e.license.entitlement_version,
    issued_at: isoTime(e.now),
    next_check_at: isoTime(e.now + e.policy.validation_interval_minutes * MINUTE_MS),
  } as EntitlementData;
  // the optional expires_at sits between next_check_at and device_id in the contract's key order
  if (e.license.expires_at !== null) data.expires_at = isoTime(e.license.expires_at);
  data.device_id = e.deviceId;
  data.features = e.features;
  const version = versionEligibilityView(e.version);
  if (version) data.version_eligibility = version;
  return data;
}

/**
 * Why a consume of `code` is refused before any quota is looked at (FEATURE_NOT_ENTITLED), or null:
 * the feature is not assigned to the license (or not in the product at all), disabled, or its
 * assignment has expired.
 */
export function featureRefusal(code: string, a: Pick<FeatureAssignment, "enabled" | "expires_at"> | undefined, now: number): string | null {
  if (!a) return `field feature_code: feature ${code} is not assigned to this license`;
  if (!a.enabled) return `field feature_code: feature ${code} is disabled for this license`;
  if (a.expires_at !== null && now >= a.expires_at) return `field feature_code: the assignment of feature ${code} expired at ${new Date(a.expires_at).toISOString()}`;
  return null;
}

/** Whether adding `amount` keeps the counter within the quota (no quota: always). */
export function withinQuota(a: Pick<FeatureAssignment, "max_consumptions" | "total_consumptions">, amount: number): boolean {
  return a.max_consumptions === null || a.total_consumptions + amount <= a.max_consumptions;
}
