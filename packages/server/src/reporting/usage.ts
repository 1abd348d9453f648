// Usage over the consumption ledger (consumption_events: one row per accepted consume, counted once
// per (license, event_id)) and the hourly runtime call counts. Product, customer, order and
// subscription come from the license's current record, feature_code from the feature; windows are
// [from, to) on the consume's time (calls: on the start of their UTC hour).
import { type SelectQueryBuilder, sql } from "kysely";
import type { Q } from "../store/db.js";
import { iso } from "../store/json.js";
import type { Database } from "../store/schema.js";
import { decodeLedgerCursor, encodeLedgerCursor } from "./cursors.js";
import { type ParsedParams, windowOf } from "./params.js";

export const USAGE_GROUPS = ["customer_id", "product_id", "license_id", "feature_code", "order_id", "subscription_id"] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];
export const BUCKETS = ["1h", "1d"] as const;
export type Bucket = (typeof BUCKETS)[number];
const BUCKET_MS: Record<Bucket, number> = { "1h": 3_600_000, "1d": 86_400_000 };

/** The only action a ledger row has today. */
export const LEDGER_ACTIONS = ["usage.consumed"] as const;

const GROUP_COLUMN = {
  customer_id: "l.customer_id",
  product_id: "l.product_id",
  license_id: "ce.license_id",
  feature_code: "f.code",
  order_id: "l.order_id",
  subscription_id: "l.subscription_id",
} as const;

const CALL_GROUP_COLUMN = {
  customer_id: "l.customer_id",
  product_id: "l.product_id",
  license_id: "rc.license_id",
  order_id: "l.order_id",
  subscription_id: "l.subscription_id",
} as const;

/** The license filters every usage read accepts. */
const LICENSE_FILTERS = ["product_id", "customer_id", "order_id", "subscription_id"] as const;

type UsageQb = SelectQueryBuilder<Database & { ce: Database["consumption_events"]; l: Database["licenses"]; f: Database["features"] }, "ce" | "l" | "f", object>;

/** consumption_events ⋈ licenses ⋈ features, filtered by `p` (window and id filters). */
export function usageRows(q: Q, p: ParsedParams) {
  let qb = q
    .selectFrom("consumption_events as ce")
    .innerJoin("licenses as l", "l.id", "ce.license_id")
    .innerJoin("features as f", "f.id", "ce.feature_id") as unknown as UsageQb;
  const w = windowOf(p);
  if (w.from !== null) qb = qb.where("ce.created_at", ">=", w.from);
  if (w.to !== null) qb = qb.where("ce.created_at", "<", w.to);
  if (p.license_id !== undefined) qb = qb.where("ce.license_id", "=", String(p.license_id));
  for (const k of LICENSE_FILTERS) if (p[k] !== undefined) qb = qb.where(`l.${k}`, "=", String(p[k]));
  if (p.feature_code !== undefined) qb = qb.where("f.code", "=", String(p.feature_code));
  return qb;
}

// ---- ledger ----

export interface LedgerRow {
  event_id: string;
  action: "usage.consumed";
  license_id: string;
  product_id: string;
  customer_id: string | null;
  order_id: string | null;
  subscription_id: string | null;
  feature_id: string;
  feature_code: string;
  device_id: string | null;
  amount: number;
  occurred_at: string;
}

export const LEDGER_COLUMNS = [
  "occurred_at",
  "event_id",
  "action",
  "license_id",
  "product_id",
  "customer_id",
  "order_id",
  "subscription_id",
  "feature_id",
  "feature_code",
  "device_id",
  "amount",
] as const satisfies readonly (keyof LedgerRow)[];

/**
 * Ledger rows newest first: (created_at, license_id, event_id) descending, which is unique, so pages
 * neither skip nor repeat rows. `max` rows at most; `after` is a cursor from a previous page.
 */
export async function ledgerRows(q: Q, p: ParsedParams, max: number): Promise<{ rows: LedgerRow[]; nextCursor: string | null }> {
  let qb = usageRows(q, p);
  if (p.cursor !== undefined) {
    const c = decodeLedgerCursor(String(p.cursor));
    qb = qb.where((eb) =>
      eb.or([
        eb("ce.created_at", "<", c.t),
        eb.and([eb("ce.created_at", "=", c.t), eb("ce.license_id", "<", c.l)]),
        eb.and([eb("ce.created_at", "=", c.t), eb("ce.license_id", "=", c.l), eb("ce.event_id", "<", c.e)]),
      ]),
    );
  }
  const raw = await qb
    .select([
      "ce.event_id",
      "ce.license_id",
      "l.product_id",
      "l.customer_id",
      "l.order_id",
      "l.subscription_id",
      "ce.feature_id",
      "f.code as feature_code",
      "ce.device_id",
      "ce.amount",
      "ce.created_at",
    ])
    .orderBy("ce.created_at", "desc")
    .orderBy("ce.license_id", "desc")
    .orderBy("ce.event_id", "desc")
    .limit(max + 1)
    .execute();
  const rows = raw.slice(0, max).map(
    (r): LedgerRow => ({
      event_id: r.event_id,
      action: "usage.consumed",
      license_id: r.license_id,
      product_id: r.product_id,
      customer_id: r.customer_id,
      order_id: r.order_id,
      subscription_id: r.subscription_id,
      feature_id: r.feature_id,
      feature_code: r.feature_code,
      device_id: r.device_id,
      amount: Number(r.amount),
      occurred_at: iso(Number(r.created_at)),
    }),
  );
  const last = raw.length > max ? raw[max - 1] : undefined;
  return { rows, nextCursor: last ? encodeLedgerCursor({ t: Number(last.created_at), l: last.license_id, e: last.event_id }) : null };
}

// ---- totals ----

export interface UsageTotals {
  consumed_amount: number;
  consume_count: number;
}

export async function usageTotals(q: Q, p: ParsedParams): Promise<UsageTotals> {
  const r = await usageRows(q, p)
    .select((eb) => [eb.fn.coalesce(eb.fn.sum<number>("ce.amount"), sql.lit(0)).as("amount"), eb.fn.countAll<number>().as("n")])
    .executeTakeFirstOrThrow();
  return { consumed_amount: Number(r.amount), consume_count: Number(r.n) };
}

export interface FeatureUsage extends UsageTotals {
  feature_code: string;
}

/** Consumed amount and count per feature code, by code. */
export async function usageByFeature(q: Q, p: ParsedParams): Promise<FeatureUsage[]> {
  const rows = await usageRows(q, p)
    .select((eb) => ["f.code as feature_code", eb.fn.sum<number>("ce.amount").as("amount"), eb.fn.countAll<number>().as("n")])
    .groupBy("f.code")
    .execute();
  return rows
    .map((r) => ({ feature_code: r.feature_code, consumed_amount: Number(r.amount), consume_count: Number(r.n) }))
    .sort((a, b) => cmp(a.feature_code, b.feature_code));
}

export interface GroupFeatureUsage extends FeatureUsage {
  group: string | null;
}

/** Consumed amount and count per (group, feature code), by group then code. */
export async function usageByGroupAndFeature(q: Q, p: ParsedParams, group: UsageGroup): Promise<GroupFeatureUsage[]> {
  const col = sql.ref(GROUP_COLUMN[group]);
  const rows = await usageRows(q, p)
    .select((eb) => [col.as("grp"), "f.code as feature_code", eb.fn.sum<number>("ce.amount").as("amount"), eb.fn.countAll<number>().as("n")])
    .groupBy([col, "f.code"])
    .execute();
  return rows
    .map((r) => ({
      group: r.grp === null ? null : String(r.grp),
      feature_code: r.feature_code,
      consumed_amount: Number(r.amount),
      consume_count: Number(r.n),
    }))
    .sort((a, b) => cmp(a.group, b.group) || cmp(a.feature_code, b.feature_code));
}

/** Deterministic order for nullable text: null first, then by UTF-16 code units. */
export function cmp(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : 1;
}

// ---- grouped summary ----

export interface CallCounts {
  validate_count: number;
  check_count: number;
}

export interface SummaryRow extends UsageTotals {
  group: string | null;
  bucket_start: string | null;
  /** Successful validate/check calls; null when the grouping or filters cannot attribute calls (feature_code). */
  validate_count: number | null;
  check_count: number | null;
}

/** Whether validate/check counts can be split the way `p` asks: calls have no feature. */
export function callsAttributable(p: ParsedParams): boolean {
  return p.feature_code === undefined && p.group_by !== "feature_code";
}

async function groupedCalls(q: Q, p: ParsedParams, group: UsageGroup | undefined, bucket: Bucket | undefined) {
  const w = windowOf(p);
  const grp = group && group !== "feature_code" ? sql.ref(CALL_GROUP_COLUMN[group]) : sql<null>`NULL`;
  const bucketMs = bucket ? BUCKET_MS[bucket] : undefined;
  const start = bucketMs ? sql<number | null>`((rc.hour_start / ${sql.lit(bucketMs)}) * ${sql.lit(bucketMs)})` : sql<number | null>`NULL`;
  let qb = q.selectFrom("runtime_call_counts as rc").innerJoin("licenses as l", "l.id", "rc.license_id");
  if (w.from !== null) qb = qb.where("rc.hour_start", ">=", w.from);
  if (w.to !== null) qb = qb.where("rc.hour_start", "<", w.to);
  if (p.license_id !== undefined) qb = qb.where("rc.license_id", "=", String(p.license_id));
  for (const k of LICENSE_FILTERS) if (p[k] !== undefined) qb = qb.where(`l.${k}`, "=", String(p[k]));
  const sel = qb.select([
    grp.as("grp"),
    start.as("bucket_start"),
    sql<number>`SUM(CASE WHEN rc.operation = 'validate' THEN rc.calls ELSE 0 END)`.as("validate_count"),
    sql<number>`SUM(CASE WHEN rc.operation = 'check' THEN rc.calls ELSE 0 END)`.as("check_count"),
  ]);
  const keys = [...(group && group !== "feature_code" ? [grp] : []), ...(bucketMs ? [start] : [])];
  return (keys.length > 0 ? sel.groupBy(keys) : sel).execute();
}

/**
 * Totals per group and bucket: consumed amount and consume count from the ledger, validate/check
 * calls from the hourly counts where they can be attributed. Rows ordered by bucket, then group.
 */
export async function usageSummaryRows(q: Q, p: ParsedParams): Promise<SummaryRow[]> {
  const group = p.group_by as UsageGroup | undefined;
  const bucket = p.bucket as Bucket | undefined;
  const bucketMs = bucket ? BUCKET_MS[bucket] : undefined;
  const grp = group ? sql.ref(GROUP_COLUMN[group]) : sql<null>`NULL`;
  const start = bucketMs ? sql<number | null>`((ce.created_at / ${sql.lit(bucketMs)}) * ${sql.lit(bucketMs)})` : sql<number | null>`NULL`;
  const keys = [...(group ? [grp] : []), ...(bucketMs ? [start] : [])];
  const sel = usageRows(q, p).select((eb) => [
    grp.as("grp"),
    start.as("bucket_start"),
    eb.fn.sum<number>("ce.amount").as("amount"),
    eb.fn.countAll<number>().as("n"),
  ]);
  const used = await (keys.length > 0 ? sel.groupBy(keys) : sel).execute();

  const byKey = new Map<string, SummaryRow>();
  const attributable = callsAttributable(p);
  const row = (g: unknown, b: unknown): SummaryRow => {
    const groupValue = g === null || g === undefined ? null : String(g);
    const bucketValue = b === null || b === undefined ? null : iso(Number(b));
    const key = JSON.stringify([groupValue, bucketValue]);
    let r = byKey.get(key);
    if (!r) {
      r = {
        group: groupValue,
        bucket_start: bucketValue,
        consumed_amount: 0,
        consume_count: 0,
        validate_count: attributable ? 0 : null,
        check_count: attributable ? 0 : null,
      };
      byKey.set(key, r);
    }
    return r;
  };
  for (const u of used) {
    if (Number(u.n) === 0) continue; // the one row of an ungrouped aggregate over nothing
    const r = row(u.grp, u.bucket_start);
    r.consumed_amount += Number(u.amount);
    r.consume_count += Number(u.n);
  }
  if (attributable) {
    for (const c of await groupedCalls(q, p, group, bucket)) {
      const v = Number(c.validate_count ?? 0);
      const k = Number(c.check_count ?? 0);
      if (v === 0 && k === 0) continue;
      const r = row(c.grp, c.bucket_start);
      r.validate_count = (r.validate_count ?? 0) + v;
      r.check_count = (r.check_count ?? 0) + k;
    }
  }
  return [...byKey.values()].sort((a, b) => cmp(a.bucket_start, b.bucket_start) || cmp(a.group, b.group));
}

/** Call counts of the licenses `p` selects (window on the hour start). */
export async function callTotals(q: Q, p: ParsedParams): Promise<CallCounts> {
  const [r] = await groupedCalls(q, p, undefined, undefined);
  return { validate_count: Number(r?.validate_count ?? 0), check_count: Number(r?.check_count ?? 0) };
}
