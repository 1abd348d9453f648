// The rest of the management surface: product versions, features, subscriptions, orders, custom
// fields, license feature assignments, webhook endpoints, API-key revocation. Same conventions as
// 0001: epoch-ms bigint timestamps, 0/1 booleans, JSON as text.
import type { Kysely } from "kysely";
import type { Engine } from "../db.js";

export async function up(db: Kysely<unknown>, _engine: Engine): Promise<void> {
  const ms = "bigint" as const;

  await db.schema.alterTable("api_keys").addColumn("revoked_at", ms).execute();

  await db.schema
    .createTable("product_versions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("product_id", "text", (c) => c.notNull().references("products.id"))
    .addColumn("version", "text", (c) => c.notNull())
    .addColumn("released_at", ms, (c) => c.notNull())
    .addColumn("metadata", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .addUniqueConstraint("product_versions_product_version", ["product_id", "version"])
    .execute();

  await db.schema
    .createTable("features")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("product_id", "text", (c) => c.notNull().references("products.id"))
    .addColumn("code", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("metadata", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .addUniqueConstraint("features_product_code", ["product_id", "code"])
    .execute();

  await db.schema
    .createTable("subscriptions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("product_id", "text", (c) => c.notNull().references("products.id"))
    .addColumn("customer_id", "text", (c) => c.references("customers.id"))
    .addColumn("external_system", "text", (c) => c.notNull())
    .addColumn("external_id", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("current_period_start", ms, (c) => c.notNull())
    .addColumn("current_period_end", ms, (c) => c.notNull())
    .addColumn("cancel_at_period_end", "integer", (c) => c.notNull())
    .addColumn("canceled_at", ms)
    .addColumn("metadata", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .addUniqueConstraint("subscriptions_external", ["product_id", "external_system", "external_id"])
    .execute();

  await db.schema
    .createTable("orders")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("product_id", "text", (c) => c.notNull().references("products.id"))
    .addColumn("customer_id", "text", (c) => c.references("customers.id"))
    .addColumn("subscription_id", "text", (c) => c.references("subscriptions.id"))
    .addColumn("external_system", "text", (c) => c.notNull())
    .addColumn("external_id", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("period_start", ms)
    .addColumn("period_end", ms)
    .addColumn("metadata", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .addUniqueConstraint("orders_external", ["product_id", "external_system", "external_id"])
    .execute();

  await db.schema
    .createTable("custom_field_definitions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("product_id", "text", (c) => c.notNull().references("products.id"))
    .addColumn("resource_type", "text", (c) => c.notNull())
    .addColumn("code", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("value_type", "text", (c) => c.notNull())
    .addColumn("is_required", "integer", (c) => c.notNull())
    .addColumn("enum_options", "text", (c) => c.notNull())
    .addColumn("metadata", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .addUniqueConstraint("custom_field_definitions_code", ["product_id", "resource_type", "code"])
    .execute();

  // One typed column is set per row, the one matching the definition's value_type.
  await db.schema
    .createTable("custom_field_values")
    .addColumn("definition_id", "text", (c) => c.notNull().references("custom_field_definitions.id"))
    .addColumn("resource_id", "text", (c) => c.notNull())
    .addColumn("string_value", "text")
    .addColumn("integer_value", ms)
    .addColumn("boolean_value", "integer")
    .addColumn("datetime_value", ms)
    .addColumn("enum_value", "text")
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .addPrimaryKeyConstraint("custom_field_values_pk", ["definition_id", "resource_id"])
    .execute();
  await db.schema.createIndex("custom_field_values_resource").on("custom_field_values").columns(["resource_id"]).execute();

  await db.schema
    .createTable("license_features")
    .addColumn("license_id", "text", (c) => c.notNull().references("licenses.id"))
    .addColumn("feature_id", "text", (c) => c.notNull().references("features.id"))
    .addColumn("enabled", "integer", (c) => c.notNull())
    .addColumn("max_consumptions", ms)
    .addColumn("total_consumptions", ms, (c) => c.notNull())
    .addColumn("expires_at", ms)
    .addColumn("metadata", "text", (c) => c.notNull())
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .addPrimaryKeyConstraint("license_features_pk", ["license_id", "feature_id"])
    .execute();
  await db.schema.createIndex("license_features_feature").on("license_features").columns(["feature_id"]).execute();

  await db.schema
    .createTable("webhook_endpoints")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("url", "text", (c) => c.notNull())
    .addColumn("secret_enc", "text", (c) => c.notNull())
    .addColumn("secret_prefix", "text", (c) => c.notNull())
    .addColumn("event_types", "text", (c) => c.notNull())
    .addColumn("is_active", "integer", (c) => c.notNull())
    .addColumn("last_delivery_at", ms)
    .addColumn("created_at", ms, (c) => c.notNull())
    .addColumn("updated_at", ms, (c) => c.notNull())
    .execute();

  await db.schema.createIndex("licenses_order").on("licenses").columns(["order_id", "id"]).execute();
  await db.schema.createIndex("licenses_subscription").on("licenses").columns(["subscription_id", "id"]).execute();
  await db.schema.createIndex("devices_license").on("devices").columns(["license_id", "id"]).execute();
  await db.schema.createIndex("audit_events_type").on("audit_events").columns(["event_type", "sequence"]).execute();
  await db.schema.createIndex("audit_events_actor").on("audit_events").columns(["actor_type", "sequence"]).execute();
}
