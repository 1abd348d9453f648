// Renders docs/errors.md from the error-code table, so the document cannot drift from the code.
import { ERROR_CODES } from "./errors.js";

export function renderErrorsDoc(): string {
  const lines = [
    "# Error codes",
    "",
    "<!-- Generated from packages/server/src/http/errors.ts by `npm run docs:errors`. Do not edit by hand. -->",
    "",
    "Every non-2xx answer, on every route and for every cause, has this shape:",
    "",
    "```json",
    '{"error":{"code":"TOKEN_SCOPE_DENIED","message":"token scope denied","detail":"requires product:write"},',
    ' "meta":{"request_id":"req_…","timestamp":"2026-01-01T00:00:00.000Z"}}',
    "```",
    "",
    "- `code` is stable: program against it. `message` is fixed per code. `detail` is the specific, actionable part and may change wording.",
    "- `meta.request_id` is also sent as the `x-request-id` header on every answer; quote it when reporting a problem.",
    "- On runtime routes (`/api/v1/license/…`) error envelopes also carry `signature` (Ed25519 over `JSON.stringify(error)`, same keys as success answers), so a client can tell a genuine denial from a proxy's.",
    "- Retry only transport failures, `429` and `5xx`, and only idempotent calls or calls sent with an `Idempotency-Key`. Every other 4xx is final: fix the request.",
    "- The one non-2xx answer that is not an error envelope is `GET /readyz` → `503 {data:{status:\"not_ready\",db}, meta}`, as the contract specifies.",
    "",
    "| code | HTTP status | message | when |",
    "|---|---|---|---|",
  ];
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    lines.push(`| \`${code}\` | ${spec.status} | ${spec.message} | ${spec.when.replace(/\|/g, "\\|")} |`);
  }
  lines.push("");
  return lines.join("\n");
}
