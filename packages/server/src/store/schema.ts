// The database schema as one Kysely interface. Both engines store the same shapes:
// timestamps as integer epoch milliseconds, booleans as 0/1 integers, JSON as text,
// so every query behaves identically on SQLite and PostgreSQL.
import type { Generated, Insertable, Selectable, Updateable } from "kysely";

type Bool = number; // 0 | 1
type Millis = number;

export interface SettingsTable {
  key: string;
  value: string;
  updated_at: Millis;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  key_prefix: string;
  token_hash: string;
  scopes: string; // JSON array
  allowed_cidrs: string; // JSON array
  is_active: Bool;
  expires_at: Millis | null;
  last_used_at: Millis | null;
  /** Set by DELETE /api-keys/{id}; a revoked key never authenticates again. */
  revoked_at: Millis | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface SigningKeysTable {
  kid: string;
  algorithm: string;
  public_key: string; // base64 raw 32 bytes
  private_key_enc: string; // base64(nonce ‖ ciphertext ‖ tag), AAD = kid
  status: "active" | "retired";
  created_at: Millis;
  retired_at: Millis | null;
}

export interface ProductsTable {
  id: string;
  name: string;
  code: string;
  metadata: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface PoliciesTable {
  id: string;
  product_id: string;
  name: string;
  code: string;
  license_type: string;
  max_activations: number;
  max_floating_users: number;
  max_container_instances: number;
  floating_timeout_minutes: number;
  grace_period_days: number;
  validation_interval_minutes: number;
  require_heartbeat: Bool;
  allow_offline_activation: Bool;
  offline_grace_days: number;
  allow_vm: Bool;
  allow_container: Bool;
  max_transfers: number;
  duration_days: number | null;
  /** D12: deactivations allowed per window; 0 = unlimited. */
  max_deactivations: Generated<number>;
  deactivation_window_days: Generated<number>;
  metadata: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface CustomersTable {
  id: string;
  name: string;
  code: string;
  email: string | null;
  metadata: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface LicensesTable {
  id: string;
  product_id: string;
  policy_id: string;
  customer_id: string | null;
  order_id: string | null;
  subscription_id: string | null;
  key_hash: string;
  key_prefix: string;
  key_last4: string;
  /** Stored state; `expired` and `grace_period` are computed from the clock (D2). */
  state: "active" | "suspended" | "revoked";
  customer_email: string | null;
  customer_name: string | null;
  active_device_count: number;
  times_activated: number;
  times_transferred: number;
  total_consumptions: number;
  entitlement_version: number;
  starts_at: Millis | null;
  expires_at: Millis | null;
  maintenance_expires_at: Millis | null;
  metadata: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface DevicesTable {
  id: string;
  license_id: string;
  binding_kind: "hardware" | "container";
  binding_key: string;
  fingerprint: string | null;
  hostname: string | null;
  os: string | null;
  ip_address: string | null;
  is_vm: Bool;
  is_container: Bool;
  container_id: string | null;
  cluster_id: string | null;
  namespace: string | null;
  pod_name: string | null;
  status: "active" | "deactivated" | "blacklisted" | "reset" | "expired";
  first_seen_at: Millis;
  last_seen_at: Millis;
  last_validated_at: Millis | null;
  metadata: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface IdempotencyRecordsTable {
  /** SHA-256 hex of credential id, method, path and key. */
  id: string;
  credential_id: string;
  request_hash: string;
  state: "in_progress" | "completed";
  response_status: number | null;
  response_body: string | null;
  created_at: Millis;
  /** In progress: when a crashed holder's claim may be taken over. Completed: when it is purged. */
  expires_at: Millis;
}

export interface AuditEventsTable {
  sequence: Generated<number>;
  event_type: string;
  actor_type: "api_key" | "license" | "oidc_subject" | "system";
  actor_id: string;
  resource_type: string;
  resource_id: string | null;
  metadata: string;
  ip_address: string | null;
  request_id: string | null;
  created_at: Millis;
}

export interface ProductVersionsTable {
  id: string;
  product_id: string;
  version: string;
  released_at: Millis;
  metadata: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface FeaturesTable {
  id: string;
  product_id: string;
  code: string;
  name: string;
  metadata: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface SubscriptionsTable {
  id: string;
  product_id: string;
  customer_id: string | null;
  external_system: string;
  external_id: string;
  status: "trialing" | "active" | "past_due" | "paused" | "canceled";
  current_period_start: Millis;
  current_period_end: Millis;
  cancel_at_period_end: Bool;
  canceled_at: Millis | null;
  metadata: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface OrdersTable {
  id: string;
  product_id: string;
  customer_id: string | null;
  subscription_id: string | null;
  external_system: string;
  external_id: string;
  status: "pending" | "paid" | "fulfilled" | "canceled" | "refunded";
  period_start: Millis | null;
  period_end: Millis | null;
  metadata: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface CustomFieldDefinitionsTable {
  id: string;
  product_id: string;
  resource_type: "license" | "customer";
  code: string;
  name: string;
  value_type: "string" | "integer" | "boolean" | "datetime" | "enum";
  is_required: Bool;
  enum_options: string; // JSON array of strings
  metadata: string;
  created_at: Millis;
  updated_at: Millis;
}

/** One typed column is set, the one matching the definition's value_type. */
export interface CustomFieldValuesTable {
  definition_id: string;
  resource_id: string;
  string_value: string | null;
  integer_value: number | null;
  boolean_value: Bool | null;
  datetime_value: Millis | null;
  enum_value: string | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface LicenseFeaturesTable {
  license_id: string;
  feature_id: string;
  enabled: Bool;
  max_consumptions: number | null;
  total_consumptions: number;
  expires_at: Millis | null;
  metadata: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface WebhookEndpointsTable {
  id: string;
  name: string;
  url: string;
  /** base64(nonce ‖ ciphertext ‖ tag) under the master key; the secret must be recoverable to sign. */
  secret_enc: string;
  secret_prefix: string;
  event_types: string; // JSON array; [] = all events
  is_active: Bool;
  last_delivery_at: Millis | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface FloatingLeasesTable {
  id: string;
  license_id: string;
  device_id: string;
  token_hash: string;
  status: "active" | "checked_in" | "expired" | "released";
  expires_at: Millis;
  last_heartbeat_at: Millis | null;
  ended_at: Millis | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface ConsumptionEventsTable {
  license_id: string;
  event_id: string;
  feature_id: string;
  device_id: string | null;
  amount: number;
  response_status: number;
  response_body: string;
  created_at: Millis;
}

export interface RateLimitBucketsTable {
  bucket: string;
  tokens: number;
  updated_at: Millis;
}

/** Successful runtime calls per license, UTC hour and operation (D7), added up by the batched flush. */
export interface RuntimeCallCountsTable {
  license_id: string;
  /** Epoch ms of the start of the UTC hour. */
  hour_start: Millis;
  operation: "validate" | "check";
  calls: number;
}

/** The webhook outbox (D6): one row per (event, subscribed endpoint), written with the event. */
export interface WebhookDeliveriesTable {
  id: string;
  endpoint_id: string;
  event_sequence: number;
  event_type: string;
  status: "pending" | "delivered" | "failed";
  attempts: Generated<number>;
  next_attempt_at: Millis;
  /** A worker's claim; past it, the row may be claimed again. */
  claimed_until: Millis | null;
  last_attempt_at: Millis | null;
  last_status_code: number | null;
  last_error: string | null;
  /** The first 2 KB of the last response body. */
  last_response_body: string | null;
  delivered_at: Millis | null;
  created_at: Millis;
  updated_at: Millis;
}

/** A frozen report export (NOTES §20). */
export interface ReportExportsTable {
  id: string;
  report_kind: string;
  format: "json" | "csv" | "pdf";
  status: "pending" | "ready" | "failed";
  filters: string; // JSON object
  /** Canonical JSON of the report as taken once; `digest` is its SHA-256 (hex). */
  snapshot: string | null;
  digest: string | null;
  /** base64 of the bytes served; `artifact_digest` is their SHA-256 (hex). */
  artifact: string | null;
  artifact_digest: string | null;
  content_type: string;
  error: string | null;
  created_by: string;
  created_at: Millis;
  updated_at: Millis;
}

/** Request counts per UTC minute for the operations view, added up by a batched flush. */
export interface OpsRequestMinutesTable {
  minute_start: Millis;
  surface: "management" | "runtime" | "system";
  operation: string;
  status: number;
  /** Error code, '' on success. */
  code: string;
  /** Index into the fixed latency bucket list. */
  latency_bucket: number;
  count: number;
}

/** The runtime change feed, written by triggers (migration 0006); scope 'license' | 'all'. */
export interface RuntimeChangesTable {
  seq: Generated<number>;
  scope: string;
  license_id: string | null;
  created_at: number;
}

export interface Database {
  settings: SettingsTable;
  api_keys: ApiKeysTable;
  signing_keys: SigningKeysTable;
  products: ProductsTable;
  policies: PoliciesTable;
  customers: CustomersTable;
  licenses: LicensesTable;
  devices: DevicesTable;
  idempotency_records: IdempotencyRecordsTable;
  audit_events: AuditEventsTable;
  product_versions: ProductVersionsTable;
  features: FeaturesTable;
  subscriptions: SubscriptionsTable;
  orders: OrdersTable;
  custom_field_definitions: CustomFieldDefinitionsTable;
  custom_field_values: CustomFieldValuesTable;
  license_features: LicenseFeaturesTable;
  webhook_endpoints: WebhookEndpointsTable;
  floating_leases: FloatingLeasesTable;
  consumption_events: ConsumptionEventsTable;
  rate_limit_buckets: RateLimitBucketsTable;
  runtime_call_counts: RuntimeCallCountsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  report_exports: ReportExportsTable;
  ops_request_minutes: OpsRequestMinutesTable;
  runtime_changes: RuntimeChangesTable;
}

export type ApiKeyRow = Selectable<ApiKeysTable>;
export type SigningKeyRow = Selectable<SigningKeysTable>;
export type ProductRow = Selectable<ProductsTable>;
export type PolicyRow = Selectable<PoliciesTable>;
export type NewPolicy = Insertable<PoliciesTable>;
export type PolicyUpdate = Updateable<PoliciesTable>;
export type CustomerRow = Selectable<CustomersTable>;
export type LicenseRow = Selectable<LicensesTable>;
export type DeviceRow = Selectable<DevicesTable>;
export type IdempotencyRow = Selectable<IdempotencyRecordsTable>;
export type NewAuditEvent = Insertable<AuditEventsTable>;
export type ProductVersionRow = Selectable<ProductVersionsTable>;
export type FeatureRow = Selectable<FeaturesTable>;
export type SubscriptionRow = Selectable<SubscriptionsTable>;
export type OrderRow = Selectable<OrdersTable>;
export type CustomFieldDefinitionRow = Selectable<CustomFieldDefinitionsTable>;
export type CustomFieldValueRow = Selectable<CustomFieldValuesTable>;
export type LicenseFeatureRow = Selectable<LicenseFeaturesTable>;
export type WebhookEndpointRow = Selectable<WebhookEndpointsTable>;
export type FloatingLeaseRow = Selectable<FloatingLeasesTable>;
export type ConsumptionEventRow = Selectable<ConsumptionEventsTable>;
export type RuntimeCallCountRow = Selectable<RuntimeCallCountsTable>;
