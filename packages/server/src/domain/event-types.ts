// Every audit event type (D7), `<resource>.<action>` in the past tense, with what it records.
// recordEvent only accepts these, and docs/events.md is rendered from this table
// (`npm run docs:events`; a test fails when the two drift).
export const EVENT_TYPES = {
  "api_key.created": "A management API key was created (bootstrap or POST /api-keys).",
  "api_key.revoked": "A management API key was revoked (DELETE /api-keys/{id}); it stops working at once.",
  "api_key.rotated": "A management API key got a new token (POST /api-keys/{id}/rotate); the old token stops working.",
  "custom_field.created": "A product custom-field definition was created.",
  "custom_field.deleted": "A product custom-field definition was deleted.",
  "custom_field.updated": "A product custom-field definition was changed.",
  "custom_field_value.cleared": "A customer or license custom-field value was cleared.",
  "custom_field_value.set": "A customer or license custom-field value was set (metadata.field_code, metadata.resource_type).",
  "customer.created": "A customer was created.",
  "customer.deleted": "A customer was deleted.",
  "customer.updated": "A customer was changed.",
  "device.blacklisted": "A device was blacklisted; its seat is released and it can never be bound again.",
  "device.reset": "A device was reset; its seat is released and it may activate again.",
  "feature.created": "A product feature was created.",
  "floating.checked_in": "A floating lease was checked in by the client; its seat is free.",
  "floating.checked_out": "A floating lease was checked out (metadata.lease_id, lease_expires_at).",
  "floating.expired": "A floating lease passed its timeout without a heartbeat; its seat is free.",
  "floating.limit_exceeded": "A checkout was refused because every floating seat was in use.",
  "floating.released": "An operator released a floating lease (POST /licenses/{id}/leases/{lease_id}/release).",
  "license.activated": "A device or container was bound to a license (metadata.implicit when bound by validate).",
  "license.activation_limit_exceeded": "An activation was refused because the license had no free slot.",
  "license.created": "A license was issued.",
  "license.deactivated": "A device or container binding was released by the client (POST /license/deactivate).",
  "license.deactivation_limit_exceeded": "A deactivation was refused because the policy's max_deactivations in deactivation_window_days was used up (D12).",
  "license.feature_assigned": "A feature was assigned to a license, or its assignment was changed.",
  "license.feature_removed": "A feature assignment was removed from a license.",
  "license.offline_issued": "An offline envelope was issued for a bound device (metadata.offline_expires_at).",
  "license.reinstated": "A suspended license was reinstated.",
  "license.renewed": "A license's expiry was moved (metadata.previous_expires_at, metadata.expires_at).",
  "license.revoked": "A license was revoked permanently; metadata.released_devices counts the seats released.",
  "license.suspended": "A license was suspended.",
  "license.transferred": "A license was transferred to another customer (metadata.reset_devices counts released seats).",
  "license.usage_reset": "A license's consumption counters were reset.",
  "license.validation_denied": "A runtime call was denied (metadata.operation and metadata.code; the activation limit has its own type).",
  "order.created": "An order was created.",
  "order.updated": "An order was changed.",
  "policy.created": "A policy was created.",
  "policy.deleted": "A policy was deleted.",
  "policy.updated": "A policy was changed.",
  "product.created": "A product was created.",
  "product.deleted": "A product was deleted.",
  "product.updated": "A product was changed.",
  "report_export.created": "A frozen report export was taken (metadata.report_kind, format, filters, digest); its snapshot never changes.",
  "product_version.created": "A product version was recorded.",
  "signing_key.rotated": "A new signing key became active and the previous one was retired.",
  "subscription.created": "A subscription was created.",
  "subscription.updated": "A subscription was changed.",
  "usage.consumed": "A metered consume was counted (metadata.feature_code, amount, total after).",
  "usage.quota_exceeded": "A consume was refused because it would pass the feature's quota.",
  "webhook_delivery.retried": "An operator asked for a webhook delivery to be attempted again now (POST /webhooks/{id}/deliveries/{delivery_id}/retry).",
  "webhook_endpoint.created": "A webhook endpoint was created.",
  "webhook_endpoint.deleted": "A webhook endpoint was deleted.",
  "webhook_endpoint.updated": "A webhook endpoint was changed (metadata.fields lists which).",
} as const satisfies Record<string, string>;

export type EventType = keyof typeof EVENT_TYPES;

/**
 * The runtime refusals the audit feed records: the error code each stands for (null: the event's
 * metadata.code) and the runtime operation it refused (null: its metadata.operation). The activity
 * feed and the ops view both read denials through this one table.
 */
export const DENIAL_EVENTS = {
  "license.validation_denied": { code: null, operation: null },
  "license.activation_limit_exceeded": { code: "ACTIVATION_LIMIT_EXCEEDED", operation: null },
  "usage.quota_exceeded": { code: "FEATURE_QUOTA_EXCEEDED", operation: "consume" },
  "floating.limit_exceeded": { code: "FLOATING_LIMIT_EXCEEDED", operation: "checkout" },
  "license.deactivation_limit_exceeded": { code: "DEACTIVATION_LIMIT_EXCEEDED", operation: "deactivate" },
} as const satisfies Partial<Record<EventType, { code: string | null; operation: string | null }>>;

export function renderEventsDoc(): string {
  const rows = Object.entries(EVENT_TYPES)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([type, what]) => `| \`${type}\` | ${what} |`);
  return [
    "# Audit event types",
    "",
    "Generated from `packages/server/src/domain/event-types.ts` by `npm run docs:events`; do not edit by hand.",
    "",
    "Every successful management write and every runtime state change writes exactly one event in the same",
    "transaction as the change (D7). Read them with `GET /api/v1/events` (scope `event:read`). Runtime binding",
    "values in `metadata` are redacted: fingerprints are hashed and license keys never appear.",
    "",
    "| event_type | meaning |",
    "| --- | --- |",
    ...rows,
    "",
  ].join("\n");
}
