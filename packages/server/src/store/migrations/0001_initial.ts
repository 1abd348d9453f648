// Initial schema. One definition for both engines; only the auto-increment column differs.
import { type Kysely, sql } from "kysely";
import type { Engine } from "../db.js";

export async function up(db: Kysely<unknown>, engine: Engine): Promise<void> {
  const ms = "bigint" as const;

  await db.schema
    .createTable("settings")
    .addColumn("key", "text", (c) => c.primaryKey())
    .addColumn("value", "text", (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("api_keys")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("key_prefix", "text", (c) => c.notNull())
    .addColumn("token_hash", "text", (c) => c.notNull().unique())
    .addColumn("scopes", "text", (c) => c.notNull())
    .addColumn("allowed_cidrs", "text", (c) => c.notNull())
    .addColumn("is_active", "integer", (c) => c.notNull())
    .addColumn("expires_at", ms)
    .addColumn("last_used_at", ms)
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("signing_keys")
    .addColumn("kid", "text", (c) => c.primaryKey())
    .addColumn("algorithm", "text", (c) => c.notNull())
    .addColumn("public_key", "text", (c) => c.notNull())
    .addColumn("private_key_enc", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("retired_at", ms)
    .execute();
  // At most one active key, even when two processes start on an empty database at once.
  await sql`CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active'`.execute(db);

  await db.schema
    .createTable("products")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("code", "text", (c) => c.notNull().unique())
    .addColumn("metadata", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("policies")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("product_id", "text", (c) => c.notNull().references("products.id"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("code", "text", (c) => c.notNull())
    .addColumn("license_type", "text", (c) => c.notNull())
    .addColumn("max_activations", "integer", (c) => c.notNull())
    .addColumn("max_floating_users", "integer", (c) => c.notNull())
    .addColumn("max_container_instances", "integer", (c) => c.notNull())
    .addColumn("floating_timeout_minutes", "integer", (c) => c.notNull())
    .addColumn("grace_period_days", "integer", (c) => c.notNull())
    .addColumn("validation_interval_minutes", "integer", (c) => c.notNull())
    .addColumn("require_heartbeat", "integer", (c) => c.notNull())
    .addColumn("allow_offline_activation", "integer", (c) => c.notNull())
    .addColumn("offline_grace_days", "integer", (c) => c.notNull())
    .addColumn("allow_vm", "integer", (c) => c.notNull())
    .addColumn("allow_container", "integer", (c) => c.notNull())
    .addColumn("max_transfers", "integer", (c) => c.notNull())
    .addColumn("duration_days", "integer")
    .addColumn("metadata", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .addUniqueConstraint("policies_product_code", ["product_id", "code"])
    .execute();

  await db.schema
    .createTable("customers")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("code", "text", (c) => c.notNull().unique())
    .addColumn("email", "text")
    .addColumn("metadata", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("licenses")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("product_id", "text", (c) => c.notNull().references("products.id"))
    .addColumn("policy_id", "text", (c) => c.notNull().references("policies.id"))
    .addColumn("customer_id", "text", (c) => c.references("customers.id"))
    .addColumn("order_id", "text")
    .addColumn("subscription_id", "text")
    .addColumn("key_hash", "text", (c) => c.notNull().unique())
    .addColumn("key_prefix", "text", (c) => c.notNull())
    .addColumn("key_last4", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("customer_email", "text")
    .addColumn("customer_name", "text")
    .addColumn("active_device_count", "integer", (c) => c.notNull())
    .addColumn("times_activated", "integer", (c) => c.notNull())
    .addColumn("times_transferred", "integer", (c) => c.notNull())
    .addColumn("total_consumptions", ms, (c) => c.notNull())
    .addColumn("entitlement_version", ms, (c) => c.notNull())
    .addColumn("starts_at", ms)
    .addColumn("expires_at", ms)
    .addColumn("maintenance_expires_at", ms)
    .addColumn("metadata", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex("licenses_product").on("licenses").columns(["product_id", "id"]).execute();
  await db.schema.createIndex("licenses_policy").on("licenses").columns(["policy_id", "id"]).execute();
  await db.schema.createIndex("licenses_customer").on("licenses").columns(["customer_id", "id"]).execute();
  await db.schema.createIndex("licenses_expires").on("licenses").columns(["expires_at"]).execute();

  await db.schema
    .createTable("devices")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("license_id", "text", (c) => c.notNull().references("licenses.id"))
    .addColumn("binding_kind", "text", (c) => c.notNull())
    .addColumn("binding_key", "text", (c) => c.notNull())
    .addColumn("fingerprint", "text")
    .addColumn("hostname", "text")
    .addColumn("os", "text")
    .addColumn("ip_address", "text")
    .addColumn("is_vm", "integer", (c) => c.notNull())
    .addColumn("is_container", "integer", (c) => c.notNull())
    .addColumn("container_id", "text")
    .addColumn("cluster_id", "text")
    .addColumn("namespace", "text")
    .addColumn("pod_name", "text")
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("first_seen_at", ms, (c) => c.notNull())
    .addColumn("last_seen_at", ms, (c) => c.notNull())
    .addColumn("last_validated_at", ms)
    .addColumn("metadata", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .addUniqueConstraint("devices_license_binding", ["license_id", "binding_key"])
    .execute();

  await db.schema
    .createTable("idempotency_records")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("credential_id", "text", (c) => c.notNull())
    .addColumn("request_hash", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("response_status", "integer")
    .addColumn("response_body", "text")
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("expires_at", ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex("idempotency_expires").on("idempotency_records").column("expires_at").execute();

  await db.schema
    .createTable("audit_events")
    .addColumn("sequence", engine === "postgres" ? "bigserial" : "integer", (c) =>
      engine === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement(),
    )
    .addColumn("event_type", "text", (c) => c.notNull())
    .addColumn("actor_type", "text", (c) => c.notNull())
    .addColumn("actor_id", "text", (c) => c.notNull())
    .addColumn("resource_type", "text", (c) => c.notNull())
    .addColumn("resource_id", "text")
    .addColumn("metadata", "text", (c) => c.notNull())
    .addColumn("ip_address", "text")
    .addColumn("request_id", "text")
    .addColumn("created_at", ms, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("audit_events_resource")
    .on("audit_events")
    .columns(["resource_type", "resource_id", "sequence"])
    .execute();
}
