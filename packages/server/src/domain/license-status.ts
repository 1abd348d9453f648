// A license's status as shown anywhere is computed from its stored state and the clock (D2):
// an active license past `expires_at` is `grace_period` within the policy's grace days, else `expired`.
import { DAY_MS } from "../clock.js";

export type LicenseStatus = "active" | "suspended" | "expired" | "revoked" | "grace_period";
export const LICENSE_STATUSES = ["active", "suspended", "expired", "revoked", "grace_period"] as const satisfies readonly LicenseStatus[];

export interface StatusInputs {
  state: "active" | "suspended" | "revoked";
  expires_at: number | null;
}

export function graceEndsAt(expiresAt: number, graceDays: number): number {
  return expiresAt + graceDays * DAY_MS;
}

export function effectiveStatus(license: StatusInputs, graceDays: number, now: number): LicenseStatus {
  if (license.state !== "active") return license.state;
  if (license.expires_at === null || now < license.expires_at) return "active";
  return now < graceEndsAt(license.expires_at, graceDays) ? "grace_period" : "expired";
}
