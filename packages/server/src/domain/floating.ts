// Floating licensing rules (pure): seats, lease lifetimes, the license-level gate of heartbeats, and
// the signed lease answers in the contract's key order.
//
// - A policy offers `max_floating_users` concurrent seats (0 = floating off → FLOATING_NOT_ENABLED).
// - A lease holds a seat while its status is 'active' AND its expires_at is in the future; an expired
//   lease never counts, even before the expiry job has marked it.
// - A checkout from a device that already holds a live lease does not take a second seat: the same
//   lease is extended and re-issued under a fresh token (the old token stops working).
// - Heartbeat and checkin name the lease by its token. A lease that was checked in or released is
//   gone: LEASE_NOT_FOUND. A lease past its timeout: LEASE_EXPIRED.
import { MINUTE_MS } from "../clock.js";
import type { ErrorCode } from "../http/errors.js";
import type { EntitlementData, FeatureEntitlement, VersionEligibility } from "./entitlement.js";
import { effectiveStatus, type LicenseStatus } from "./license-status.js";

export type LeaseStatus = "active" | "checked_in" | "expired" | "released";
export const LEASE_STATUSES = ["active", "checked_in", "expired", "released"] as const satisfies readonly LeaseStatus[];

export function leaseExpiresAt(now: number, timeoutMinutes: number): number {
  return now + timeoutMinutes * MINUTE_MS;
}

/** The status a lease shows: a stored 'active' lease past its expiry is 'expired' (computed from the clock). */
export function leaseStatusAt(lease: { status: LeaseStatus; expires_at: number }, now: number): LeaseStatus {
  return lease.status === "active" && lease.expires_at <= now ? "expired" : lease.status;
}

export type SeatDecision =
  | { kind: "not_enabled" }
  | { kind: "full"; max: number }
  /** The device already holds a live lease: extend and re-issue it, no second seat. */
  | { kind: "reuse" }
  | { kind: "new" };

/** Decided under the license row lock, after the D2 binding rule passed. */
export function seatDecision(maxFloatingUsers: number, liveLeases: number, deviceHasLiveLease: boolean): SeatDecision {
  if (maxFloatingUsers <= 0) return { kind: "not_enabled" };
  if (deviceHasLiveLease) return { kind: "reuse" };
  if (liveLeases >= maxFloatingUsers) return { kind: "full", max: maxFloatingUsers };
  return { kind: "new" };
}

export type GateResult = { allow: true; status: "active" | "grace_period" } | { allow: false; code: ErrorCode; detail: string };

export interface GateInput {
  now: number;
  license: { state: "active" | "suspended" | "revoked"; starts_at: number | null; expires_at: number | null };
  policy: { grace_period_days: number; allow_vm: number | boolean; allow_container: number | boolean };
  /** The lease's device as stored now. */
  device: { status: string; is_vm: number; is_container: number };
}

/**
 * The license-level part of the D2 order for calls that carry a lease token instead of a binding
 * (heartbeat): steps 2-5 against the lease's stored device, then the lease's own rule (its device
 * must still be bound). Same codes and order as domain/runtime-engine.ts decide().
 */
export function licenseGate(g: GateInput): GateResult {
  const { license, policy, device, now } = g;
  if (license.state === "revoked") return { allow: false, code: "LICENSE_INACTIVE", detail: "license is revoked" };
  if (license.state === "suspended") return { allow: false, code: "LICENSE_INACTIVE", detail: "license is suspended" };
  if (license.starts_at !== null && license.starts_at > now) {
    return { allow: false, code: "LICENSE_INACTIVE", detail: `license starts at ${new Date(license.starts_at).toISOString()}` };
  }
  const status = effectiveStatus(license, policy.grace_period_days, now);
  if (status === "expired") return { allow: false, code: "LICENSE_EXPIRED", detail: `license expired at ${new Date(license.expires_at!).toISOString()}` };
  if (device.status === "blacklisted") return { allow: false, code: "DEVICE_BLACKLISTED", detail: "this device is blacklisted for the license" };
  if (device.is_vm === 1 && !policy.allow_vm) return { allow: false, code: "VM_NOT_ALLOWED", detail: "the policy does not allow virtual machines" };
  if (device.is_container === 1 && !policy.allow_container) return { allow: false, code: "CONTAINER_NOT_ALLOWED", detail: "the policy does not allow containers" };
  if (device.status !== "active") {
    return { allow: false, code: "DEVICE_NOT_ACTIVATED", detail: "the lease's device is no longer bound to the license; check out again" };
  }
  return { allow: true, status: status === "grace_period" ? "grace_period" : "active" };
}

/** FloatingLeaseResponseData (heartbeat, checkin), in the contract's key order. */
export interface LeaseData {
  license_id: string;
  status: string;
  license_type: string;
  entitlement_version: number;
  issued_at: string;
  expires_at?: string;
  device_id: string;
  lease_expires_at: string;
  features?: FeatureEntitlement[];
  version_eligibility?: VersionEligibility;
}

/** FloatingCheckoutResponseData: the lease data plus the token, with features always present. */
export type CheckoutData = LeaseData & { lease_token: string; features: FeatureEntitlement[] };

/** Entitlement fields in the contract's order, with the lease fields after `device_id`. */
function withLease<L extends Record<string, string>>(e: EntitlementData, lease: L) {
  return {
    license_id: e.license_id,
    status: e.status,
    license_type: e.license_type,
    entitlement_version: e.entitlement_version,
    issued_at: e.issued_at,
    ...(e.expires_at !== undefined ? { expires_at: e.expires_at } : {}),
    device_id: e.device_id,
    ...lease,
    features: e.features,
    ...(e.version_eligibility !== undefined ? { version_eligibility: e.version_eligibility } : {}),
  };
}

export function checkoutData(e: EntitlementData, leaseToken: string, leaseExpires: number): CheckoutData {
  return withLease(e, { lease_token: leaseToken, lease_expires_at: new Date(leaseExpires).toISOString() });
}

/** A heartbeat's answer: the fresh entitlement (features included) and the extended lease. */
export function heartbeatData(e: EntitlementData, leaseExpires: number): LeaseData {
  return withLease(e, { lease_expires_at: new Date(leaseExpires).toISOString() });
}

export interface CheckinInput {
  license: { id: string; entitlement_version: number; expires_at: number | null };
  licenseType: string;
  status: LicenseStatus;
  deviceId: string;
  now: number;
}

/**
 * A checkin's answer. The lease ended now, so `lease_expires_at` is the checkin time. Checkin is not
 * gated on the license state (a suspended license may still give its seat back), so `status` is the
 * license's computed status, whatever it is; no features (the lease no longer entitles anything).
 */
export function checkinData(c: CheckinInput): LeaseData {
  const now = new Date(c.now).toISOString();
  return {
    license_id: c.license.id,
    status: c.status,
    license_type: c.licenseType,
    entitlement_version: c.license.entitlement_version,
    issued_at: now,
    ...(c.license.expires_at !== null ? { expires_at: new Date(c.license.expires_at).toISOString() } : {}),
    device_id: c.deviceId,
    lease_expires_at: now,
  };
}
