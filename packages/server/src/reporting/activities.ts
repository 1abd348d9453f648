// The activity feed (NOTES §19, D7): the audit events, normalised at read time. Nothing is stored
// twice; every field below is derived from the event row, its metadata and the license it concerns:
//   action        = event_type
//   source        = runtime (actor_type license) | management (api_key, oidc_subject) | system
//   license_id    = resource_id when resource_type is "license", else metadata.license_id
//   product_id, customer_id, order_id, subscription_id
//                 = the license's current column when the event concerns a license, else resource_id
//                   when the event's resource is of that kind, else the same-named metadata value
//   feature_code  = metadata.feature_code
//   error_code    = metadata.code for license.validation_denied; the refusal's code for the
//                   *_limit_exceeded / quota_exceeded events; null for successes
//   result_class  = denied for those refusal events, success for every other event
//   status_code   = denials: the HTTP status of error_code (D1); successes: the status the operation
//                   answers (201 create, 204 delete/remove/clear and api_key.revoked, 200 otherwise); null for
//                   system events, which no request caused
//   occurred_at   = created_at
// Newest first (audit sequence descending); the cursor is the last row's sequence.
import { type Expression, PostgresAdapter, type RawBuilder, type SqlBool, sql } from "kysely";
import { DENIAL_EVENTS, EVENT_TYPES, type EventType } from "../domain/event-types.js";
import { ERROR_CODES, type ErrorCode } from "../http/errors.js";
import type { Engine, Q } from "../store/db.js";
import { iso } from "../store/json.js";
import { decodeActivityCursor, encodeActivityCursor } from "./cursors.js";
import { type ParamSpec, type ParsedParams, USAGE_FILTERS, windowOf } from "./params.js";

export const ACTIVITY_SOURCES = ["runtime", "management", "system"] as const;
export type ActivitySource = (typeof ACTIVITY_SOURCES)[number];
export const RESULT_CLASSES = ["success", "denied"] as const;
export type ResultClass = (typeof RESULT_CLASSES)[number];

const SOURCE_ACTORS: Record<ActivitySource, string[]> = {
  runtime: ["license"],
  management: ["api_key", "oidc_subject"],
  system: ["system"],
};

export const DENIAL_EVENT_TYPES = Object.keys(DENIAL_EVENTS) as EventType[];

/** The HTTP status the operation behind a successful event answers with (201 create, 204 empty-body writes). */
export function successStatus(eventType: string): number {
  if (/\.created$/.test(eventType)) return 201;
  if (/[._](deleted|removed|cleared)$/.test(eventType) || eventType === "api_key.revoked") return 204;
  return 200;
}

const ALL_EVENT_TYPES = Object.keys(EVENT_TYPES) as EventType[];

export const ACTIVITY_PARAMS: ParamSpec = {
  cursor: { type: "cursor", check: (c) => void decodeActivityCursor(c) },
  limit: { type: "limit" },
  from: { type: "time" },
  to: { type: "time" },
  action: { type: "enum", values: [...ALL_EVENT_TYPES].sort() },
  source: { type: "enum", values: ACTIVITY_SOURCES },
  ...USAGE_FILTERS,
  request_id: { type: "text" },
  result_class: { type: "enum", values: RESULT_CLASSES },
  status_code: { type: "int", min: 100, max: 599 },
};

export interface Activity {
  sequence: number;
  action: string;
  source: ActivitySource;
  resource_type: string;
  resource_id: string | null;
  license_id: string | null;
  product_id: string | null;
  customer_id: string | null;
  order_id: string | null;
  subscription_id: string | null;
  feature_code: string | null;
  request_id: string | null;
  result_class: ResultClass;
  status_code: number | null;
  error_code: string | null;
  occurred_at: string;
}

export function engineOf(q: Q): Engine {
  return q.getExecutor().adapter instanceof PostgresAdapter ? "postgres" : "sqlite";
}

/** A top-level metadata value as text (null when absent). */
function metaText(engine: Engine, key: string): RawBuilder<string | null> {
  return engine === "postgres" ? sql<string | null>`(ae.metadata::jsonb ->> ${sql.lit(key)})` : sql<string | null>`json_extract(ae.metadata, ${sql.lit(`$.${key}`)})`;
}

const list = (values: readonly string[]) =>
  sql.join(
    values.map((v) => sql.lit(v)),
    sql`, `,
  );

function derived(engine: Engine) {
  const licenseId = sql<string | null>`(CASE WHEN ae.resource_type = 'license' THEN ae.resource_id ELSE ${metaText(engine, "license_id")} END)`;
  const viaLicense = (column: "product_id" | "customer_id" | "order_id" | "subscription_id", resourceType: string) =>
    sql<
      string | null
    >`COALESCE(${sql.ref(`l.${column}`)}, CASE WHEN ae.resource_type = ${sql.lit(resourceType)} THEN ae.resource_id END, ${metaText(engine, column)})`;
  const codeCases = Object.entries(DENIAL_EVENTS).map(([type, d]) =>
    d.code === null ? sql`WHEN ${sql.lit(type)} THEN ${metaText(engine, "code")}` : sql`WHEN ${sql.lit(type)} THEN ${sql.lit(d.code)}`,
  );
  return {
    licenseId,
    product_id: viaLicense("product_id", "product"),
    customer_id: viaLicense("customer_id", "customer"),
    order_id: viaLicense("order_id", "order"),
    subscription_id: viaLicense("subscription_id", "subscription"),
    feature_code: metaText(engine, "feature_code"),
    error_code: sql<string | null>`(CASE ae.event_type ${sql.join(codeCases, sql` `)} ELSE NULL END)`,
  };
}

/** Filters over the derived fields, as SQL conditions on `ae` (audit_events) and `l` (licenses). */
function conditions(engine: Engine, p: ParsedParams): Expression<SqlBool>[] {
  const d = derived(engine);
  const out: RawBuilder<SqlBool>[] = [];
  const w = windowOf(p);
  if (w.from !== null) out.push(sql<SqlBool>`ae.created_at >= ${w.from}`);
  if (w.to !== null) out.push(sql<SqlBool>`ae.created_at < ${w.to}`);
  if (p.cursor !== undefined) out.push(sql<SqlBool>`ae.sequence < ${decodeActivityCursor(String(p.cursor))}`);
  if (p.action !== undefined) out.push(sql<SqlBool>`ae.event_type = ${String(p.action)}`);
  if (p.source !== undefined) out.push(sql<SqlBool>`ae.actor_type IN (${list(SOURCE_ACTORS[p.source as ActivitySource])})`);
  if (p.license_id !== undefined) out.push(sql<SqlBool>`${d.licenseId} = ${String(p.license_id)}`);
  for (const k of ["product_id", "customer_id", "order_id", "subscription_id", "feature_code"] as const) {
    if (p[k] !== undefined) out.push(sql<SqlBool>`${d[k]} = ${String(p[k])}`);
  }
  if (p.request_id !== undefined) out.push(sql<SqlBool>`ae.request_id = ${String(p.request_id)}`);
  if (p.result_class === "denied") out.push(sql<SqlBool>`ae.event_type IN (${list(DENIAL_EVENT_TYPES)})`);
  if (p.result_class === "success") out.push(sql<SqlBool>`ae.event_type NOT IN (${list(DENIAL_EVENT_TYPES)})`);
  if (p.status_code !== undefined) {
    const status = Number(p.status_code);
    const successTypes = ALL_EVENT_TYPES.filter((t) => !(t in DENIAL_EVENTS) && successStatus(t) === status);
    const codes = (Object.keys(ERROR_CODES) as ErrorCode[]).filter((c) => ERROR_CODES[c].status === status);
    const alternatives: RawBuilder<SqlBool>[] = [];
    if (successTypes.length > 0) alternatives.push(sql<SqlBool>`(ae.actor_type <> 'system' AND ae.event_type IN (${list(successTypes)}))`);
    if (codes.length > 0) alternatives.push(sql<SqlBool>`${d.error_code} IN (${list(codes)})`);
    out.push(alternatives.length === 0 ? sql<SqlBool>`1 = 0` : sql<SqlBool>`(${sql.join(alternatives, sql` OR `)})`);
  }
  return out;
}

function baseQuery(q: Q, engine: Engine, p: ParsedParams) {
  const d = derived(engine);
  let qb = q
    .selectFrom("audit_events as ae")
    .leftJoin("licenses as l", (j) => j.on(sql<SqlBool>`l.id = ${d.licenseId}`))
    .select([
      "ae.sequence",
      "ae.event_type",
      "ae.actor_type",
      "ae.resource_type",
      "ae.resource_id",
      "ae.request_id",
      "ae.created_at",
      d.licenseId.as("license_id"),
      d.product_id.as("product_id"),
      d.customer_id.as("customer_id"),
      d.order_id.as("order_id"),
      d.subscription_id.as("subscription_id"),
      d.feature_code.as("feature_code"),
      d.error_code.as("error_code"),
    ]);
  for (const c of conditions(engine, p)) qb = qb.where(c);
  return qb;
}

type ActivityRow = Awaited<ReturnType<ReturnType<typeof baseQuery>["execute"]>>[number];

const textOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function activityView(r: ActivityRow): Activity {
  const source: ActivitySource = r.actor_type === "license" ? "runtime" : r.actor_type === "system" ? "system" : "management";
  const denied = r.event_type in DENIAL_EVENTS;
  const errorCode = textOrNull(r.error_code);
  const known = errorCode !== null && Object.hasOwn(ERROR_CODES, errorCode) ? ERROR_CODES[errorCode as ErrorCode].status : null;
  return {
    sequence: Number(r.sequence),
    action: r.event_type,
    source,
    resource_type: r.resource_type,
    resource_id: r.resource_id,
    license_id: textOrNull(r.license_id),
    product_id: textOrNull(r.product_id),
    customer_id: textOrNull(r.customer_id),
    order_id: textOrNull(r.order_id),
    subscription_id: textOrNull(r.subscription_id),
    feature_code: textOrNull(r.feature_code),
    request_id: r.request_id,
    result_class: denied ? "denied" : "success",
    status_code: denied ? known : source === "system" ? null : successStatus(r.event_type),
    error_code: denied ? errorCode : null,
    occurred_at: iso(Number(r.created_at)),
  };
}

/** One page of activities, newest first. `p` are params checked against ACTIVITY_PARAMS. */
export async function listActivities(q: Q, p: ParsedParams, limit: number): Promise<{ rows: Activity[]; nextCursor: string | null }> {
  const rows = await baseQuery(q, engineOf(q), p)
    .orderBy("ae.sequence", "desc")
    .limit(limit + 1)
    .execute();
  const page = rows.slice(0, limit).map(activityView);
  return { rows: page, nextCursor: rows.length > limit ? encodeActivityCursor(page[page.length - 1]!.sequence) : null };
}

/** How many activities match `p` (cursor ignored). */
export async function countActivities(q: Q, p: ParsedParams): Promise<number> {
  const { cursor: _ignored, ...rest } = p;
  const row = await q
    .selectFrom(baseQuery(q, engineOf(q), rest).as("a"))
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
