// The signed entitlement `data` of activate / validate / check (RuntimeEntitlementResponseData).
// Key order follows the contract schema; the bytes signed are JSON.stringify of this object.
import { MINUTE_MS } from "../clock.js";

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
  appVersion?: string;
  features: FeatureEntitlement[];
}

export function entitlementData(e: EntitlementInput): EntitlementData {
  const data: EntitlementData = {
    license_id: e.license.id,
    status: e.status,
    license_type: e.policy.license_type,
    entitlement_version: e.license.entitlement_version,
    issued_at: new Date(e.now).toISOString(),
    next_check_at: new Date(e.now + e.policy.validation_interval_minutes * MINUTE_MS).toISOString(),
    ...(e.license.expires_at !== null ? { expires_at: new Date(e.license.expires_at).toISOString() } : {}),
    device_id: e.deviceId,
    features: e.features,
  };
  // No version catalog exists yet, so gating is not enforced (contract: enforced=false without a catalog).
  if (e.appVersion !== undefined) data.version_eligibility = { app_version: e.appVersion, is_entitled: true, enforced: false };
  return data;
}
