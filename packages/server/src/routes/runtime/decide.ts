// The read-only first half of validate and check: resolve the binding, find its device, decide.
import type { FastifyRequest } from "fastify";
import { type BindingRequest, normalizeBinding } from "../../domain/binding.js";
import { entitlementData } from "../../domain/entitlement.js";
import { decide, type RuntimeOperation } from "../../domain/runtime-engine.js";
import { findDeviceByBinding } from "../../store/devices.js";
import type { LicenseRow, PolicyRow } from "../../store/schema.js";

export async function decideReadOnly(req: FastifyRequest, op: RuntimeOperation) {
  const binding = normalizeBinding(req.body as BindingRequest);
  const { license, policy } = req.runtime!;
  const lk = req.server.lk;
  const now = lk.clock.now();
  const device = await findDeviceByBinding(lk.store.db, license.id, binding.key);
  // Container caps only matter when binding anew, which is decided again under the license lock.
  const decision = decide({ op, now, license, policy, binding, device: device ?? null, activeContainerCount: 0 });
  return { binding, license, policy, device, decision, now };
}

/** The entitlement for a bound device (features arrive with feature assignments). */
export function entitlementFor(
  license: LicenseRow,
  policy: PolicyRow,
  status: "active" | "grace_period",
  deviceId: string,
  now: number,
  appVersion: string | undefined,
) {
  return entitlementData({ license, policy, status, deviceId, now, appVersion, features: [] });
}
