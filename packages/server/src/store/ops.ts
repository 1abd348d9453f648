// Reads behind the operations view (/api/v1/ops/*): per-minute request counts, runtime denials
// recorded in the audit feed, and the webhook delivery outbox. Same SQL on both engines except the
// JSON field access into audit metadata.
import { DENIAL_EVENTS } from "../domain/event-types.js";
import { sql } from "kysely";
import type { Engine, Q } from "./db.js";
import type { OpsRequestMinutesTable } from "./schema.js";

export interface TrafficRow {
  /** true: inside the short window; false: only inside the long one. */
  recent: boolean;
  surface: OpsRequestMinutesTable["surface"];
  operation: string;
  status: number;
  code: string;
  latency_bucket: number;
  count: number;
}

/**
 * Request counts since `longFrom` (a minute start), summed over minutes and split at `shortFrom`:
 * rows with recent=true are inside both windows.
 */
export async function trafficSince(q: Q, longFrom: number, shortFrom: number): Promise<TrafficRow[]> {
  // A literal, not a parameter: PostgreSQL matches the selected expression with the grouped one only
  // when they are identical, and two parameters ($1, $7) are not.
  const recent = sql<number>`case when minute_start >= ${sql.lit(Math.trunc(shortFrom))} then 1 else 0 end`;
  const rows = await q
    .selectFrom("ops_request_minutes")
    .select([
      recent.as("recent"),
      "surface",
      "operation",
      "status",
      "code",
      "latency_bucket",
      sql<number | string>`cast(sum(count) as bigint)`.as("n"),
    ])
    .where("minute_start", ">=", longFrom)
    .groupBy([recent, "surface", "operation", "status", "code", "latency_bucket"])
    .execute();
  return rows.map((r) => ({
    recent: Number(r.recent) === 1,
    surface: r.surface,
    operation: r.operation,
    status: Number(r.status),
    code: r.code,
    latency_bucket: Number(r.latency_bucket),
    count: Number(r.n),
  }));
}

export interface DenialFilters {
  from: number;
  to: number;
  productId?: string;
  code?: string;
  /** An event operation name (see DENIAL_EVENTS in domain/event-types.ts). */
  operation?: string;
}

export interface DenialGroup {
  code: string;
  operation: string;
  product_id: string | null;
  count: number;
  first_seen_at: number;
  last_seen_at: number;
  sample_request_ids: string[];
}

const SAMPLES_PER_GROUP = 5;

/** One row per recorded runtime denial in the window, with its code, operation and product. */
function denials(engine: Engine, f: DenialFilters) {
  const meta = (field: string) =>
    engine === "postgres" ? sql<string | null>`(cast(e.metadata as jsonb) ->> ${sql.lit(field)})` : sql<string | null>`json_extract(e.metadata, ${sql.lit(`$.${field}`)})`;
  const codeCases = Object.entries(DENIAL_EVENTS).map(([type, d]) => sql`when ${type} then ${d.code === null ? meta("code") : sql`${d.code}`}`);
  const opCases = Object.entries(DENIAL_EVENTS).map(([type, d]) => {
    if (d.operation !== null) return sql`when ${type} then ${d.operation}`;
    // Events written before metadata.operation existed were explicit activations or implicit bindings.
    return type === "license.activation_limit_exceeded" ? sql`when ${type} then coalesce(${meta("operation")}, 'activate')` : sql`when ${type} then ${meta("operation")}`;
  });
  const types = Object.keys(DENIAL_EVENTS);
  const base = sql`
    select e.request_id as request_id, e.created_at as created_at, l.product_id as product_id,
      cast(case e.event_type ${sql.join(codeCases, sql` `)} end as text) as code,
      cast(case e.event_type ${sql.join(opCases, sql` `)} end as text) as operation
    from audit_events e
    left join licenses l on e.resource_type = 'license' and l.id = e.resource_id
    where e.event_type in (${sql.join(types)}) and e.created_at >= ${f.from} and e.created_at <= ${f.to}`;
  const conds = [sql`code is not null`];
  if (f.productId !== undefined) conds.push(sql`product_id = ${f.productId}`);
  if (f.code !== undefined) conds.push(sql`code = ${f.code}`);
  if (f.operation !== undefined) conds.push(sql`operation = ${f.operation}`);
  return sql`select * from (${base}) d where ${sql.join(conds, sql` and `)}`;
}

/** Denial groups by (code, operation, product), most frequent first, each with its newest request ids. */
export async function runtimeDenialGroups(q: Q, engine: Engine, f: DenialFilters): Promise<DenialGroup[]> {
  const source = denials(engine, f);
  const groups = await sql<{ code: string; operation: string | null; product_id: string | null; n: number | string; first_at: number | string; last_at: number | string }>`
    select code, operation, product_id, count(*) as n, min(created_at) as first_at, max(created_at) as last_at
    from (${source}) g
    group by code, operation, product_id`.execute(q);
  const samples = await sql<{ code: string; operation: string | null; product_id: string | null; request_id: string }>`
    select code, operation, product_id, request_id from (
      select code, operation, product_id, request_id,
        row_number() over (partition by code, operation, product_id order by created_at desc, request_id desc) as rn
      from (${source}) s
      where request_id is not null
    ) r
    where rn <= ${SAMPLES_PER_GROUP}
    order by code, operation, product_id, rn`.execute(q);
  const keyOf = (r: { code: string; operation: string | null; product_id: string | null }) => `${r.code}\u0000${r.operation ?? ""}\u0000${r.product_id ?? ""}`;
  const byGroup = new Map<string, string[]>();
  for (const s of samples.rows) {
    const k = keyOf(s);
    byGroup.set(k, [...(byGroup.get(k) ?? []), s.request_id]);
  }
  return groups.rows
    .map((g) => ({
      code: g.code,
      operation: g.operation ?? "unknown",
      product_id: g.product_id,
      count: Number(g.n),
      first_seen_at: Number(g.first_at),
      last_seen_at: Number(g.last_at),
      sample_request_ids: byGroup.get(keyOf(g)) ?? [],
    }))
    .sort(
      (a, b) =>
        b.count - a.count ||
        b.last_seen_at - a.last_seen_at ||
        a.code.localeCompare(b.code) ||
        a.operation.localeCompare(b.operation) ||
        (a.product_id ?? "").localeCompare(b.product_id ?? ""),
    );
}

export interface EndpointHealthRow {
  id: string;
  name: string;
  url: string;
  is_active: boolean;
  last_delivery_at: number | null;
  pending: number;
  failed: number;
  delivered_since: number;
  oldest_pending_created_at: number | null;
  last_failure: { delivery_id: string; at: number | null; status_code: number | null; error: string | null } | null;
}

/**
 * Per webhook endpoint: pending and failed deliveries, deliveries delivered since `since`, the oldest
 * pending one, and the newest failed attempt (a failed delivery, or a pending one already tried).
 */
export async function webhookEndpointHealth(q: Q, since: number): Promise<EndpointHealthRow[]> {
  const endpoints = await q.selectFrom("webhook_endpoints").select(["id", "name", "url", "is_active", "last_delivery_at"]).orderBy("id").execute();
  const waiting = await q
    .selectFrom("webhook_deliveries")
    .select((eb) => ["endpoint_id", "status", eb.fn.countAll<number | string>().as("n"), eb.fn.min("created_at").as("oldest")])
    .where("status", "in", ["pending", "failed"])
    .groupBy(["endpoint_id", "status"])
    .execute();
  const delivered = await q
    .selectFrom("webhook_deliveries")
    .select((eb) => ["endpoint_id", eb.fn.countAll<number | string>().as("n")])
    .where("status", "=", "delivered")
    .where("delivered_at", ">=", since)
    .groupBy("endpoint_id")
    .execute();
  const failures = await sql<{ endpoint_id: string; id: string; last_attempt_at: number | string | null; last_status_code: number | null; last_error: string | null }>`
    select endpoint_id, id, last_attempt_at, last_status_code, last_error from (
      select endpoint_id, id, last_attempt_at, last_status_code, last_error,
        row_number() over (partition by endpoint_id order by coalesce(last_attempt_at, updated_at) desc, id desc) as rn
      from webhook_deliveries
      where status = 'failed' or (status = 'pending' and attempts > 0)
    ) f
    where rn = 1`.execute(q);

  const pending = new Map<string, { n: number; oldest: number | null }>();
  const failed = new Map<string, number>();
  for (const r of waiting) {
    if (r.status === "pending") pending.set(r.endpoint_id, { n: Number(r.n), oldest: r.oldest === null ? null : Number(r.oldest) });
    else failed.set(r.endpoint_id, Number(r.n));
  }
  const deliveredBy = new Map(delivered.map((r) => [r.endpoint_id, Number(r.n)]));
  const lastFailure = new Map(failures.rows.map((r) => [r.endpoint_id, r]));
  return endpoints.map((e) => {
    const f = lastFailure.get(e.id);
    return {
      id: e.id,
      name: e.name,
      url: e.url,
      is_active: e.is_active === 1,
      last_delivery_at: e.last_delivery_at,
      pending: pending.get(e.id)?.n ?? 0,
      failed: failed.get(e.id) ?? 0,
      delivered_since: deliveredBy.get(e.id) ?? 0,
      oldest_pending_created_at: pending.get(e.id)?.oldest ?? null,
      last_failure: f
        ? { delivery_id: f.id, at: f.last_attempt_at === null ? null : Number(f.last_attempt_at), status_code: f.last_status_code, error: f.last_error }
        : null,
    };
  });
}

/** Deliveries that gave up (status failed): all of them, and for each `since` those whose last attempt was at or after it. */
export async function webhookFailures(q: Q, since: number[]): Promise<{ failed: number; failedSince: number[] }> {
  const at = sql`coalesce(last_attempt_at, updated_at)`;
  const row = await q
    .selectFrom("webhook_deliveries")
    .select((eb) => [
      eb.fn.countAll<number | string>().as("n"),
      ...since.map((t, i) => sql<number | string | null>`cast(sum(case when ${at} >= ${t} then 1 else 0 end) as bigint)`.as(`s${i}`)),
    ])
    .where("status", "=", "failed")
    .executeTakeFirstOrThrow();
  const r = row as Record<string, unknown>;
  return { failed: Number(r.n), failedSince: since.map((_, i) => Number(r[`s${i}`] ?? 0)) };
}
