// Renewal (NOTES §11): only time_limited, subscription and trial licenses renew. The new expiry is an
// explicit future `expires_at`, or `extend_by_days` counted from the stored expiry while the license
// has not expired yet, otherwise from the renewal time. Renewal never changes the stored state, so a
// suspended license stays suspended; a revoked one cannot be renewed (revocation is permanent).
import { DAY_MS } from "../clock.js";
import { ApiError } from "../http/errors.js";
import { EXPIRING_TYPES, type LicenseType } from "./license-types.js";

/** The latest instant any expiry may take: 9999-12-31T23:59:59.999Z (ISO strings stay 4-digit years). */
export const MAX_EXPIRY_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export interface RenewalInput {
  expires_at?: number;
  extend_by_days?: number;
}

export interface RenewableLicense {
  state: "active" | "suspended" | "revoked";
  starts_at: number | null;
  expires_at: number | null;
}

/** Exactly one of `expires_at` / `extend_by_days` (422 otherwise); checked before anything is read. */
export function checkRenewalInput(input: RenewalInput): void {
  const given = [input.expires_at, input.extend_by_days].filter((v) => v !== undefined).length;
  if (given !== 1) {
    throw new ApiError("VALIDATION_ERROR", `field expires_at, extend_by_days: provide exactly one of expires_at or extend_by_days (got ${given === 0 ? "neither" : "both"})`);
  }
}

/** The renewed expiry (epoch ms); throws CONFLICT for a revoked license and VALIDATION_ERROR for any rule it breaks. */
export function renewedExpiry(license: RenewableLicense, type: string, input: RenewalInput, now: number): number {
  checkRenewalInput(input);
  if (license.state === "revoked") throw new ApiError("CONFLICT", "license is revoked; revocation is permanent and it cannot be renewed");
  if (!EXPIRING_TYPES.includes(type as LicenseType)) {
    throw new ApiError("VALIDATION_ERROR", `license_type ${type}: is not renewable; only ${EXPIRING_TYPES.join(", ")} licenses can be renewed`);
  }
  let next: number;
  let field: "expires_at" | "extend_by_days";
  if (input.expires_at !== undefined) {
    field = "expires_at";
    next = input.expires_at;
    if (next <= now) throw new ApiError("VALIDATION_ERROR", "field expires_at: must be in the future");
  } else {
    field = "extend_by_days";
    const base = license.expires_at !== null && license.expires_at > now ? license.expires_at : now;
    next = base + input.extend_by_days! * DAY_MS;
  }
  if (!Number.isSafeInteger(next) || next > MAX_EXPIRY_MS) throw new ApiError("VALIDATION_ERROR", `field ${field}: the new expiry would be after 9999-12-31`);
  if (license.starts_at !== null && next <= license.starts_at) {
    throw new ApiError("VALIDATION_ERROR", `field ${field}: the new expiry ${new Date(next).toISOString()} is not after starts_at ${new Date(license.starts_at).toISOString()}`);
  }
  return next;
}
