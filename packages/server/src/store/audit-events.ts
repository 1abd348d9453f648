// The audit feed (D7): one row per successful write or runtime state change, written in the same
// transaction as the change. `sequence` is monotonic per database.
import type { EventType } from "../domain/event-types.js";
import type { Insertable, Selectable } from "kysely";
import type { Q } from "./db.js";
import { newId } from "../ids.js";
import { iso, parseJsonObject } from "./json.js";
import { prepare, prepareRow } from "./prepared.js";
import type { AuditEventsTable } from "./schema.js";

export type AuditEventRow = Selectable<AuditEventsTable>;

export interface EventInput {
  event_type: EventType;
  actor_type: AuditEventsTable["actor_type"];
  actor_id: string;
  resource_type: string;
  resource_id?: string | null;
  metadata?: Record<string, unknown>;
  ip_address?: string | null;
  request_id?: string | null;
  created_at: number;
}

type EventRow = Omit<Insertable<AuditEventsTable>, "sequence">;
const EVENT_COLUMNS = ["event_type", "actor_type", "actor_id", "resource_type", "resource_id", "metadata", "ip_address", "request_id", "created_at"] as const;
const insertEvent = prepareRow<Required<EventRow>, { sequence: number | string }, typeof EVENT_COLUMNS>(EVENT_COLUMNS, (q, row) =>
  q.insertInto("audit_events").values(row).returning("sequence"),
);
const activeEndpoints = prepare(0, (q) => q.selectFrom("webhook_endpoints").select(["id", "event_types"]).where("is_active", "=", 1));

export async function recordEvent(q: Q, e: EventInput): Promise<void> {
  const inserted = await insertEvent.one(q, {
    event_type: e.event_type,
    actor_type: e.actor_type,
    actor_id: e.actor_id,
    resource_type: e.resource_type,
    resource_id: e.resource_id ?? null,
    metadata: JSON.stringify(e.metadata ?? {}),
    ip_address: e.ip_address ?? null,
    request_id: e.request_id ?? null,
    created_at: e.created_at,
  });
  await enqueueWebhookDeliveries(q, Number(inserted.sequence), e.event_type, e.created_at);
}

/**
 * The webhook outbox (D6): in the event's own transaction, one pending delivery per active endpoint
 * subscribed to this event type (`[]` = every type). No endpoints, no rows; the event commits or
 * rolls back together with its deliveries, so none is lost and none is sent for a write that failed.
 */
async function enqueueWebhookDeliveries(q: Q, sequence: number, eventType: string, now: number): Promise<void> {
  const endpoints = await activeEndpoints.execute(q);
  const due = endpoints.filter((ep) => subscribes(ep.event_types, eventType));
  if (due.length === 0) return;
  await q
    .insertInto("webhook_deliveries")
    .values(
      due.map((ep) => ({
        id: newId("whd", now),
        endpoint_id: ep.id,
        event_sequence: sequence,
        event_type: eventType,
        status: "pending" as const,
        next_attempt_at: now,
        created_at: now,
        updated_at: now,
      })),
    )
    .execute();
}

/** Whether an endpoint's stored `event_types` (JSON array; `[]` = all) includes `eventType`. */
export function subscribes(eventTypesJson: string, eventType: string): boolean {
  let types: unknown;
  try {
    types = JSON.parse(eventTypesJson);
  } catch {
    return false;
  }
  return Array.isArray(types) && (types.length === 0 || types.includes(eventType));
}

/** The Event wire shape of GET /api/v1/events. */
export interface EventView {
  sequence: number;
  event_type: string;
  actor_type: AuditEventsTable["actor_type"];
  actor_id: string;
  resource_type: string;
  resource_id?: string;
  metadata: Record<string, unknown>;
  ip_address?: string;
  request_id?: string;
  created_at: string;
}

export const REDACTED = "[redacted]";

/** Key names whose values are secrets wherever they appear in metadata. */
const SECRET_KEYS = new Set([
  "key",
  "token",
  "secret",
  "password",
  "passphrase",
  "authorization",
  "credential",
  "credentials",
  "fingerprint",
  "license_key",
  "api_key",
  "private_key",
  "signing_key",
  "lease_token",
  "access_token",
  "refresh_token",
  "client_secret",
  "webhook_secret",
  "master_key",
]);
const SECRET_SUFFIXES = ["_token", "_secret", "_password", "_passphrase", "_key", "_credential"];
/** Names that describe a secret without revealing it (a display prefix, a hash, an id, a time). */
const SAFE_SUFFIXES = ["_prefix", "_last4", "_hash", "_id", "_ids", "_at", "_count", "_kid", "_generated", "_rotated"];
/** Values that are whole credentials of this server, whatever key holds them. */
const CREDENTIAL_VALUE = /^(lkm_[A-Za-z0-9]{20,}|lsk_[0-9A-Za-z-]{26,}|llt_[A-Za-z0-9]{16,}|whsec_[\x21-\x7E]{16,})$/;

function secretKeyName(name: string): boolean {
  const k = name.toLowerCase();
  if (SAFE_SUFFIXES.some((s) => k.endsWith(s))) return false;
  return SECRET_KEYS.has(k) || SECRET_SUFFIXES.some((s) => k.endsWith(s));
}

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === "string") return CREDENTIAL_VALUE.test(value.trim()) ? REDACTED : value;
  if (depth > 8 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = secretKeyName(k) && v !== null ? REDACTED : redactValue(v, depth + 1);
  return out;
}

/**
 * A second line of defence on output (writers already keep secrets out of metadata): values under
 * secret-looking keys (token, secret, password, key, license_key, raw fingerprint, …) and any value
 * that is a whole credential of this server are replaced by "[redacted]", at any depth.
 */
export function redactMetadata(metadata: Record<string, unknown>): Record<string, unknown> {
  return redactValue(metadata, 0) as Record<string, unknown>;
}

export function eventView(r: AuditEventRow): EventView {
  return {
    sequence: Number(r.sequence),
    event_type: r.event_type,
    actor_type: r.actor_type,
    actor_id: r.actor_id,
    resource_type: r.resource_type,
    ...(r.resource_id !== null ? { resource_id: r.resource_id } : {}),
    metadata: redactMetadata(parseJsonObject(r.metadata)),
    ...(r.ip_address !== null ? { ip_address: r.ip_address } : {}),
    ...(r.request_id !== null ? { request_id: r.request_id } : {}),
    created_at: iso(r.created_at),
  };
}

export interface EventFilters {
  event_type?: string;
  resource_type?: string;
  resource_id?: string;
  actor_type?: AuditEventsTable["actor_type"];
}

/** Newest first (sequence descending); `before` is the sequence the page starts below. */
export async function listEvents(q: Q, filters: EventFilters, limit: number, before: number | null): Promise<{ rows: AuditEventRow[]; nextCursor: number | null }> {
  let qb = q.selectFrom("audit_events").selectAll().orderBy("sequence", "desc").limit(limit + 1);
  if (before !== null) qb = qb.where("sequence", "<", before);
  if (filters.event_type !== undefined) qb = qb.where("event_type", "=", filters.event_type);
  if (filters.resource_type !== undefined) qb = qb.where("resource_type", "=", filters.resource_type);
  if (filters.resource_id !== undefined) qb = qb.where("resource_id", "=", filters.resource_id);
  if (filters.actor_type !== undefined) qb = qb.where("actor_type", "=", filters.actor_type);
  const rows = await qb.execute();
  if (rows.length <= limit) return { rows, nextCursor: null };
  const page = rows.slice(0, limit);
  return { rows: page, nextCursor: Number(page[page.length - 1]!.sequence) };
}
