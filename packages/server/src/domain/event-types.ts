// Every audit event type (D7), `<resource>.<action>` in the past tense, with what it records.
// recordEvent only accepts these, and docs/events.md is rendered from this table
// (`npm run docs:events`; a test fails when the two drift).
export const EVENT_TYPES = {
  "api_key.created": "A management API key was created (bootstrap or POST /api-keys).",
  "customer.created": "A customer was created.",
  "license.activated": "A device or container was bound to a license (metadata.implicit when bound by validate).",
  "license.activation_limit_exceeded": "An activation was refused because the license had no free slot.",
  "license.created": "A license was issued.",
  "license.reinstated": "A suspended license was reinstated.",
  "license.revoked": "A license was revoked permanently; metadata.released_devices counts the seats released.",
  "license.suspended": "A license was suspended.",
  "license.validation_denied": "A runtime call was denied (metadata.code gives the error code).",
  "policy.created": "A policy was created.",
  "product.created": "A product was created.",
  "signing_key.rotated": "A new signing key became active and the previous one was retired.",
} as const satisfies Record<string, string>;

export type EventType = keyof typeof EVENT_TYPES;

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
