// License actions beyond the lifecycle (NOTES §11, §12): renew, transfer, device reset and blacklist.
// Each runs under the license row lock, bumps the entitlement version and records exactly one event.
import { type RenewalInput, renewedExpiry } from "../domain/license-renewal.js";
import { ApiError } from "../http/errors.js";
import { iso } from "./json.js";
import type { EventInput } from "./audit-events.js";
import { recordEvent } from "./audit-events.js";
import { findCustomer } from "./customers.js";
import type { Engine, Q, Tx } from "./db.js";
import { findLicenseDevice, releaseActiveDevices, setDeviceStatus } from "./devices.js";
import { type LockedLicense, lockLicense } from "./licenses.js";
import type { DeviceRow, LicenseRow, } from "./schema.js";

/** Who did it and when: the event fields an action does not decide itself. */
export type EventBase = Omit<EventInput, "event_type" | "resource_type" | "resource_id">;

const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** Moves the expiry of a locked license (see domain/license-renewal.ts) and records `license.renewed`. */
export async function renewLicense(trx: Tx, locked: LockedLicense, input: RenewalInput, event: EventBase): Promise<LicenseRow> {
  const { license, policy } = locked;
  const now = event.created_at;
  const expiresAt = renewedExpiry(license, policy.license_type, input, now);
  const updated = await trx
    .updateTable("licenses")
    .set((eb) => ({ expires_at: expiresAt, entitlement_version: eb("entitlement_version", "+", 1), updated_at: now }))
    .where("id", "=", license.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await recordEvent(trx, {
    ...event,
    event_type: "license.renewed",
    resource_type: "license",
    resource_id: license.id,
    metadata: {
      ...event.metadata,
      previous_expires_at: isoOrNull(license.expires_at),
      expires_at: iso(expiresAt),
      ...(input.extend_by_days !== undefined ? { extend_by_days: input.extend_by_days } : {}),
    },
  });
  return updated;
}

export interface TransferInput {
  /** `null` clears the link; `undefined` keeps it. */
  customer_id?: string | null;
  customer_email?: string | null;
  customer_name?: string | null;
  reset_devices: boolean;
}

/**
 * Moves the assignee of a locked license. Counts against the policy's `max_transfers` (0 = unlimited,
 * D11); with `reset_devices` every active device is released (status `reset`).
 */
export async function transferLicense(trx: Tx, locked: LockedLicense, input: TransferInput, event: EventBase): Promise<LicenseRow> {
  const { license, policy } = locked;
  const now = event.created_at;
  if (license.state === "revoked") throw new ApiError("CONFLICT", "license is revoked; revocation is permanent and it cannot be transferred");
  if (policy.max_transfers > 0 && license.times_transferred >= policy.max_transfers) {
    throw new ApiError("TRANSFER_LIMIT_EXCEEDED", `the license has used all ${policy.max_transfers} transfers its policy allows`);
  }
  if (input.customer_id && !(await findCustomer(trx, input.customer_id))) {
    throw new ApiError("NOT_FOUND", `field customer_id: customer ${input.customer_id} not found`);
  }
  const released = input.reset_devices ? await releaseActiveDevices(trx, license.id, "reset", now) : 0;
  const changes = {
    ...(input.customer_id !== undefined ? { customer_id: input.customer_id } : {}),
    ...(input.customer_email !== undefined ? { customer_email: input.customer_email } : {}),
    ...(input.customer_name !== undefined ? { customer_name: input.customer_name } : {}),
  };
  const updated = await trx
    .updateTable("licenses")
    .set((eb) => ({
      ...changes,
      times_transferred: eb("times_transferred", "+", 1),
      entitlement_version: eb("entitlement_version", "+", 1),
      ...(input.reset_devices ? { active_device_count: 0 } : {}),
      updated_at: now,
    }))
    .where("id", "=", license.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await recordEvent(trx, {
    ...event,
    event_type: "license.transferred",
    resource_type: "license",
    resource_id: license.id,
    metadata: {
      ...event.metadata,
      previous_customer_id: license.customer_id,
      customer_id: updated.customer_id,
      changed_fields: Object.keys(changes),
      reset_devices: released,
      times_transferred: updated.times_transferred,
    },
  });
  return updated;
}

export type DeviceAction = "reset" | "blacklist";

/**
 * Resets (active → `reset`) or blacklists (anything but blacklisted → `blacklisted`) a device of a
 * license. An active device's seat is released. Records `device.reset` / `device.blacklisted`.
 * Undefined when the license or the device (on that license) does not exist.
 */
export async function changeDevice(
  trx: Tx,
  engine: Engine,
  licenseId: string,
  deviceId: string,
  action: DeviceAction,
  event: EventBase,
): Promise<DeviceRow | undefined> {
  const locked = await lockLicense(trx, engine, licenseId);
  if (!locked) return undefined;
  const device = await findLicenseDevice(trx, licenseId, deviceId);
  if (!device) return undefined;
  const now = event.created_at;
  if (action === "reset" && device.status !== "active") {
    throw new ApiError("CONFLICT", `device is ${device.status}; only an active device can be reset`);
  }
  if (action === "blacklist" && device.status === "blacklisted") throw new ApiError("CONFLICT", "device is already blacklisted");
  const updated = await setDeviceStatus(trx, device, action === "reset" ? "reset" : "blacklisted", now);
  const releasesSeat = device.status === "active";
  await trx
    .updateTable("licenses")
    .set((eb) => ({
      entitlement_version: eb("entitlement_version", "+", 1),
      ...(releasesSeat ? { active_device_count: eb("active_device_count", "-", 1) } : {}),
      updated_at: now,
    }))
    .where("id", "=", licenseId)
    .execute();
  await recordEvent(trx, {
    ...event,
    event_type: action === "reset" ? "device.reset" : "device.blacklisted",
    resource_type: "device",
    resource_id: device.id,
    metadata: { ...event.metadata, license_id: licenseId, previous_status: device.status, released_seat: releasesSeat },
  });
  return updated;
}

export interface LicenseSelector {
  customer_id?: string;
  product_id?: string;
  policy_id?: string;
}

/** Ids of the licenses matching every given field, newest first, at most `limit`. */
export async function licenseIdsMatching(q: Q, f: LicenseSelector, limit: number): Promise<string[]> {
  let qb = q.selectFrom("licenses").select("id").orderBy("id", "desc").limit(limit);
  if (f.customer_id !== undefined) qb = qb.where("customer_id", "=", f.customer_id);
  if (f.product_id !== undefined) qb = qb.where("product_id", "=", f.product_id);
  if (f.policy_id !== undefined) qb = qb.where("policy_id", "=", f.policy_id);
  return (await qb.execute()).map((r) => r.id);
}
