// The rest of the runtime surface: floating leases, metered consumption (deduplicated by the
// client's event_id), D12 deactivation limits on policies, and rate-limit buckets shared by the
// processes of one PostgreSQL deployment. Same conventions as 0001.
import type { Kysely } from "kysely";
import type { Engine } from "../db.js";

export async function up(db: Kysely<unknown>, _engine: Engine): Promise<void> {
  const ms = "bigint" as const;

  // D12: 0 = no limit on deactivations.
  await db.schema.alterTable("policies").addColumn("max_deactivations", "integer", (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable("policies").addColumn("deactivation_window_days", "integer", (c) => c.notNull().defaultTo(30)).execute();

  // A lease counts against max_floating_users while status = 'active' and expires_at > now; the
  // token (`llt_…`) is stored only as its keyed hash.
  await db.schema
    .createTable("floating_leases")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("license_id", "text", (c) => c.notNull().references("licenses.id"))
    .addColumn("device_id", "text", (c) => c.notNull().references("devices.id"))
    .addColumn("token_hash", "text", (c) => c.notNull().unique())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("expires_at", ms, (c) => c.notNull())
    .addColumn("last_heartbeat_at", ms)
    .addColumn("ended_at", ms)
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex("floating_leases_license").on("floating_leases").columns(["license_id", "status", "expires_at"]).execute();
  await db.schema.createIndex("floating_leases_expiry").on("floating_leases").columns(["status", "expires_at"]).execute();

  // One row per accepted consume; the primary key makes a repeated event_id count once, and the
  // stored answer lets a repeat answer exactly as the first did.
  await db.schema
    .createTable("consumption_events")
    .addColumn("license_id", "text", (c) => c.notNull().references("licenses.id"))
    .addColumn("event_id", "text", (c) => c.notNull())
    .addColumn("feature_id", "text", (c) => c.notNull().references("features.id"))
    .addColumn("device_id", "text", (c) => c.references("devices.id"))
    .addColumn("amount", ms, (c) => c.notNull())
    .addColumn("response_status", "integer", (c) => c.notNull())
    .addColumn("response_body", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addPrimaryKeyConstraint("consumption_events_pk", ["license_id", "event_id"])
    .execute();

  // Token buckets (D10) when limits are shared through the database.
  await db.schema
    .createTable("rate_limit_buckets")
    .addColumn("bucket", "text", (c) => c.primaryKey())
    .addColumn("tokens", "double precision", (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .execute();

  await db.schema.createIndex("audit_events_resource_type").on("audit_events").columns(["resource_id", "event_type", "created_at"]).execute();
}
