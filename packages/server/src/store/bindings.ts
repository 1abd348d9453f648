// Binding a device to a license under the license row lock: the read-check-write that keeps
// `max_activations` exact under any concurrency, in one process or many.
import { createHash } from "node:crypto";
import type { Binding } from "../domain/binding.js";
import { type Decision, decide, type RuntimeOperation } from "../domain/runtime-engine.js";
import type { VersionJudgement } from "../domain/version-eligibility.js";
import { recordEvent } from "./audit-events.js";
import type { Engine, Tx } from "./db.js";
import { bindingUnchanged, countActiveContainers, findDeviceByBinding, insertActiveDevice, reactivateDevice, refreshDevice } from "./devices.js";
import { lockLicenseRow } from "./licenses.js";
import { policyOf } from "./policies.js";
import { prepare } from "./prepared.js";
import { loadVersionJudgement } from "./product-versions.js";
import type { DeviceRow, LicenseRow, PolicyRow } from "./schema.js";

export interface BindRequest {
  licenseId: string;
  op: Exclude<RuntimeOperation, "check" | "offline" | "deactivate">;
  binding: Binding;
  ip: string | null;
  requestId: string;
  now: number;
  /** Extra metadata for the denial's audit event (consume adds its feature_code). */
  denialMetadata?: Record<string, unknown>;
  /** The license row, when the caller has already read it under the lock in this transaction. */
  locked?: LicenseRow;
  /**
   * Where a sighting of an existing binding whose details are unchanged goes instead of an UPDATE of
   * its row: the batched last-seen stamp (jobs/side-effects.ts). Without it the row is rewritten.
   */
  seen?: (deviceId: string) => void;
}

/** `version` is the app_version's eligibility, judged under the lock (for the entitlement's version_eligibility). */
export type BindResult =
  | { allowed: true; decision: Extract<Decision, { allow: true }>; license: LicenseRow; policy: PolicyRow; device: DeviceRow; version: VersionJudgement }
  | { allowed: false; decision: Extract<Decision, { allow: false }>; license: LicenseRow; policy: PolicyRow; version: VersionJudgement };

/** Redacted binding details for audit metadata (D7): fingerprints are hashed, never stored in events. */
export function bindingSummary(b: Binding): Record<string, unknown> {
  return {
    binding_kind: b.kind,
    binding_hash: createHash("sha256").update(b.key).digest("hex").slice(0, 16),
    ...(b.request.app_version !== undefined ? { app_version: b.request.app_version } : {}),
  };
}

const countActivation = prepare(2, (q, licenseId: string, now: number) =>
  q
    .updateTable("licenses")
    .set((eb) => ({
      active_device_count: eb("active_device_count", "+", 1),
      times_activated: eb("times_activated", "+", 1),
      updated_at: now,
    }))
    .where("id", "=", licenseId)
    .returningAll(),
);

export async function bindDevice(trx: Tx, engine: Engine, r: BindRequest): Promise<BindResult> {
  const license = r.locked ?? (await lockLicenseRow(trx, engine, r.licenseId));
  if (!license) throw new Error(`license ${r.licenseId} not found`);
  const policy = await policyOf(trx, license);
  const device = await findDeviceByBinding(trx, license.id, r.binding.key);
  const needsContainerCount = r.binding.kind === "container" && device?.status !== "active" && policy.max_container_instances > 0;
  const version = await loadVersionJudgement(trx, license, policy, r.binding.request.app_version);
  const decision = decide({
    op: r.op,
    now: r.now,
    license,
    policy,
    binding: r.binding,
    device: device ?? null,
    activeContainerCount: needsContainerCount ? await countActiveContainers(trx, license.id) : 0,
    version,
  });
  const actor = { actor_type: "license" as const, actor_id: license.id, resource_type: "license", resource_id: license.id, request_id: r.requestId, ip_address: r.ip, created_at: r.now };

  if (!decision.allow) {
    // Every denial is recorded in the call's transaction (D7): the activation limit as its own
    // event type, anything else (inactive, expired, blacklisted, VM, version, …) as validation_denied.
    await recordEvent(
      trx,
      decision.code === "ACTIVATION_LIMIT_EXCEEDED"
        ? {
            ...actor,
            event_type: "license.activation_limit_exceeded",
            metadata: { operation: r.op, ...bindingSummary(r.binding), max_activations: policy.max_activations, implicit: r.op !== "activate", ...r.denialMetadata },
          }
        : { ...actor, event_type: "license.validation_denied", metadata: { operation: r.op, code: decision.code, ...bindingSummary(r.binding), ...r.denialMetadata } },
    );
    return { allowed: false, decision, license, policy, version };
  }

  const validated = r.op === "validate";
  if (decision.binds === "existing" && device) {
    // Nothing about the device changes but its last-seen time: no row write (and no cache invalidation).
    if (r.seen && bindingUnchanged(device, r.binding, r.ip)) r.seen(device.id);
    else await refreshDevice(trx, device, r.binding, r.ip, r.now);
    return { allowed: true, decision, license, policy, device, version };
  }

  const bound = device ? await reactivateDevice(trx, device, r.binding, r.ip, r.now, validated) : await insertActiveDevice(trx, license.id, r.binding, r.ip, r.now, validated);
  const updated = await countActivation.one(trx, license.id, r.now);
  await recordEvent(trx, {
    ...actor,
    event_type: "license.activated",
    metadata: { device_id: bound.id, implicit: r.op !== "activate", ...bindingSummary(r.binding) },
  });
  return { allowed: true, decision, license: updated, policy, device: bound, version };
}
