// The licensing models (NOTES §8) and the rules they put on a license's dates (D13).
import { DAY_MS } from "../clock.js";
import { ApiError } from "../http/errors.js";

export const LICENSE_TYPES = ["perpetual", "time_limited", "subscription", "trial", "consumption"] as const;
export type LicenseType = (typeof LICENSE_TYPES)[number];

/** Types whose licenses run to an expiry and can be renewed. */
export const EXPIRING_TYPES: readonly LicenseType[] = ["time_limited", "subscription", "trial"];

export interface LicenseDatesInput {
  starts_at?: number;
  expires_at?: number;
  maintenance_expires_at?: number;
}

export interface LicenseDates {
  starts_at: number | null;
  expires_at: number | null;
  maintenance_expires_at: number | null;
}

/**
 * Dates of a new license:
 * - `maintenance_expires_at` only on perpetual licenses (422 otherwise);
 * - perpetual licenses never expire, so `expires_at` is refused on them;
 * - an expiring type created without `expires_at` gets starts_at (or now) + the policy's
 *   `duration_days` when set, otherwise no expiry until a renewal sets one;
 * - `expires_at` must be in the future and after `starts_at`.
 */
export function resolveLicenseDates(type: LicenseType, durationDays: number | null, input: LicenseDatesInput, now: number): LicenseDates {
  if (input.maintenance_expires_at !== undefined && type !== "perpetual") {
    throw new ApiError("VALIDATION_ERROR", "field maintenance_expires_at: is supported only for perpetual licenses");
  }
  if (input.expires_at !== undefined && type === "perpetual") {
    throw new ApiError("VALIDATION_ERROR", "field expires_at: perpetual licenses do not expire; use maintenance_expires_at for upgrade eligibility");
  }
  const startsAt = input.starts_at ?? null;
  let expiresAt = input.expires_at ?? null;
  if (expiresAt !== null) {
    if (expiresAt <= now) throw new ApiError("VALIDATION_ERROR", "field expires_at: must be in the future");
    if (startsAt !== null && expiresAt <= startsAt) throw new ApiError("VALIDATION_ERROR", "field expires_at: must be after starts_at");
  } else if (EXPIRING_TYPES.includes(type) && durationDays !== null) {
    expiresAt = (startsAt ?? now) + durationDays * DAY_MS;
  }
  return { starts_at: startsAt, expires_at: expiresAt, maintenance_expires_at: input.maintenance_expires_at ?? null };
}
