// Devices: runtime bindings normalised into records (NOTES §12).
import type { Binding } from "../domain/binding.js";
import { newId } from "../ids.js";
import type { Q } from "./db.js";
import { iso, parseJsonObject } from "./json.js";
import { releaseLeasesOf } from "./leases.js";
import { toPage } from "./pagination.js";
import { prepare, prepareRow } from "./prepared.js";
import type { DeviceRow } from "./schema.js";

const deviceByBinding = prepare(2, (q, licenseId: string, bindingKey: string) =>
  q.selectFrom("devices").selectAll().where("license_id", "=", licenseId).where("binding_key", "=", bindingKey),
);

export function findDeviceByBinding(q: Q, licenseId: string, bindingKey: string): Promise<DeviceRow | undefined> {
  return deviceByBinding.first(q, licenseId, bindingKey);
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

/**
 * A binding request's device details. With `stored` (a device already known), a detail the request
 * leaves out keeps its stored value: a call that sends only its fingerprint (a consume, say) does not
 * erase the hostname or OS an earlier activation recorded. The address is always the request's own.
 */
function bindingColumns(b: Binding, ip: string | null, stored?: DeviceRow) {
  const r = b.request;
  return {
    fingerprint: r.fingerprint ?? stored?.fingerprint ?? null,
    hostname: r.hostname ?? stored?.hostname ?? null,
    os: r.os ?? stored?.os ?? null,
    ip_address: ip,
    is_vm: r.is_vm === undefined ? (stored?.is_vm ?? 0) : r.is_vm ? 1 : 0,
    is_container: b.kind === "container" ? 1 : 0,
    container_id: r.container_id ?? stored?.container_id ?? null,
    cluster_id: r.cluster_id ?? stored?.cluster_id ?? null,
    namespace: r.namespace ?? stored?.namespace ?? null,
    pod_name: r.pod_name ?? stored?.pod_name ?? null,
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
  await insertDevice.execute(q, row);
  return row;
}

const DEVICE_COLUMNS = [
  "id", "license_id", "binding_kind", "binding_key", "fingerprint", "hostname", "os", "ip_address", "is_vm", "is_container",
  "container_id", "cluster_id", "namespace", "pod_name", "status", "first_seen_at", "last_seen_at", "last_validated_at",
  "metadata", "created_at", "updated_at",
] as const;
const insertDevice = prepareRow<DeviceRow, never, typeof DEVICE_COLUMNS>(DEVICE_COLUMNS, (q, row) => q.insertInto("devices").values(row));

/** Makes a known device active again (after deactivate or reset) with the details the binding sends. */
export async function reactivateDevice(q: Q, device: DeviceRow, b: Binding, ip: string | null, now: number, validated: boolean): Promise<DeviceRow> {
  const cols = bindingColumns(b, ip, device);
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

/** Whether a binding request would leave an active device's stored details (and address) as they are. */
export function bindingUnchanged(device: DeviceRow, b: Binding, ip: string | null): boolean {
  const cols = bindingColumns(b, ip, device);
  for (const k of Object.keys(cols) as (keyof typeof cols)[]) if (cols[k] !== device[k]) return false;
  return true;
}

/** Refreshes the details of an already active binding (explicit activation of a known device). */
export async function refreshDevice(q: Q, device: DeviceRow, b: Binding, ip: string | null, now: number): Promise<void> {
  await refreshRow.execute(q, { id: device.id, ...bindingColumns(b, ip, device), last_seen_at: now, updated_at: now });
}

type RefreshedDevice = Pick<DeviceRow, "id" | "last_seen_at" | "updated_at"> & ReturnType<typeof bindingColumns>;
const REFRESH_COLUMNS = [
  "id", "fingerprint", "hostname", "os", "ip_address", "is_vm", "is_container", "container_id", "cluster_id", "namespace", "pod_name",
  "last_seen_at", "updated_at",
] as const;
const refreshRow = prepareRow<RefreshedDevice, never, typeof REFRESH_COLUMNS>(REFRESH_COLUMNS, (q, { id, ...set }) =>
  q.updateTable("devices").set(set).where("id", "=", id),
);

export type DeviceStatus = DeviceRow["status"];
export const DEVICE_STATUSES = ["active", "deactivated", "blacklisted", "reset", "expired"] as const satisfies readonly DeviceStatus[];

export interface DeviceView {
  id: string;
  license_id: string;
  binding_kind: DeviceRow["binding_kind"];
  binding_key: string;
  fingerprint?: string;
  hostname?: string;
  os?: string;
  ip_address?: string;
  is_vm: boolean;
  is_container: boolean;
  container_id?: string;
  cluster_id?: string;
  namespace?: string;
  pod_name?: string;
  status: DeviceStatus;
  first_seen_at: string;
  last_seen_at: string;
  last_validated_at?: string;
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

const optional = <K extends string>(key: K, v: string | null) => (v === null ? {} : ({ [key]: v } as { [P in K]: string }));

/** The contract's Device: optional fields are omitted when unset, never null. */
export function deviceView(r: DeviceRow): DeviceView {
  return {
    id: r.id,
    license_id: r.license_id,
    binding_kind: r.binding_kind,
    binding_key: r.binding_key,
    ...optional("fingerprint", r.fingerprint),
    ...optional("hostname", r.hostname),
    ...optional("os", r.os),
    ...optional("ip_address", r.ip_address),
    is_vm: r.is_vm === 1,
    is_container: r.is_container === 1,
    ...optional("container_id", r.container_id),
    ...optional("cluster_id", r.cluster_id),
    ...optional("namespace", r.namespace),
    ...optional("pod_name", r.pod_name),
    status: r.status,
    first_seen_at: iso(r.first_seen_at),
    last_seen_at: iso(r.last_seen_at),
    ...optional("last_validated_at", r.last_validated_at === null ? null : iso(r.last_validated_at)),
    metadata: parseJsonObject(r.metadata),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

/** A license's devices, newest first (D8). */
export async function listLicenseDevices(q: Q, licenseId: string, limit: number, before: string | null) {
  let qb = q.selectFrom("devices").selectAll().where("license_id", "=", licenseId).orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}

/** The device only when it belongs to that license. */
export function findLicenseDevice(q: Q, licenseId: string, deviceId: string): Promise<DeviceRow | undefined> {
  return q.selectFrom("devices").selectAll().where("id", "=", deviceId).where("license_id", "=", licenseId).executeTakeFirst();
}

/** Moves one device to `status`; returns the updated row. */
export async function setDeviceStatus(q: Q, device: DeviceRow, status: DeviceStatus, now: number): Promise<DeviceRow> {
  await q.updateTable("devices").set({ status, updated_at: now }).where("id", "=", device.id).execute();
  if (status !== "active") await releaseLeasesOf(q, device.license_id, device.id, now);
  return { ...device, status, updated_at: now };
}

/** Moves every active device of a license to `status` (releasing their seats); returns how many. */
export async function releaseActiveDevices(q: Q, licenseId: string, status: Exclude<DeviceStatus, "active">, now: number): Promise<number> {
  const res = await q
    .updateTable("devices")
    .set({ status, updated_at: now })
    .where("license_id", "=", licenseId)
    .where("status", "=", "active")
    .executeTakeFirst();
  await releaseLeasesOf(q, licenseId, null, now);
  return Number(res.numUpdatedRows);
}
