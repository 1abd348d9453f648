// Webhook delivery outbox (D6), frozen report exports, and per-minute request statistics for the
// operations view. Same conventions as 0001: epoch-millisecond bigints, JSON as text.
import type { Kysely } from "kysely";
import type { Engine } from "../db.js";

export async function up(db: Kysely<unknown>, _engine: Engine): Promise<void> {
  const ms = "bigint" as const;

  // One row per (event, subscribed endpoint), inserted in the event's own transaction by
  // recordEvent, so a delivery exists exactly when its event committed. status: pending → delivered
  // | failed. A worker claims a pending row by setting claimed_until (FOR UPDATE SKIP LOCKED on
  // PostgreSQL); a claim that outlives its worker simply lapses and the row is taken again.
  await db.schema
    .createTable("webhook_deliveries")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("endpoint_id", "text", (c) => c.notNull().references("webhook_endpoints.id").onDelete("cascade"))
    .addColumn("event_sequence", ms, (c) => c.notNull())
    .addColumn("event_type", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("next_attempt_at", ms, (c) => c.notNull())
    .addColumn("claimed_until", ms)
    .addColumn("last_attempt_at", ms)
    .addColumn("last_status_code", "integer")
    .addColumn("last_error", "text")
    .addColumn("last_response_body", "text")
    .addColumn("delivered_at", ms)
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex("webhook_deliveries_due").on("webhook_deliveries").columns(["status", "next_attempt_at"]).execute();
  await db.schema.createIndex("webhook_deliveries_endpoint").on("webhook_deliveries").columns(["endpoint_id", "created_at"]).execute();

  // A frozen export: the snapshot is taken once (canonical JSON, digest = its SHA-256) and the
  // artifact rendered from it once (base64 bytes, artifact_digest = SHA-256 of those bytes).
  await db.schema
    .createTable("report_exports")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("report_kind", "text", (c) => c.notNull())
    .addColumn("format", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("filters", "text", (c) => c.notNull())
    .addColumn("snapshot", "text")
    .addColumn("digest", "text")
    .addColumn("artifact", "text")
    .addColumn("artifact_digest", "text")
    .addColumn("content_type", "text", (c) => c.notNull())
    .addColumn("error", "text")
    .addColumn("created_by", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex("report_exports_created").on("report_exports").columns(["created_at"]).execute();

  // Request counts per UTC minute, surface (management | runtime | system), operation, status,
  // error code ('' on success) and latency bucket (index into a fixed bucket list), added up by a
  // batched flush from every process, so the operations view sees the whole cluster.
  await db.schema
    .createTable("ops_request_minutes")
    .addColumn("minute_start", ms, (c) => c.notNull())
    .addColumn("surface", "text", (c) => c.notNull())
    .addColumn("operation", "text", (c) => c.notNull())
    .addColumn("status", "integer", (c) => c.notNull())
    .addColumn("code", "text", (c) => c.notNull())
    .addColumn("latency_bucket", "integer", (c) => c.notNull())
    .addColumn("count", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("ops_request_minutes_pk", ["minute_start", "surface", "operation", "status", "code", "latency_bucket"])
    .execute();

  // Reporting reads filter consumption by time.
  await db.schema.createIndex("consumption_events_created").on("consumption_events").columns(["created_at"]).execute();
  await db.schema.createIndex("audit_events_created").on("audit_events").columns(["created_at"]).execute();
}
