// The five report kinds (NOTES §19): which parameters each takes, the live summary object each
// answers, and the frozen snapshot (summary + table + chart) an export stores (NOTES §20). The live
// routes and the exports share these functions, so a snapshot's `summary` is exactly what the live
// read answered at `generated_at`.
import { effectiveStatus, LICENSE_STATUSES, type LicenseStatus } from "../domain/license-status.js";
import { ApiError } from "../http/errors.js";
import { customerView } from "../store/customers.js";
import type { Q } from "../store/db.js";
import type { DeviceRow } from "../store/schema.js";
import { iso } from "../store/json.js";
import { licenseView } from "../store/licenses.js";
import { orderView } from "../store/orders.js";
import { clampLimit } from "../store/pagination.js";
import { subscriptionView } from "../store/subscriptions.js";
import { type Activity, countActivities, listActivities } from "./activities.js";
import { decodeLedgerCursor } from "./cursors.js";
import { invalidParam, type ParamSpec, type ParsedParams, parseParams, USAGE_FILTERS } from "./params.js";
import type { ReportCell, ReportFilters, ReportKind, ReportSnapshot } from "./types.js";
import {
  type Bucket,
  BUCKETS,
  callTotals,
  cmp,
  LEDGER_ACTIONS,
  LEDGER_COLUMNS,
  type LedgerRow,
  ledgerRows,
  USAGE_GROUPS,
  type UsageGroup,
  usageByFeature,
  usageByGroupAndFeature,
  usageSummaryRows,
  usageTotals,
} from "./usage.js";

/** Most ledger rows one snapshot holds; `summary.truncated` says when more matched. */
export const LEDGER_SNAPSHOT_CAP = 100_000;
/** Most points a snapshot chart has. */
export const CHART_MAX_POINTS = 36;

const WINDOW = { from: { type: "time" }, to: { type: "time" } } as const satisfies ParamSpec;

/** Exactly the parameters NOTES §19 lists for each kind. */
export const REPORT_PARAMS: Record<ReportKind, ParamSpec> = {
  "usage-summary": {
    ...WINDOW,
    group_by: { type: "enum", values: USAGE_GROUPS },
    bucket: { type: "enum", values: BUCKETS },
    ...USAGE_FILTERS,
  },
  "usage-ledger": {
    cursor: { type: "cursor", check: (c) => void decodeLedgerCursor(c) },
    limit: { type: "limit" },
    ...WINDOW,
    action: { type: "enum", values: LEDGER_ACTIONS },
    ...USAGE_FILTERS,
  },
  "license-audit": { license_id: { type: "id", required: true }, ...WINDOW, limit: { type: "limit" } },
  "customer-summary": { customer_id: { type: "id", required: true }, ...WINDOW, limit: { type: "limit" } },
  "subscription-settlement": {
    subscription_id: { type: "id" },
    order_id: { type: "id" },
    ...WINDOW,
    group_by: { type: "enum", values: USAGE_GROUPS },
    limit: { type: "limit" },
  },
};

/**
 * Validates exactly the parameters NOTES §19 lists for `kind` (query strings or an export's
 * `filters`): unknown or repeated parameters, bad values, `from` after `to`, and a missing required
 * id are 400 INVALID_QUERY naming the parameter. Times stay the RFC 3339 text given; ids strings;
 * `limit` a number (clamped to 200 where used).
 */
export function parseReportFilters(kind: ReportKind, raw: Record<string, unknown>): ReportFilters {
  const p = parseParams(REPORT_PARAMS[kind], raw);
  if (kind === "subscription-settlement" && p.subscription_id === undefined && p.order_id === undefined) {
    throw invalidParam("subscription_id", "subscription_id or order_id is required");
  }
  return p;
}

// ---- summaries (the live reads) ----

const windowView = (p: ParsedParams) => ({ from: p.from === undefined ? null : String(p.from), to: p.to === undefined ? null : String(p.to) });

export async function usageSummary(q: Q, p: ParsedParams) {
  const rows = await usageSummaryRows(q, p);
  // Calls have no feature: with a feature_code filter they cannot be counted at all.
  const calls = p.feature_code === undefined ? await callTotals(q, p) : null;
  return {
    window: windowView(p),
    group_by: p.group_by === undefined ? null : (p.group_by as UsageGroup),
    bucket: p.bucket === undefined ? null : (p.bucket as Bucket),
    totals: {
      consumed_amount: rows.reduce((s, r) => s + r.consumed_amount, 0),
      consume_count: rows.reduce((s, r) => s + r.consume_count, 0),
      validate_count: calls ? calls.validate_count : null,
      check_count: calls ? calls.check_count : null,
    },
    rows,
  };
}

async function ledgerSnapshotSummary(q: Q, p: ParsedParams, included: number, truncated: boolean) {
  const totals = await usageTotals(q, p);
  return {
    window: windowView(p),
    action: "usage.consumed",
    row_count: totals.consume_count,
    consumed_amount: totals.consumed_amount,
    rows_included: included,
    truncated,
    row_cap: LEDGER_SNAPSHOT_CAP,
  };
}

const zeroStatuses = (): Record<LicenseStatus, number> => Object.fromEntries(LICENSE_STATUSES.map((s) => [s, 0])) as Record<LicenseStatus, number>;

export async function licenseAudit(q: Q, p: ParsedParams, now: number) {
  const licenseId = String(p.license_id);
  const license = await q.selectFrom("licenses").selectAll().where("id", "=", licenseId).executeTakeFirst();
  if (!license) throw new ApiError("NOT_FOUND", `query parameter license_id: license ${licenseId} not found`);
  const policy = await q.selectFrom("policies").select("grace_period_days").where("id", "=", license.policy_id).executeTakeFirstOrThrow();
  const devices = await q
    .selectFrom("devices")
    .select((eb) => ["status", eb.fn.countAll<number>().as("n")])
    .where("license_id", "=", licenseId)
    .groupBy("status")
    .execute();
  const byStatus: Record<DeviceRow["status"], number> = { active: 0, deactivated: 0, blacklisted: 0, reset: 0, expired: 0 };
  for (const d of devices) byStatus[d.status] = Number(d.n);
  const scope: ParsedParams = { license_id: licenseId, ...pick(p, "from", "to") };
  const events = await listActivities(q, scope, clampLimit(numberOr(p.limit)));
  return {
    license: licenseView(license, policy.grace_period_days, now),
    window: windowView(p),
    devices: { total: Object.values(byStatus).reduce((s, n) => s + n, 0), active: byStatus.active, by_status: byStatus },
    usage: { totals: await usageTotals(q, scope), by_feature: await usageByFeature(q, scope) },
    runtime_calls: await callTotals(q, scope),
    events: { total: await countActivities(q, scope), rows: events.rows },
  };
}

/** The licenses with the given customer_id / subscription_id / order_id, by id, with their status at `now`. */
async function licenseStatuses(q: Q, p: ParsedParams, now: number) {
  let qb = q.selectFrom("licenses as l").innerJoin("policies as pol", "pol.id", "l.policy_id");
  for (const k of ["customer_id", "subscription_id", "order_id"] as const) if (p[k] !== undefined) qb = qb.where(`l.${k}`, "=", String(p[k]));
  const rows = await qb
    .select(["l.id", "l.product_id", "l.customer_id", "l.order_id", "l.subscription_id", "l.state", "l.expires_at", "pol.grace_period_days"])
    .orderBy("l.id")
    .execute();
  return rows.map((r) => ({
    id: r.id,
    product_id: r.product_id,
    customer_id: r.customer_id,
    order_id: r.order_id,
    subscription_id: r.subscription_id,
    status: effectiveStatus(r, r.grace_period_days, now),
  }));
}

function countByStatus(rows: { status: LicenseStatus }[]): Record<LicenseStatus, number> {
  const out = zeroStatuses();
  for (const r of rows) out[r.status] += 1;
  return out;
}

export async function customerSummary(q: Q, p: ParsedParams, now: number) {
  const customerId = String(p.customer_id);
  const customer = await q.selectFrom("customers").selectAll().where("id", "=", customerId).executeTakeFirst();
  if (!customer) throw new ApiError("NOT_FOUND", `query parameter customer_id: customer ${customerId} not found`);
  const scope: ParsedParams = { customer_id: customerId, ...pick(p, "from", "to") };
  const licenses = await licenseStatuses(q, { customer_id: customerId }, now);
  const activity = await listActivities(q, scope, clampLimit(numberOr(p.limit)));
  return {
    customer: customerView(customer),
    window: windowView(p),
    licenses: { total: licenses.length, by_status: countByStatus(licenses) },
    usage: { totals: await usageTotals(q, scope), by_feature: await usageByFeature(q, scope) },
    runtime_calls: await callTotals(q, scope),
    recent_activity: activity.rows,
  };
}

export async function subscriptionSettlement(q: Q, p: ParsedParams, now: number) {
  const subscriptionId = p.subscription_id === undefined ? undefined : String(p.subscription_id);
  const orderId = p.order_id === undefined ? undefined : String(p.order_id);
  const subscription = subscriptionId ? await q.selectFrom("subscriptions").selectAll().where("id", "=", subscriptionId).executeTakeFirst() : undefined;
  if (subscriptionId && !subscription) throw new ApiError("NOT_FOUND", `query parameter subscription_id: subscription ${subscriptionId} not found`);
  const order = orderId ? await q.selectFrom("orders").selectAll().where("id", "=", orderId).executeTakeFirst() : undefined;
  if (orderId && !order) throw new ApiError("NOT_FOUND", `query parameter order_id: order ${orderId} not found`);
  const group = (p.group_by ?? "license_id") as UsageGroup;
  const scope: ParsedParams = pick(p, "subscription_id", "order_id", "from", "to");
  const licenses = await licenseStatuses(q, scope, now);
  return {
    subscription: subscription ? subscriptionView(subscription) : null,
    order: order ? orderView(order) : null,
    window: windowView(p),
    group_by: group,
    licenses: { total: licenses.length, by_status: countByStatus(licenses), rows: licenses.slice(0, clampLimit(numberOr(p.limit))) },
    usage: { totals: await usageTotals(q, scope), by_group: await usageByGroupAndFeature(q, scope, group) },
  };
}

function pick(p: ParsedParams, ...keys: string[]): ParsedParams {
  const out: ParsedParams = {};
  for (const k of keys) if (p[k] !== undefined) out[k] = p[k]!;
  return out;
}

const numberOr = (v: string | number | undefined): number | undefined => (v === undefined ? undefined : Number(v));

// ---- snapshots (the frozen exports) ----

interface Series {
  title: string;
  labels: string[];
  values: number[];
}

/** The largest `CHART_MAX_POINTS - 1` categories by value (ties by label), the rest as "(other)". */
function topSeries(title: string, points: [string, number][]): Series {
  const sorted = [...points].sort((a, b) => b[1] - a[1] || cmp(a[0], b[0]));
  if (sorted.length > CHART_MAX_POINTS) {
    const rest = sorted.splice(CHART_MAX_POINTS - 1);
    sorted.push(["(other)", rest.reduce((s, [, v]) => s + v, 0)]);
  }
  return { title, labels: sorted.map(([l]) => l), values: sorted.map(([, v]) => v) };
}

/** A time series in order; beyond CHART_MAX_POINTS, neighbouring points are added together (labelled by the first). */
function timeSeries(title: string, points: [string, number][]): Series {
  const per = Math.max(1, Math.ceil(points.length / CHART_MAX_POINTS));
  const labels: string[] = [];
  const values: number[] = [];
  for (let i = 0; i < points.length; i += per) {
    const chunk = points.slice(i, i + per);
    labels.push(chunk[0]![0]);
    values.push(chunk.reduce((s, [, v]) => s + v, 0));
  }
  return { title: per > 1 ? `${title} (${per} buckets per point)` : title, labels, values };
}

function sumBy<T>(rows: T[], label: (r: T) => string, value: (r: T) => number): [string, number][] {
  const m = new Map<string, number>();
  for (const r of rows) m.set(label(r), (m.get(label(r)) ?? 0) + value(r));
  return [...m.entries()];
}

const orNone = (v: string | null): string => v ?? "(none)";

/**
 * The whole report of `kind` for `filters` at `now`: no pagination (the ledger holds every matching
 * row up to LEDGER_SNAPSHOT_CAP, newest first, and says whether it was truncated), rows in a
 * deterministic order, numbers as numbers, times RFC 3339 UTC. `filters` are validated again.
 */
export async function takeSnapshot(q: Q, kind: ReportKind, filters: ReportFilters, now: number): Promise<ReportSnapshot> {
  const p = parseReportFilters(kind, filters);
  const base = { report_kind: kind, generated_at: iso(now), filters: p };
  switch (kind) {
    case "usage-summary": {
      const summary = await usageSummary(q, p);
      const rows = summary.rows;
      const chart =
        summary.bucket !== null
          ? timeSeries(
              `Consumed amount per ${summary.bucket} bucket`,
              sumBy(
                rows,
                (r) => r.bucket_start ?? "",
                (r) => r.consumed_amount,
              ).sort((a, b) => cmp(a[0], b[0])),
            )
          : summary.group_by !== null
            ? topSeries(
                `Consumed amount per ${summary.group_by}`,
                sumBy(
                  rows,
                  (r) => orNone(r.group),
                  (r) => r.consumed_amount,
                ),
              )
            : { title: "Consumed amount", labels: ["total"], values: [summary.totals.consumed_amount] };
      return {
        ...base,
        summary,
        table: {
          columns: ["bucket_start", "group", "consumed_amount", "consume_count", "validate_count", "check_count"],
          rows: rows.map((r) => [r.bucket_start, r.group, r.consumed_amount, r.consume_count, r.validate_count, r.check_count]),
        },
        chart,
      };
    }
    case "usage-ledger": {
      const { cursor: _c, limit: _l, ...all } = p;
      const { rows, nextCursor } = await ledgerRows(q, all, LEDGER_SNAPSHOT_CAP);
      const summary = await ledgerSnapshotSummary(q, p, rows.length, nextCursor !== null);
      return {
        ...base,
        summary,
        table: { columns: [...LEDGER_COLUMNS], rows: rows.map((r) => LEDGER_COLUMNS.map((c) => r[c] as ReportCell)) },
        chart: topSeries(
          "Consumed amount per feature",
          sumBy(
            rows,
            (r: LedgerRow) => r.feature_code,
            (r) => r.amount,
          ),
        ),
      };
    }
    case "license-audit": {
      const summary = await licenseAudit(q, p, now);
      return {
        ...base,
        summary,
        table: activityTable(summary.events.rows),
        chart: topSeries(
          "Consumed amount per feature",
          summary.usage.by_feature.map((f) => [f.feature_code, f.consumed_amount]),
        ),
      };
    }
    case "customer-summary": {
      const summary = await customerSummary(q, p, now);
      return {
        ...base,
        summary,
        table: {
          columns: ["feature_code", "consumed_amount", "consume_count"],
          rows: summary.usage.by_feature.map((f) => [f.feature_code, f.consumed_amount, f.consume_count]),
        },
        chart: { title: "Licenses by status", labels: [...LICENSE_STATUSES], values: LICENSE_STATUSES.map((s) => summary.licenses.by_status[s]) },
      };
    }
    case "subscription-settlement": {
      const summary = await subscriptionSettlement(q, p, now);
      return {
        ...base,
        summary,
        table: {
          columns: ["group", "feature_code", "consumed_amount", "consume_count"],
          rows: summary.usage.by_group.map((g) => [g.group, g.feature_code, g.consumed_amount, g.consume_count]),
        },
        chart: topSeries(
          `Consumed amount per ${summary.group_by}`,
          sumBy(
            summary.usage.by_group,
            (g) => orNone(g.group),
            (g) => g.consumed_amount,
          ),
        ),
      };
    }
  }
}

export const ACTIVITY_COLUMNS = [
  "occurred_at",
  "action",
  "source",
  "result_class",
  "status_code",
  "error_code",
  "license_id",
  "feature_code",
  "request_id",
] as const satisfies readonly (keyof Activity)[];

function activityTable(rows: Activity[]): { columns: string[]; rows: ReportCell[][] } {
  return { columns: [...ACTIVITY_COLUMNS], rows: rows.map((r) => ACTIVITY_COLUMNS.map((c) => r[c] as ReportCell)) };
}
