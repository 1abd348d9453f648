// Devices: runtime bindings normalised into records (NOTES §12).
import type { Binding } from "../domain/binding.js";
import { newId } from "../ids.js";
import type { Q } from "./db.js";
import type { DeviceRow } from "./schema.js";

export function findDeviceByBinding(q: Q, licenseId: string, bindingKey: string): Promise<DeviceRow | undefined> {
  return q.selectFrom("devices").selectAll().where("license_id", "=", licenseId).where("binding_key", "=", bindingKey).executeTakeFirst();
}

export async function countActiveContainers(q: Q, licenseId: string): Promise<number> {
  const r = await q
    .selectFrom("devices")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("license_id", "=", licenseId)
    .where("status", "=", "active")
    .where("binding_kind", "=", "container")
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

function bindingColumns(b: Binding, ip: string | null) {
  const r = b.request;
  return {
    fingerprint: r.fingerprint ?? null,
    hostname: r.hostname ?? null,
    os: r.os ?? null,
    ip_address: ip,
    is_vm: r.is_vm ? 1 : 0,
    is_container: b.kind === "container" ? 1 : 0,
    container_id: r.container_id ?? null,
    cluster_id: r.cluster_id ?? null,
    namespace: r.namespace ?? null,
    pod_name: r.pod_name ?? null,
  };
}

export async function insertActiveDevice(q: Q, licenseId: string, b: Binding, ip: string | null, now: number, validated: boolean): Promise<DeviceRow> {
  const row: DeviceRow = {
    id: newId("dev", now),
    license_id: licenseId,
    binding_kind: b.kind,
    binding_key: b.key,
    ...bindingColumns(b, ip),
    status: "active",
    first_seen_at: now,
    last_seen_at: now,
    last_validated_at: validated ? now : null,
    metadata: "{}",
    created_at: now,
    updated_at: now,
  };
  await q.insertInto("devices").values(row).execute();
  return row;
}

/** Makes a known device active again (after deactivate or reset) with the binding's latest details. */
export async function reactivateDevice(q: Q, device: DeviceRow, b: Binding, ip: string | null, now: number, validated: boolean): Promise<DeviceRow> {
  const cols = bindingColumns(b, ip);
  const updated = {
    ...cols,
    status: "active" as const,
    last_seen_at: now,
    last_validated_at: validated ? now : device.last_validated_at,
    updated_at: now,
  };
  await q.updateTable("devices").set(updated).where("id", "=", device.id).execute();
  return { ...device, ...updated };
}

/** Refreshes the details of an already active binding (explicit activation of a known device). */
export async function refreshDevice(q: Q, device: DeviceRow, b: Binding, ip: string | null, now: number): Promise<void> {
  await q
    .updateTable("devices")
    .set({ ...bindingColumns(b, ip), last_seen_at: now, updated_at: now })
    .where("id", "=", device.id)
    .execute();
}
