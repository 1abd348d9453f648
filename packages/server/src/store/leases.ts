// Floating leases: the queries behind checkout / heartbeat / checkin, the management list and
// release, and the expiry job. Lease tokens are stored only as their keyed hash. A lease counts
// against max_floating_users while status = 'active' AND expires_at > now; seats are counted and
// taken under the license row lock (the caller holds it).
import { type LeaseStatus, leaseStatusAt } from "../domain/floating.js";
import type { Q } from "./db.js";
import { iso } from "./json.js";
import { toPage } from "./pagination.js";
import type { FloatingLeaseRow } from "./schema.js";

export type LeaseRow = FloatingLeaseRow;

/** Leases holding a seat right now. */
export async function countLiveLeases(q: Q, licenseId: string, now: number): Promise<number> {
  const row = await q
    .selectFrom("floating_leases")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("license_id", "=", licenseId)
    .where("status", "=", "active")
    .where("expires_at", ">", now)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export function findLiveLeaseForDevice(q: Q, licenseId: string, deviceId: string, now: number): Promise<LeaseRow | undefined> {
  return q
    .selectFrom("floating_leases")
    .selectAll()
    .where("license_id", "=", licenseId)
    .where("device_id", "=", deviceId)
    .where("status", "=", "active")
    .where("expires_at", ">", now)
    .orderBy("id", "desc")
    .executeTakeFirst();
}

export async function insertLease(q: Q, row: LeaseRow): Promise<void> {
  await q.insertInto("floating_leases").values(row).execute();
}

export function findLeaseByTokenHash(q: Q, licenseId: string, tokenHash: string): Promise<LeaseRow | undefined> {
  return q.selectFrom("floating_leases").selectAll().where("token_hash", "=", tokenHash).where("license_id", "=", licenseId).executeTakeFirst();
}

export function findLicenseLease(q: Q, licenseId: string, leaseId: string): Promise<LeaseRow | undefined> {
  return q.selectFrom("floating_leases").selectAll().where("id", "=", leaseId).where("license_id", "=", licenseId).executeTakeFirst();
}

/**
 * Extends a live lease to `expiresAt` (a heartbeat, or a re-checkout with a new token). Only a lease
 * still live at `now` is extended; returns the updated row, or undefined when it was not live.
 */
export async function extendLease(q: Q, lease: LeaseRow, expiresAt: number, now: number, tokenHash?: string): Promise<LeaseRow | undefined> {
  const res = await q
    .updateTable("floating_leases")
    .set({ expires_at: expiresAt, last_heartbeat_at: now, updated_at: now, ...(tokenHash ? { token_hash: tokenHash } : {}) })
    .where("id", "=", lease.id)
    .where("status", "=", "active")
    .where("expires_at", ">", now)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) return undefined;
  return { ...lease, expires_at: expiresAt, last_heartbeat_at: now, updated_at: now, ...(tokenHash ? { token_hash: tokenHash } : {}) };
}

/** Ends a live lease (checked in or released); undefined when it was no longer live at `now`. */
export async function endLease(q: Q, lease: LeaseRow, status: "checked_in" | "released", now: number): Promise<LeaseRow | undefined> {
  const res = await q
    .updateTable("floating_leases")
    .set({ status, ended_at: now, updated_at: now })
    .where("id", "=", lease.id)
    .where("status", "=", "active")
    .where("expires_at", ">", now)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) return undefined;
  return { ...lease, status, ended_at: now, updated_at: now };
}

/**
 * Ends (status released) the live floating leases of a license, or of one of its devices, whose seat
 * is taken away: revoke, transfer with reset_devices, device reset or blacklist, deactivate. A lease
 * must never outlive the binding that holds it. Returns how many were ended.
 */
export async function releaseLeasesOf(q: Q, licenseId: string, deviceId: string | null, now: number): Promise<number> {
  let qb = q
    .updateTable("floating_leases")
    .set({ status: "released", ended_at: now, updated_at: now })
    .where("license_id", "=", licenseId)
    .where("status", "=", "active")
    .where("expires_at", ">", now);
  if (deviceId !== null) qb = qb.where("device_id", "=", deviceId);
  return Number((await qb.executeTakeFirst()).numUpdatedRows);
}

/**
 * Marks one lease expired if it is still stored as active but past its expiry. Returns true when this
 * call made the change (so exactly one caller audits it).
 */
export async function markLeaseExpired(q: Q, lease: LeaseRow, now: number): Promise<boolean> {
  const res = await q
    .updateTable("floating_leases")
    .set({ status: "expired", ended_at: lease.expires_at, updated_at: now })
    .where("id", "=", lease.id)
    .where("status", "=", "active")
    .where("expires_at", "<=", now)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/**
 * Marks up to `limit` stored-active leases past their expiry as expired, in one statement (rows
 * already marked by a concurrent job or heartbeat are not matched again). Returns the marked rows.
 */
export async function expireDueLeases(q: Q, now: number, limit: number): Promise<LeaseRow[]> {
  return q
    .updateTable("floating_leases")
    .set((eb) => ({ status: "expired", ended_at: eb.ref("expires_at"), updated_at: now }))
    .where("id", "in", (eb) =>
      eb.selectFrom("floating_leases").select("id").where("status", "=", "active").where("expires_at", "<=", now).orderBy("expires_at").limit(limit),
    )
    .where("status", "=", "active")
    .where("expires_at", "<=", now)
    .returningAll()
    .execute();
}

/** A license's leases, newest first (D8), optionally by the status they show now. */
export async function listLicenseLeases(q: Q, licenseId: string, status: LeaseStatus | undefined, now: number, limit: number, before: string | null) {
  let qb = q.selectFrom("floating_leases").selectAll().where("license_id", "=", licenseId).orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  switch (status) {
    case "active":
      qb = qb.where("status", "=", "active").where("expires_at", ">", now);
      break;
    case "expired":
      qb = qb.where((eb) => eb.or([eb("status", "=", "expired"), eb.and([eb("status", "=", "active"), eb("expires_at", "<=", now)])]));
      break;
    case "checked_in":
    case "released":
      qb = qb.where("status", "=", status);
      break;
    case undefined:
      break;
  }
  return toPage(await qb.execute(), limit);
}

/** The management view of a lease. Never the token or its hash. */
export interface LeaseView {
  id: string;
  license_id: string;
  device_id: string;
  status: LeaseStatus;
  expires_at: string;
  last_heartbeat_at?: string;
  ended_at?: string;
  created_at: string;
  updated_at: string;
}

export function leaseView(r: LeaseRow, now: number): LeaseView {
  const status = leaseStatusAt(r, now);
  const endedAt = r.ended_at ?? (status === "expired" ? r.expires_at : null);
  return {
    id: r.id,
    license_id: r.license_id,
    device_id: r.device_id,
    status,
    expires_at: iso(r.expires_at),
    ...(r.last_heartbeat_at !== null ? { last_heartbeat_at: iso(r.last_heartbeat_at) } : {}),
    ...(endedAt !== null ? { ended_at: iso(endedAt) } : {}),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}
