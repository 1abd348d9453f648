// /api/v1/ops/*: the operations view (NOTES §16 and §21), scope ops:read. The summary reads the
// per-minute request counts every process flushes to ops_request_minutes (cluster-wide), the
// runtime-error groups read the denials the audit feed records, and webhook health reads the
// delivery outbox. docs/operations.md describes every field and what is not counted where.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { urlForAudit } from "../../domain/webhook-url.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { DateTime, dataEnvelope, errorResponses, StringEnum } from "../../http/schemas.js";
import { LATENCY_BUCKETS_MS, MINUTE_MS, minuteStart, REPLAY_CODE, SURFACES, type Surface } from "../../observability/request-stats.js";
import { webhookBacklog } from "../../observability/db-gauges.js";
import { iso } from "../../store/json.js";
import { runtimeDenialGroups, type TrafficRow, trafficSince, webhookEndpointHealth, webhookFailures } from "../../store/ops.js";
import { clampLimit } from "../../store/pagination.js";
import { MANAGEMENT_ERRORS } from "./common.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Runtime operations by the name audit events use, and their operationIds. */
const RUNTIME_OPERATIONS = {
  activate: "activateLicense",
  validate: "validateLicense",
  check: "checkLicense",
  consume: "consumeLicense",
  offline: "issueOfflineLicense",
  deactivate: "deactivateLicense",
  checkout: "checkoutFloatingLicense",
} as const;
type EventOperation = keyof typeof RUNTIME_OPERATIONS;
const OPERATION_IDS = Object.values(RUNTIME_OPERATIONS);
const EVENT_OPERATION = Object.fromEntries(Object.entries(RUNTIME_OPERATIONS).map(([k, v]) => [v, k])) as Record<string, EventOperation>;

// ---- schemas

const Count = Type.Integer({ minimum: 0 });
const Rate = Type.Number({ minimum: 0, maximum: 1, description: "A fraction of requests, rounded to 4 decimals; 0 when there were none." });

const SurfaceStats = Type.Object({
  surface: StringEnum(SURFACES),
  requests: Count,
  errors_4xx: Count,
  errors_5xx: Count,
  error_rate: Type.Number({ minimum: 0, maximum: 1, description: "(errors_4xx + errors_5xx) / requests, rounded to 4 decimals." }),
  server_error_rate: Type.Number({ minimum: 0, maximum: 1, description: "errors_5xx / requests, rounded to 4 decimals." }),
  p99_ms: Type.Union([Type.Integer(), Type.Null()], {
    description: `Upper bound (ms) of the latency bucket holding the 99th percentile (bounds: ${LATENCY_BUCKETS_MS.join(", ")}; the last also holds slower answers); null without requests.`,
  }),
});

const CodeCount = Type.Object({ code: Type.String(), count: Count });

const WindowStats = Type.Object({
  from: DateTime,
  to: DateTime,
  surfaces: Type.Array(SurfaceStats, { description: "management, runtime and system, always in this order." }),
  scope_denials: Type.Object({
    total: Count,
    by_scope: Type.Array(Type.Object({ scope: Type.String(), count: Count }), { description: "403 TOKEN_SCOPE_DENIED by the scope the route requires; most frequent first." }),
  }),
  idempotency: Type.Object({
    conflicts: Type.Integer({ minimum: 0, description: "409 IDEMPOTENCY_CONFLICT: a key reused with a different request." }),
    in_progress: Type.Integer({ minimum: 0, description: "409 IDEMPOTENCY_IN_PROGRESS: a key reused while the first request still ran." }),
    replays: Type.Integer({ minimum: 0, description: "Stored answers replayed (Idempotent-Replayed: true)." }),
  }),
  runtime_denials: Type.Object({
    total: Count,
    by_code: Type.Array(CodeCount, { description: "Runtime answers with a 4xx status by error code (replays excluded); most frequent first." }),
  }),
  server_errors: Type.Object({
    total: Count,
    rate: Rate,
    by_operation: Type.Array(
      Type.Object({ surface: StringEnum(SURFACES), operation: Type.String(), status: Type.Integer(), code: Type.String(), count: Count }),
      { description: "5xx answers by surface, operation, status and code; most frequent first." },
    ),
  }),
  webhook_failures: Type.Integer({ minimum: 0, description: "Webhook deliveries that gave up (status failed) with their last attempt in this window." }),
});

const OpsSummary = Type.Object({
  generated_at: DateTime,
  last_hour: WindowStats,
  last_day: WindowStats,
  webhooks: Type.Object({
    pending: Type.Integer({ minimum: 0, description: "Deliveries waiting to be sent (inactive endpoints' included)." }),
    oldest_pending_age_seconds: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: "null when nothing is pending." }),
    failed: Type.Integer({ minimum: 0, description: "Deliveries that gave up after every attempt (retry them with the delivery retry route)." }),
  }),
});

const DenialGroup = Type.Object({
  code: Type.String(),
  operation: Type.String({ description: "operationId of the runtime call." }),
  product_id: Type.Union([Type.String(), Type.Null()]),
  count: Count,
  first_seen_at: DateTime,
  last_seen_at: DateTime,
  sample_request_ids: Type.Array(Type.String(), { maxItems: 5, description: "meta.request_id of up to 5 of the newest denials in the group." }),
});

const RuntimeErrors = Type.Object({
  from: DateTime,
  to: DateTime,
  total_denials: Type.Integer({ minimum: 0, description: "Denials in every group, also those past `limit`." }),
  total_groups: Count,
  groups: Type.Array(DenialGroup, { description: "Most frequent first, then most recent." }),
});

const RuntimeErrorsQuery = Type.Object({
  from: Type.Optional(Type.String({ format: "date-time", description: "RFC 3339; default 24 hours before `to`." })),
  to: Type.Optional(Type.String({ format: "date-time", description: "RFC 3339; default now." })),
  product_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  code: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: "^[A-Z][A-Z0-9_]*$", description: "An error code, e.g. LICENSE_EXPIRED." })),
  operation: Type.Optional(StringEnum(OPERATION_IDS, { description: "The runtime operationId." })),
  limit: Type.Optional(Type.Integer({ minimum: 1, description: "Groups to return; defaults to 50 and is clamped to 200." })),
});

const EndpointHealth = Type.Object({
  id: Type.String(),
  name: Type.String(),
  url: Type.String({ description: "The endpoint URL without query string or fragment (a query may carry the receiver's token)." }),
  is_active: Type.Boolean(),
  pending: Count,
  failed: Count,
  delivered_last_24h: Count,
  last_delivery_at: Type.Union([DateTime, Type.Null()]),
  oldest_pending_age_seconds: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  last_failure: Type.Union([
    Type.Object({
      delivery_id: Type.String(),
      at: Type.Union([DateTime, Type.Null()]),
      status_code: Type.Union([Type.Integer(), Type.Null()], { description: "The receiver's HTTP status; null when no answer came (timeout, refused, blocked)." }),
      error: Type.Union([Type.String(), Type.Null()]),
    }),
    Type.Null(),
  ]),
});

const WebhookHealth = Type.Object({
  endpoints: Type.Array(EndpointHealth),
  totals: Type.Object({
    endpoints: Count,
    active_endpoints: Count,
    pending: Count,
    failed: Count,
    delivered_last_24h: Count,
    oldest_pending_age_seconds: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  }),
});

// ---- summary arithmetic

function rate(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 10_000;
}

/** Upper bound of the bucket that holds the 99th percentile answer. */
function p99(buckets: number[]): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil(total * 0.99);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= rank) return LATENCY_BUCKETS_MS[i]!;
  }
  return LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]!;
}

function sortedCounts<T extends { count: number }>(m: Map<string, T>): T[] {
  return [...m.entries()].sort(([ka, a], [kb, b]) => b.count - a.count || ka.localeCompare(kb)).map(([, v]) => v);
}

function windowStats(rows: TrafficRow[], from: number, to: number, scopeOf: (operation: string) => string, webhookFailuresInWindow: number) {
  const surfaces = new Map(SURFACES.map((s) => [s, { requests: 0, e4: 0, e5: 0, buckets: LATENCY_BUCKETS_MS.map(() => 0) }]));
  const scopes = new Map<string, { scope: string; count: number }>();
  const denials = new Map<string, { code: string; count: number }>();
  const server = new Map<string, { surface: Surface; operation: string; status: number; code: string; count: number }>();
  const idempotency = { conflicts: 0, in_progress: 0, replays: 0 };
  for (const r of rows) {
    const s = surfaces.get(r.surface);
    if (!s) continue;
    s.requests += r.count;
    s.buckets[Math.min(r.latency_bucket, s.buckets.length - 1)]! += r.count;
    if (r.status >= 500) s.e5 += r.count;
    else if (r.status >= 400) s.e4 += r.count;
    if (r.code === "TOKEN_SCOPE_DENIED") {
      const scope = scopeOf(r.operation);
      scopes.set(scope, { scope, count: (scopes.get(scope)?.count ?? 0) + r.count });
    } else if (r.code === "IDEMPOTENCY_CONFLICT") idempotency.conflicts += r.count;
    else if (r.code === "IDEMPOTENCY_IN_PROGRESS") idempotency.in_progress += r.count;
    else if (r.code === REPLAY_CODE) idempotency.replays += r.count;
    if (r.surface === "runtime" && r.status >= 400 && r.status < 500 && r.code !== REPLAY_CODE) {
      const code = r.code || "UNKNOWN";
      denials.set(code, { code, count: (denials.get(code)?.count ?? 0) + r.count });
    }
    if (r.status >= 500 && r.code !== REPLAY_CODE) {
      const k = `${r.surface} ${r.operation} ${r.status} ${r.code}`;
      const prev = server.get(k);
      if (prev) prev.count += r.count;
      else server.set(k, { surface: r.surface, operation: r.operation, status: r.status, code: r.code || "UNKNOWN", count: r.count });
    }
  }
  const byScope = sortedCounts(scopes);
  const byCode = sortedCounts(denials);
  const byOperation = sortedCounts(server);
  const allRequests = [...surfaces.values()].reduce((a, s) => a + s.requests, 0);
  const serverTotal = byOperation.reduce((a, x) => a + x.count, 0);
  return {
    from: iso(from),
    to: iso(to),
    surfaces: SURFACES.map((surface) => {
      const s = surfaces.get(surface)!;
      return {
        surface,
        requests: s.requests,
        errors_4xx: s.e4,
        errors_5xx: s.e5,
        error_rate: rate(s.e4 + s.e5, s.requests),
        server_error_rate: rate(s.e5, s.requests),
        p99_ms: p99(s.buckets),
      };
    }),
    scope_denials: { total: byScope.reduce((a, x) => a + x.count, 0), by_scope: byScope },
    idempotency,
    runtime_denials: { total: byCode.reduce((a, x) => a + x.count, 0), by_code: byCode },
    server_errors: { total: serverTotal, rate: rate(serverTotal, allRequests), by_operation: byOperation },
    webhook_failures: webhookFailuresInWindow,
  };
}

/** operationId → required scope, from the served OpenAPI document (x-required-scopes). */
function scopeTable(app: FastifyInstance): Map<string, string> {
  const doc = app.swagger() as { paths?: Record<string, Record<string, { operationId?: string; "x-required-scopes"?: string[] }>> };
  const out = new Map<string, string>();
  for (const item of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(item)) {
      const scope = op?.["x-required-scopes"]?.[0];
      if (op?.operationId && scope) out.set(op.operationId, scope);
    }
  }
  return out;
}

const ageSeconds = (now: number, at: number | null): number | null => (at === null ? null : Math.max(0, Math.floor((now - at) / 1000)));

// ---- routes

export const opsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  let scopes: Map<string, string> | null = null;
  const scopeOf = (operation: string) => {
    scopes ??= scopeTable(app);
    return scopes.get(operation) ?? "unknown";
  };

  app.get(
    "/ops/summary",
    {
      config: { scope: "ops:read" },
      schema: {
        operationId: "getOpsSummary",
        tags: ["ops"],
        description:
          "Request volume, error rates, p99 latency, scope denials, idempotency conflicts and replays, runtime denials, server errors and the webhook backlog for the last hour and the last day, across every server process.",
        response: { 200: dataEnvelope(OpsSummary), ...errorResponses(...MANAGEMENT_ERRORS) },
      },
    },
    async (req) => {
      const { store, clock } = app.lk;
      const now = clock.now();
      // Whole minutes, the current one included: the last 60 and the last 1,440 minute rows.
      const current = minuteStart(now);
      const hourFrom = current - (HOUR_MS - MINUTE_MS);
      const dayFrom = current - (DAY_MS - MINUTE_MS);
      const [rows, backlog, failures] = await Promise.all([
        trafficSince(store.db, dayFrom, hourFrom),
        webhookBacklog(store.db, now),
        webhookFailures(store.db, [hourFrom, dayFrom]),
      ]);
      return {
        data: {
          generated_at: iso(now),
          last_hour: windowStats(
            rows.filter((r) => r.recent),
            hourFrom,
            now,
            scopeOf,
            failures.failedSince[0]!,
          ),
          last_day: windowStats(rows, dayFrom, now, scopeOf, failures.failedSince[1]!),
          webhooks: { pending: backlog.pending, oldest_pending_age_seconds: backlog.oldestPendingAgeMs === null ? null : Math.floor(backlog.oldestPendingAgeMs / 1000), failed: failures.failed },
        },
        meta: responseMeta(req),
      };
    },
  );

  app.get(
    "/ops/runtime-errors",
    {
      config: { scope: "ops:read" },
      schema: {
        operationId: "listOpsRuntimeErrors",
        tags: ["ops"],
        description:
          "Runtime denials recorded in the audit feed, grouped by code, operation and product, with first and last occurrence and sample request ids. Denials without a license (UNAUTHORIZED) and those no event records are counted only in the summary; see docs/operations.md.",
        querystring: RuntimeErrorsQuery,
        response: { 200: dataEnvelope(RuntimeErrors), ...errorResponses(...MANAGEMENT_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const q = req.query;
      const to = q.to !== undefined ? Date.parse(q.to) : app.lk.clock.now();
      const from = q.from !== undefined ? Date.parse(q.from) : to - DAY_MS;
      if (from > to) throw new ApiError("INVALID_QUERY", "query parameter from: must not be after to");
      const groups = await runtimeDenialGroups(app.lk.store.db, app.lk.store.engine, {
        from,
        to,
        ...(q.product_id !== undefined ? { productId: q.product_id } : {}),
        ...(q.code !== undefined ? { code: q.code } : {}),
        ...(q.operation !== undefined ? { operation: EVENT_OPERATION[q.operation] } : {}),
      });
      return {
        data: {
          from: iso(from),
          to: iso(to),
          total_denials: groups.reduce((a, g) => a + g.count, 0),
          total_groups: groups.length,
          groups: groups.slice(0, clampLimit(q.limit)).map((g) => ({
            code: g.code,
            operation: RUNTIME_OPERATIONS[g.operation as EventOperation] ?? g.operation,
            product_id: g.product_id,
            count: g.count,
            first_seen_at: iso(g.first_seen_at),
            last_seen_at: iso(g.last_seen_at),
            sample_request_ids: g.sample_request_ids,
          })),
        },
        meta: responseMeta(req),
      };
    },
  );

  app.get(
    "/ops/webhook-health",
    {
      config: { scope: "ops:read" },
      schema: {
        operationId: "getOpsWebhookHealth",
        tags: ["ops"],
        description: "Per webhook endpoint: pending and failed deliveries, deliveries in the last 24 hours, the last delivery and the last failure, the oldest pending delivery's age; with totals.",
        response: { 200: dataEnvelope(WebhookHealth), ...errorResponses(...MANAGEMENT_ERRORS) },
      },
    },
    async (req) => {
      const now = app.lk.clock.now();
      const rows = await webhookEndpointHealth(app.lk.store.db, now - DAY_MS);
      const endpoints = rows.map((r) => ({
        id: r.id,
        name: r.name,
        url: urlForAudit(r.url),
        is_active: r.is_active,
        pending: r.pending,
        failed: r.failed,
        delivered_last_24h: r.delivered_since,
        last_delivery_at: r.last_delivery_at === null ? null : iso(r.last_delivery_at),
        oldest_pending_age_seconds: ageSeconds(now, r.oldest_pending_created_at),
        last_failure: r.last_failure && {
          delivery_id: r.last_failure.delivery_id,
          at: r.last_failure.at === null ? null : iso(r.last_failure.at),
          status_code: r.last_failure.status_code,
          error: r.last_failure.error,
        },
      }));
      const oldest = rows.reduce<number | null>((m, r) => (r.oldest_pending_created_at === null ? m : m === null ? r.oldest_pending_created_at : Math.min(m, r.oldest_pending_created_at)), null);
      return {
        data: {
          endpoints,
          totals: {
            endpoints: rows.length,
            active_endpoints: rows.filter((r) => r.is_active).length,
            pending: rows.reduce((a, r) => a + r.pending, 0),
            failed: rows.reduce((a, r) => a + r.failed, 0),
            delivered_last_24h: rows.reduce((a, r) => a + r.delivered_since, 0),
            oldest_pending_age_seconds: ageSeconds(now, oldest),
          },
        },
        meta: responseMeta(req),
      };
    },
  );
};
