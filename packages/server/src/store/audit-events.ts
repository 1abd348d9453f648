// The audit feed (D7): one row per successful write or runtime state change, written in the same
// transaction as the change. `sequence` is monotonic per database.
import type { EventType } from "../domain/event-types.js";
import type { Q } from "./db.js";
import type { AuditEventsTable } from "./schema.js";

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

export async function recordEvent(q: Q, e: EventInput): Promise<void> {
  await q
    .insertInto("audit_events")
    .values({
      event_type: e.event_type,
      actor_type: e.actor_type,
      actor_id: e.actor_id,
      resource_type: e.resource_type,
      resource_id: e.resource_id ?? null,
      metadata: JSON.stringify(e.metadata ?? {}),
      ip_address: e.ip_address ?? null,
      request_id: e.request_id ?? null,
      created_at: e.created_at,
    })
    .execute();
}
