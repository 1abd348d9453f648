// Reporting reads (NOTES §19, beyond the v1 contract), scope report:read: the normalised activity
// feed, the usage ledger (both cursor lists, newest first) and four summary reports. Every read
// validates its query with parseParams/parseReportFilters (the same checks an export's filters get)
// and every summary route answers the object takeSnapshot() freezes into an export. docs/reporting.md
// describes each field and how it is derived.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { type TSchema, Type } from "@sinclair/typebox";
import { LICENSE_STATUSES } from "../../domain/license-status.js";
import { responseMeta } from "../../http/envelope.js";
import { DateTime, errorResponses, ResponseMeta, StringEnum } from "../../http/schemas.js";
import { clampLimit } from "../../store/pagination.js";
import { ACTIVITY_PARAMS, ACTIVITY_SOURCES, listActivities, RESULT_CLASSES } from "../../reporting/activities.js";
import { parseParams } from "../../reporting/params.js";
import { customerSummary, licenseAudit, parseReportFilters, subscriptionSettlement, usageSummary } from "../../reporting/reports.js";
import { BUCKETS, LEDGER_ACTIONS, ledgerRows, USAGE_GROUPS } from "../../reporting/usage.js";
import { MANAGEMENT_ERRORS } from "./common.js";
import { Customer } from "./customers.js";
import { License } from "./licenses.js";
import { Order } from "./orders.js";
import { Subscription } from "./subscriptions.js";

const Nullable = <T extends TSchema>(t: T, description?: string) => Type.Union([t, Type.Null()], description ? { description } : {});
const NullableString = (description?: string) => Nullable(Type.String(), description);

// ---- query parameters (documentation and a first check; parseParams decides) ----

const Id = (what: string) => Type.String({ minLength: 1, maxLength: 200, description: `Only rows of this ${what} id.` });
const Time = (description: string) => Type.String({ format: "date-time", description });
const From = Time("RFC 3339; rows at or after this time (inclusive).");
const To = Time("RFC 3339; rows before this time (exclusive). Must not be before `from`.");
const Limit = (description: string) => Type.Integer({ minimum: 1, description });
const Cursor = Type.String({ description: "page_info.next_cursor of the previous page." });
const PageLimit = Limit("Page size; defaults to 50 and is clamped to 200.");
const GroupBy = StringEnum(USAGE_GROUPS, { description: "Split the totals by this field." });
const strict = { additionalProperties: false } as const;

const UsageFilters = {
  product_id: Type.Optional(Id("product")),
  customer_id: Type.Optional(Id("customer")),
  license_id: Type.Optional(Id("license")),
  order_id: Type.Optional(Id("order")),
  subscription_id: Type.Optional(Id("subscription")),
  feature_code: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "Only usage of this feature code." })),
};

const ActivitiesQuery = Type.Object(
  {
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(PageLimit),
    from: Type.Optional(From),
    to: Type.Optional(To),
    action: Type.Optional(Type.String({ description: "An audit event type (docs/events.md), e.g. usage.consumed." })),
    source: Type.Optional(StringEnum(ACTIVITY_SOURCES)),
    ...UsageFilters,
    request_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "meta.request_id of the request that caused the event." })),
    result_class: Type.Optional(StringEnum(RESULT_CLASSES)),
    status_code: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, description: "The HTTP status the event's request was answered with." })),
  },
  strict,
);

const UsageSummaryQuery = Type.Object(
  {
    from: Type.Optional(From),
    to: Type.Optional(To),
    group_by: Type.Optional(GroupBy),
    bucket: Type.Optional(StringEnum(BUCKETS, { description: "Split the totals into UTC hours or days." })),
    ...UsageFilters,
  },
  strict,
);

const UsageLedgerQuery = Type.Object(
  {
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(PageLimit),
    from: Type.Optional(From),
    to: Type.Optional(To),
    action: Type.Optional(StringEnum(LEDGER_ACTIONS, { description: "The ledger's only action today." })),
    ...UsageFilters,
  },
  strict,
);

const LicenseAuditQuery = Type.Object(
  {
    license_id: Type.String({ minLength: 1, maxLength: 200, description: "The license (required)." }),
    from: Type.Optional(From),
    to: Type.Optional(To),
    limit: Type.Optional(Limit("Most events listed (newest first); defaults to 50, clamped to 200.")),
  },
  strict,
);

const CustomerSummaryQuery = Type.Object(
  {
    customer_id: Type.String({ minLength: 1, maxLength: 200, description: "The customer (required)." }),
    from: Type.Optional(From),
    to: Type.Optional(To),
    limit: Type.Optional(Limit("Most recent activities listed; defaults to 50, clamped to 200.")),
  },
  strict,
);

const SettlementQuery = Type.Object(
  {
    subscription_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "The subscription; this or order_id is required (both: licenses of both)." })),
    order_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "The order; this or subscription_id is required." })),
    from: Type.Optional(From),
    to: Type.Optional(To),
    group_by: Type.Optional(StringEnum(USAGE_GROUPS, { description: "Split usage by this field, then by feature code; default license_id." })),
    limit: Type.Optional(Limit("Most licenses listed (by id); defaults to 50, clamped to 200.")),
  },
  strict,
);

// ---- response shapes ----

const PageInfo = Type.Object({ next_cursor: Nullable(Type.String(), "Pass as `cursor` for the next (older) page; null on the last page.") });

const Activity = Type.Object({
  sequence: Type.Integer({ description: "The audit event's sequence (GET /api/v1/events)." }),
  action: Type.String({ description: "The event type." }),
  source: StringEnum(ACTIVITY_SOURCES, { description: "runtime (a license key), management (an API key), system (the server itself)." }),
  resource_type: Type.String(),
  resource_id: NullableString(),
  license_id: NullableString("The license the event concerns."),
  product_id: NullableString(),
  customer_id: NullableString("From the license's current record when the event concerns a license."),
  order_id: NullableString(),
  subscription_id: NullableString(),
  feature_code: NullableString(),
  request_id: NullableString(),
  result_class: StringEnum(RESULT_CLASSES),
  status_code: Nullable(Type.Integer(), "The HTTP status the request was answered with; null for system events."),
  error_code: NullableString("The error code of a denial; null on success."),
  occurred_at: DateTime,
});

const Window = Type.Object({ from: Nullable(DateTime), to: Nullable(DateTime) }, { description: "The window as asked; null = open." });
const UsageTotals = Type.Object({ consumed_amount: Type.Integer(), consume_count: Type.Integer() });
const FeatureUsage = Type.Object({ feature_code: Type.String(), consumed_amount: Type.Integer(), consume_count: Type.Integer() });
const CallCounts = Type.Object({ validate_count: Type.Integer(), check_count: Type.Integer() });
const ByLicenseStatus = Type.Object(Object.fromEntries(LICENSE_STATUSES.map((s) => [s, Type.Integer()])));

const UsageSummary = Type.Object({
  window: Window,
  group_by: Nullable(StringEnum(USAGE_GROUPS)),
  bucket: Nullable(StringEnum(BUCKETS)),
  totals: Type.Object({
    consumed_amount: Type.Integer(),
    consume_count: Type.Integer(),
    validate_count: Nullable(Type.Integer(), "Successful validate calls; null with a feature_code filter (calls have no feature)."),
    check_count: Nullable(Type.Integer()),
  }),
  rows: Type.Array(
    Type.Object({
      group: NullableString("The group_by value (null: none set, or the license has none)."),
      bucket_start: Nullable(DateTime, "Start of the UTC hour or day; null without bucket."),
      consumed_amount: Type.Integer(),
      consume_count: Type.Integer(),
      validate_count: Nullable(Type.Integer(), "null when grouped by feature_code or filtered by it."),
      check_count: Nullable(Type.Integer()),
    }),
  ),
});

const LedgerRow = Type.Object({
  event_id: Type.String({ description: "The client's event_id of the consume." }),
  action: StringEnum(LEDGER_ACTIONS),
  license_id: Type.String(),
  product_id: Type.String(),
  customer_id: NullableString(),
  order_id: NullableString(),
  subscription_id: NullableString(),
  feature_id: Type.String(),
  feature_code: Type.String(),
  device_id: NullableString(),
  amount: Type.Integer(),
  occurred_at: DateTime,
});

const LicenseAudit = Type.Object({
  license: License,
  window: Window,
  devices: Type.Object({
    total: Type.Integer(),
    active: Type.Integer(),
    by_status: Type.Object({
      active: Type.Integer(),
      deactivated: Type.Integer(),
      blacklisted: Type.Integer(),
      reset: Type.Integer(),
      expired: Type.Integer(),
    }),
  }),
  usage: Type.Object({ totals: UsageTotals, by_feature: Type.Array(FeatureUsage) }),
  runtime_calls: CallCounts,
  events: Type.Object({ total: Type.Integer({ description: "Events in the window." }), rows: Type.Array(Activity) }),
});

const CustomerSummary = Type.Object({
  customer: Customer,
  window: Window,
  licenses: Type.Object({ total: Type.Integer(), by_status: ByLicenseStatus }),
  usage: Type.Object({ totals: UsageTotals, by_feature: Type.Array(FeatureUsage) }),
  runtime_calls: CallCounts,
  recent_activity: Type.Array(Activity),
});

const SettlementLicense = Type.Object({
  id: Type.String(),
  product_id: Type.String(),
  customer_id: NullableString(),
  order_id: NullableString(),
  subscription_id: NullableString(),
  status: StringEnum(LICENSE_STATUSES),
});

const SubscriptionSettlement = Type.Object({
  subscription: Nullable(Subscription),
  order: Nullable(Order),
  window: Window,
  group_by: StringEnum(USAGE_GROUPS),
  licenses: Type.Object({ total: Type.Integer(), by_status: ByLicenseStatus, rows: Type.Array(SettlementLicense) }),
  usage: Type.Object({
    totals: UsageTotals,
    by_group: Type.Array(Type.Object({ group: NullableString(), feature_code: Type.String(), consumed_amount: Type.Integer(), consume_count: Type.Integer() })),
  }),
});

const data = <T extends TSchema>(t: T) => Type.Object({ data: t, meta: ResponseMeta });
const page = <T extends TSchema>(t: T) => Type.Object({ data: Type.Array(t), page_info: PageInfo, meta: ResponseMeta });
const ERRORS = errorResponses(...MANAGEMENT_ERRORS, "INVALID_QUERY");
const ERRORS_404 = errorResponses(...MANAGEMENT_ERRORS, "INVALID_QUERY", "NOT_FOUND");
const tags = ["reports"];
const scope = "report:read";

export const reportingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const db = () => app.lk.store.db;
  const now = () => app.lk.clock.now();

  app.get(
    "/activities",
    {
      config: { scope },
      schema: {
        operationId: "listActivities",
        summary: "Normalised activity feed across runtime and management, newest first",
        tags,
        querystring: ActivitiesQuery,
        response: { 200: page(Activity), ...ERRORS },
      },
    },
    async (req) => {
      const p = parseParams(ACTIVITY_PARAMS, req.query);
      const r = await listActivities(db(), p, clampLimit(p.limit === undefined ? undefined : Number(p.limit)));
      return { data: r.rows, page_info: { next_cursor: r.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.get(
    "/reports/usage-summary",
    {
      config: { scope },
      schema: {
        operationId: "getUsageSummary",
        summary: "Consumed amount, consume count and validate/check calls, grouped and bucketed",
        tags,
        querystring: UsageSummaryQuery,
        response: { 200: data(UsageSummary), ...ERRORS },
      },
    },
    async (req) => ({ data: await usageSummary(db(), parseReportFilters("usage-summary", req.query)), meta: responseMeta(req) }),
  );

  app.get(
    "/reports/usage-ledger",
    {
      config: { scope },
      schema: {
        operationId: "listUsageLedger",
        summary: "One row per counted consume, newest first",
        tags,
        querystring: UsageLedgerQuery,
        response: { 200: page(LedgerRow), ...ERRORS },
      },
    },
    async (req) => {
      const p = parseReportFilters("usage-ledger", req.query);
      const r = await ledgerRows(db(), p, clampLimit(p.limit === undefined ? undefined : Number(p.limit)));
      return { data: r.rows, page_info: { next_cursor: r.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.get(
    "/reports/license-audit",
    {
      config: { scope },
      schema: {
        operationId: "getLicenseAudit",
        summary: "A license's evidence: the license, devices, usage, calls and events in the window",
        tags,
        querystring: LicenseAuditQuery,
        response: { 200: data(LicenseAudit), ...ERRORS_404 },
      },
    },
    async (req) => ({ data: await licenseAudit(db(), parseReportFilters("license-audit", req.query), now()), meta: responseMeta(req) }),
  );

  app.get(
    "/reports/customer-summary",
    {
      config: { scope },
      schema: {
        operationId: "getCustomerSummary",
        summary: "A customer's rollup: licenses by status, usage per feature, calls, recent activity",
        tags,
        querystring: CustomerSummaryQuery,
        response: { 200: data(CustomerSummary), ...ERRORS_404 },
      },
    },
    async (req) => ({ data: await customerSummary(db(), parseReportFilters("customer-summary", req.query), now()), meta: responseMeta(req) }),
  );

  app.get(
    "/reports/subscription-settlement",
    {
      config: { scope },
      schema: {
        operationId: "getSubscriptionSettlement",
        summary: "The licenses under a subscription or order and their usage per group and feature",
        tags,
        querystring: SettlementQuery,
        response: { 200: data(SubscriptionSettlement), ...ERRORS_404 },
      },
    },
    async (req) => ({
      data: await subscriptionSettlement(db(), parseReportFilters("subscription-settlement", req.query), now()),
      meta: responseMeta(req),
    }),
  );
};
