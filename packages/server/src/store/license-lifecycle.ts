// Applies a lifecycle action under the license row lock. Revoke also releases every active seat.
import { LIFECYCLE_EVENT, type LifecycleAction, transition } from "../domain/license-lifecycle.js";
import type { EventInput } from "./audit-events.js";
import { recordEvent } from "./audit-events.js";
import type { Engine, Tx } from "./db.js";
import { releaseActiveDevices } from "./devices.js";
import { lockLicense } from "./licenses.js";
import type { LicenseRow, PolicyRow } from "./schema.js";

export async function applyLifecycle(
  trx: Tx,
  engine: Engine,
  licenseId: string,
  action: LifecycleAction,
  event: Omit<EventInput, "event_type" | "resource_type" | "resource_id">,
): Promise<{ license: LicenseRow; policy: PolicyRow } | undefined> {
  const locked = await lockLicense(trx, engine, licenseId);
  if (!locked) return undefined;
  const { license, policy } = locked;
  const { next, changed } = transition(license.state, action);
  if (!changed) return { license, policy };
  const now = event.created_at;
  let released = 0;
  if (action === "revoke") released = await releaseActiveDevices(trx, license.id, "deactivated", now);
  const updated = await trx
    .updateTable("licenses")
    .set((eb) => ({
      state: next,
      entitlement_version: eb("entitlement_version", "+", 1),
      ...(action === "revoke" ? { active_device_count: 0 } : {}),
      updated_at: now,
    }))
    .where("id", "=", license.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await recordEvent(trx, {
    ...event,
    event_type: LIFECYCLE_EVENT[action],
    resource_type: "license",
    resource_id: license.id,
    metadata: { ...event.metadata, previous_state: license.state, ...(action === "revoke" ? { released_devices: released } : {}) },
  });
  return { license: updated, policy };
}
