// Reporting reads (NOTES §19): the activity feed, usage-summary, usage-ledger, license-audit,
// customer-summary and subscription-settlement, over >= 10,000 consumption rows (bulk-inserted, plus
// real consumes through POST /api/v1/license/consume) on every engine. The summaries' totals must
// equal the sum of every ledger row fetched page by page with the same filters; each activity filter
// must select exactly the rows of the unfiltered feed that carry that value; each report's snapshot
// summary must be the object its live read answers.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { REPORT_KINDS, type ReportKind } from "../src/reporting/types.js";
import { successStatus } from "../src/reporting/activities.js";
import { CHART_MAX_POINTS, parseReportFilters, takeSnapshot } from "../src/reporting/reports.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, type Reply, startHarness } from "./helpers/harness.js";

const HOUR = 3_600_000;
const DAY = 86_400_000;
const BULK_ROWS = 10_200;
/** Bulk rows are spread over the 10 days before this, on 10-minute marks (so many share a time). */
const BULK_END = Date.parse("2026-03-01T00:00:00.000Z");
const BULK_START = BULK_END - 10 * DAY;

/** A small deterministic PRNG, so every run (and engine) sees the same data. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Lic {
  id: string;
  key: string;
  product_id: string;
  customer_id: string | null;
  order_id: string | null;
  subscription_id: string | null;
  features: { id: string; code: string }[];
}

// biome-ignore lint/suspicious/noExplicitAny: parsed response bodies
type Json = any;

for (const engine of ENGINES) {
  describe(`reporting reads [${engine}]`, () => {
    let h: Harness;
    let n = 0;
    const lic: Record<string, Lic> = {};
    const customers: Record<string, string> = {};
    let subscriptionId = "";
    let order1 = "";
    let order2 = "";
    /** Every runtime_call_counts row inserted. */
    const calls: { license_id: string; hour_start: number; operation: "validate" | "check"; calls: number }[] = [];

    const ok = (r: Reply, what: string): Json => {
      assert.ok(r.status >= 200 && r.status < 300, `${what} → ${r.status} ${r.text}`);
      return r.json.data;
    };
    const get = (url: string) => h.request({ url });
    const qs = (params: Record<string, string | number | undefined>) =>
      Object.entries(params)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
        .join("&");
    const invalid = async (url: string, param: string) => {
      const r = await get(url);
      assert.equal(r.status, 400, `${url} → ${r.status} ${r.text}`);
      assert.equal(r.json.error.code, "INVALID_QUERY", r.text);
      assert.ok(r.json.error.detail.includes(param), `${url}: detail names ${param}: ${r.json.error.detail}`);
      assert.ok(r.json.meta.request_id);
    };

    /** Every page of a cursor list (asserting no row repeats); returns the rows in order. */
    async function allPages(path: string, params: Record<string, string | number | undefined>, limit = 200, key: (r: Json) => string = JSON.stringify) {
      const rows: Json[] = [];
      const seen = new Set<string>();
      let cursor: string | undefined;
      for (let i = 0; i < 1000; i++) {
        const r = await get(`${path}?${qs({ ...params, limit, cursor })}`);
        assert.equal(r.status, 200, r.text);
        assert.ok(r.json.data.length <= Math.min(limit, 200));
        for (const row of r.json.data) {
          const k = key(row);
          assert.ok(!seen.has(k), `row seen twice: ${k}`);
          seen.add(k);
          rows.push(row);
        }
        cursor = r.json.page_info.next_cursor ?? undefined;
        if (!cursor) return rows;
        assert.equal(r.json.data.length, Math.min(limit, 200), "only the last page is short");
      }
      throw new Error("too many pages");
    }
    const ledgerKey = (r: Json) => `${r.license_id}/${r.event_id}`;
    const ledger = (params: Record<string, string | undefined>, limit = 200) => allPages("/api/v1/reports/usage-ledger", params, limit, ledgerKey);

    before(async () => {
      h = await startHarness(engine);
      const post = async (url: string, body: unknown) => ok(await h.request({ url, body }), url);
      for (const c of ["c1", "c2", "c3"]) customers[c] = (await post("/api/v1/customers", { name: `Customer ${c}`, code: c })).id;
      const products: Record<string, { id: string; policy: string; features: { id: string; code: string }[] }> = {};
      for (const [p, codes] of [
        ["p1", ["fa", "fb", "fc"]],
        ["p2", ["fa", "fd"]],
      ] as const) {
        const id = (await post("/api/v1/products", { name: p, code: p })).id;
        const policy = (await post(`/api/v1/products/${id}/policies`, { name: "Policy", code: `pol-${p}`, license_type: "subscription", max_activations: 5 })).id;
        const features = [];
        for (const code of codes) features.push({ id: (await post(`/api/v1/products/${id}/features`, { name: code, code })).id as string, code });
        products[p] = { id, policy, features };
      }
      const p1 = products.p1!;
      const p2 = products.p2!;
      subscriptionId = (
        await post(`/api/v1/products/${p1.id}/subscriptions`, {
          customer_id: customers.c1,
          external_system: "stripe",
          external_id: "sub-1",
          status: "active",
          current_period_start: "2026-02-01T00:00:00Z",
          current_period_end: "2026-04-01T00:00:00Z",
        })
      ).id;
      order1 = (await post(`/api/v1/products/${p1.id}/orders`, { customer_id: customers.c1, subscription_id: subscriptionId, external_system: "stripe", external_id: "o-1", status: "paid" })).id;
      order2 = (await post(`/api/v1/products/${p2.id}/orders`, { customer_id: customers.c2, external_system: "stripe", external_id: "o-2", status: "paid" })).id;
      const specs: [string, typeof p1, Record<string, string>][] = [
        ["L1", p1, { customer_id: customers.c1!, order_id: order1 }],
        ["L2", p1, { customer_id: customers.c1!, subscription_id: subscriptionId }],
        ["L3", p1, { customer_id: customers.c2! }],
        ["L4", p2, { customer_id: customers.c2!, order_id: order2 }],
        ["L5", p2, { customer_id: customers.c3! }],
        ["L6", p2, {}],
      ];
      for (const [name, p, extra] of specs) {
        const created = await post("/api/v1/licenses", { product_id: p.id, policy_id: p.policy, ...extra });
        const l = created.license;
        lic[name] = {
          id: l.id,
          key: created.license_key,
          product_id: l.product_id,
          customer_id: l.customer_id ?? null,
          order_id: l.order_id ?? null,
          subscription_id: l.subscription_id ?? null,
          features: p.features,
        };
        for (const f of p.features) await post(`/api/v1/licenses/${l.id}/features`, { feature_id: f.id });
      }
      assert.equal(lic.L1!.subscription_id, subscriptionId, "the order's subscription is inferred");

      // Bulk rows straight into the ledger table: six licenses, their products' features, 10 days.
      const rnd = prng(7);
      const names = Object.keys(lic);
      const rows = [];
      for (let i = 0; i < BULK_ROWS; i++) {
        const l = lic[names[Math.floor(rnd() * names.length)]!]!;
        const f = l.features[Math.floor(rnd() * l.features.length)]!;
        rows.push({
          license_id: l.id,
          event_id: `bulk-${String(i).padStart(5, "0")}`,
          feature_id: f.id,
          device_id: null,
          amount: 1 + Math.floor(rnd() * 50),
          response_status: 200,
          response_body: "{}",
          created_at: BULK_START + Math.floor(rnd() * 1440) * 600_000,
        });
      }
      for (let i = 0; i < rows.length; i += 1000) await h.lk.store.db.insertInto("consumption_events").values(rows.slice(i, i + 1000)).execute();

      // Hourly validate/check counts on the last two bulk days.
      for (const name of names) {
        for (let hour = 0; hour < 48; hour += 1 + Math.floor(rnd() * 3)) {
          for (const operation of ["validate", "check"] as const) {
            if (rnd() < 0.3) continue;
            calls.push({ license_id: lic[name]!.id, hour_start: BULK_END - 2 * DAY + hour * HOUR, operation, calls: 1 + Math.floor(rnd() * 20) });
          }
        }
      }
      await h.lk.store.db.insertInto("runtime_call_counts").values(calls).execute();

      // Real consumes (and a denial) an hour after the start, through the route.
      h.clock.advance(HOUR);
      for (const [name, code] of [
        ["L1", "fa"],
        ["L1", "fb"],
        ["L4", "fd"],
        ["L4", "fa"],
      ] as const) {
        for (let i = 0; i < 5; i++) {
          const r = await h.request({
            url: "/api/v1/license/consume",
            licenseKey: lic[name]!.key,
            idempotencyKey: `idem-${++n}`,
            body: { fingerprint: `machine-${name}`, feature_code: code, amount: i + 1, event_id: `live-${code}-${i}` },
          });
          assert.equal(r.status, 200, r.text);
          h.clock.advance(1000);
        }
      }
      const denied = await h.request({
        url: "/api/v1/license/consume",
        licenseKey: lic.L5!.key,
        idempotencyKey: `idem-${++n}`,
        body: { fingerprint: "machine-L5", feature_code: "fb", amount: 1, event_id: "denied-1" },
      });
      assert.equal(denied.status, 403, denied.text);
      // A real validate, counted by the batched flush into the current hour.
      const v = await h.request({ url: "/api/v1/license/validate", licenseKey: lic.L4!.key, body: { fingerprint: "machine-L4" } });
      assert.equal(v.status, 200, v.text);
      await h.lk.sideEffects.flush();
      const hourStart = Math.floor(h.clock.now() / HOUR) * HOUR;
      calls.push({ license_id: lic.L4!.id, hour_start: hourStart, operation: "validate", calls: 1 });

      // Later management writes for the activity feed: a suspension, a deleted customer.
      h.clock.advance(HOUR);
      ok(await h.request({ url: `/api/v1/licenses/${lic.L6!.id}/suspend`, body: {} }), "suspend");
      const gone = ok(await h.request({ url: "/api/v1/customers", body: { name: "Gone", code: "gone" } }), "customer");
      const del = await h.request({ method: "DELETE", url: `/api/v1/customers/${gone.id}` });
      assert.equal(del.status, 204, del.text);
      h.clock.advance(HOUR);
    });
    after(async () => h?.close());

    const licOf = (id: string) => Object.values(lic).find((l) => l.id === id)!;

    describe("usage-summary equals the sum of every usage-ledger row", () => {
      it("the ledger holds every counted consume once, newest first, across pages", async () => {
        const rows = await ledger({});
        const count = await h.lk.store.db
          .selectFrom("consumption_events")
          .select((eb) => eb.fn.countAll<number>().as("n"))
          .executeTakeFirstOrThrow();
        assert.equal(rows.length, Number(count.n));
        assert.ok(rows.length >= BULK_ROWS + 20);
        for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].occurred_at >= rows[i].occurred_at, "newest first");
        const live = rows.find((r: Json) => r.event_id === "live-fd-2");
        assert.deepEqual(Object.keys(live).sort(), [
          "action",
          "amount",
          "customer_id",
          "device_id",
          "event_id",
          "feature_code",
          "feature_id",
          "license_id",
          "occurred_at",
          "order_id",
          "product_id",
          "subscription_id",
        ]);
        assert.equal(live.action, "usage.consumed");
        assert.equal(live.license_id, lic.L4!.id);
        assert.equal(live.customer_id, customers.c2);
        assert.equal(live.order_id, order2);
        assert.equal(live.subscription_id, null);
        assert.equal(live.amount, 3);
        assert.match(live.device_id, /^dev_/);
        assert.match(live.occurred_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
        // A small page size walks ties on the same timestamp without skipping or repeating.
        const small = await ledger({ license_id: lic.L3!.id, from: "2026-02-25T00:00:00Z", to: "2026-02-26T00:00:00Z" }, 7);
        const big = await ledger({ license_id: lic.L3!.id, from: "2026-02-25T00:00:00Z", to: "2026-02-26T00:00:00Z" });
        assert.deepEqual(small.map(ledgerKey), big.map(ledgerKey));
        assert.ok(new Set(big.map((r: Json) => r.occurred_at)).size < big.length, "some rows share a timestamp");
      });

      const combos: { name: string; params: () => Record<string, string> }[] = [
        { name: "no filters, no grouping", params: () => ({}) },
        { name: "group_by customer_id, bucket 1d", params: () => ({ group_by: "customer_id", bucket: "1d" }) },
        {
          name: "group_by feature_code, product filter, window",
          params: () => ({ group_by: "feature_code", product_id: lic.L1!.product_id, from: "2026-02-22T06:00:00Z", to: "2026-02-27T18:30:00Z" }),
        },
        {
          name: "group_by license_id, bucket 1h, customer filter, one day",
          params: () => ({ group_by: "license_id", bucket: "1h", customer_id: customers.c2!, from: "2026-02-27T00:00:00Z", to: "2026-02-28T00:00:00Z" }),
        },
        { name: "group_by subscription_id, feature filter", params: () => ({ group_by: "subscription_id", feature_code: "fa" }) },
        { name: "group_by order_id, bucket 1d, order filter", params: () => ({ group_by: "order_id", bucket: "1d", order_id: order1 }) },
        { name: "group_by product_id, subscription filter", params: () => ({ group_by: "product_id", subscription_id: subscriptionId }) },
        { name: "license filter, bucket 1h, including the live consumes", params: () => ({ license_id: lic.L4!.id, bucket: "1h", from: "2026-02-28T00:00:00Z" }) },
      ];
      for (const combo of combos) {
        it(combo.name, async () => {
          const params = combo.params();
          const summary = ok(await get(`/api/v1/reports/usage-summary?${qs(params)}`), "summary");
          const { group_by: groupBy, bucket, ...filters } = params;
          const rows = await ledger(filters);
          assert.ok(rows.length > 0, "the combination selects rows");
          const bucketMs = bucket === "1h" ? HOUR : bucket === "1d" ? DAY : undefined;
          const expected = new Map<string, { amount: number; count: number }>();
          for (const r of rows) {
            const g = groupBy ? r[groupBy] : null;
            const b = bucketMs ? new Date(Math.floor(Date.parse(r.occurred_at) / bucketMs) * bucketMs).toISOString() : null;
            const k = JSON.stringify([g, b]);
            const e = expected.get(k) ?? { amount: 0, count: 0 };
            e.amount += r.amount;
            e.count += 1;
            expected.set(k, e);
          }
          const got = new Map<string, { amount: number; count: number }>();
          for (const r of summary.rows) {
            if (r.consume_count === 0) {
              assert.equal(r.consumed_amount, 0);
              continue; // a group/bucket with calls only
            }
            got.set(JSON.stringify([r.group, r.bucket_start]), { amount: r.consumed_amount, count: r.consume_count });
          }
          assert.deepEqual(got, expected);
          assert.equal(summary.totals.consumed_amount, rows.reduce((s: number, r: Json) => s + r.amount, 0));
          assert.equal(summary.totals.consume_count, rows.length);
          assert.equal(summary.group_by, groupBy ?? null);
          assert.equal(summary.bucket, bucket ?? null);
          assert.deepEqual(summary.window, { from: params.from ?? null, to: params.to ?? null });
          // Rows ordered by bucket, then group.
          const order = summary.rows.map((r: Json) => JSON.stringify([r.bucket_start ?? "", r.group ?? ""]));
          assert.deepEqual(order, [...order].sort());

          // validate/check counts of the licenses the filters select, unless a feature filter applies.
          if (params.feature_code !== undefined) {
            assert.equal(summary.totals.validate_count, null);
            assert.ok(summary.rows.every((r: Json) => r.validate_count === null && r.check_count === null));
            return;
          }
          const from = params.from ? Date.parse(params.from) : -Infinity;
          const to = params.to ? Date.parse(params.to) : Infinity;
          const selected = calls.filter((c) => {
            const l = licOf(c.license_id);
            return (
              c.hour_start >= from &&
              c.hour_start < to &&
              (!params.license_id || l.id === params.license_id) &&
              (!params.product_id || l.product_id === params.product_id) &&
              (!params.customer_id || l.customer_id === params.customer_id) &&
              (!params.order_id || l.order_id === params.order_id) &&
              (!params.subscription_id || l.subscription_id === params.subscription_id)
            );
          });
          const sum = (op: string) => selected.filter((c) => c.operation === op).reduce((s, c) => s + c.calls, 0);
          assert.equal(summary.totals.validate_count, sum("validate"));
          assert.equal(summary.totals.check_count, sum("check"));
          if (groupBy === "feature_code") {
            assert.ok(summary.rows.every((r: Json) => r.validate_count === null), "calls have no feature");
          } else {
            assert.equal(
              summary.rows.reduce((s: number, r: Json) => s + r.validate_count, 0),
              sum("validate"),
            );
            assert.equal(
              summary.rows.reduce((s: number, r: Json) => s + r.check_count, 0),
              sum("check"),
            );
          }
        });
      }

      it("counts the real validate of this hour (batched flush) in the 1h bucket", async () => {
        const s = ok(await get(`/api/v1/reports/usage-summary?${qs({ license_id: lic.L4!.id, bucket: "1h", from: "2026-03-01T00:00:00Z" })}`), "summary");
        const row = s.rows.find((r: Json) => r.bucket_start === "2026-03-01T13:00:00.000Z");
        assert.ok(row, JSON.stringify(s.rows));
        assert.equal(row.validate_count, 1);
        assert.equal(row.consume_count, 10);
        assert.equal(row.consumed_amount, 30);
      });

      it("refuses bad parameters with 400 INVALID_QUERY naming them", async () => {
        const u = "/api/v1/reports/usage-summary";
        await invalid(`${u}?group_by=device_id`, "group_by");
        await invalid(`${u}?bucket=1w`, "bucket");
        await invalid(`${u}?from=yesterday`, "from");
        await invalid(`${u}?to=2026-02-30T00:00:00Z`, "to");
        await invalid(`${u}?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z`, "from");
        await invalid(`${u}?limit=5`, "limit");
        await invalid(`${u}?cursor=abc`, "cursor");
        await invalid(`${u}?bogus=1`, "bogus");
        await invalid(`${u}?license_id=a&license_id=b`, "license_id");
        await invalid(`${u}?customer_id=`, "customer_id");
        // from == to is an empty window, not an error.
        const empty = ok(await get(`${u}?from=2026-02-25T00:00:00Z&to=2026-02-25T00:00:00Z`), "empty window");
        assert.deepEqual(empty.rows, []);
        assert.equal(empty.totals.consumed_amount, 0);
      });
    });

    describe("usage-ledger", () => {
      it("filters by action (usage.consumed only) and validates its parameters", async () => {
        const all = await ledger({ license_id: lic.L5!.id, from: "2026-02-28T00:00:00Z" });
        const withAction = await ledger({ license_id: lic.L5!.id, from: "2026-02-28T00:00:00Z", action: "usage.consumed" });
        assert.deepEqual(withAction, all);
        const u = "/api/v1/reports/usage-ledger";
        await invalid(`${u}?action=license.created`, "action");
        await invalid(`${u}?limit=0`, "limit");
        await invalid(`${u}?limit=abc`, "limit");
        await invalid(`${u}?group_by=customer_id`, "group_by");
        await invalid(`${u}?cursor=${Buffer.from(JSON.stringify({ ledger: [1, "../x", "e"] })).toString("base64url")}`, "cursor");
        await invalid(`${u}?cursor=${Buffer.from(JSON.stringify({ seq: 5 })).toString("base64url")}`, "cursor");
        const r = ok(await get(`${u}?limit=1000`), "clamped");
        assert.equal(r.length, 200, "limit is clamped to 200");
      });
    });

    describe("activities", () => {
      let feed: Json[] = [];
      before(async () => {
        feed = await allPages("/api/v1/activities", {}, 200, (r) => String(r.sequence));
      });

      it("pages through every audit event once, newest first", async () => {
        const count = await h.lk.store.db
          .selectFrom("audit_events")
          .select((eb) => eb.fn.countAll<number>().as("n"))
          .executeTakeFirstOrThrow();
        assert.equal(feed.length, Number(count.n));
        for (let i = 1; i < feed.length; i++) assert.ok(feed[i - 1].sequence > feed[i].sequence);
        const small = await allPages("/api/v1/activities", {}, 7, (r) => String(r.sequence));
        assert.deepEqual(
          small.map((r) => r.sequence),
          feed.map((r) => r.sequence),
        );
      });

      it("derives the normalised fields", () => {
        const consumed = feed.find((r) => r.action === "usage.consumed" && r.license_id === lic.L1!.id);
        assert.deepEqual(
          { ...consumed, sequence: 0, request_id: "x", occurred_at: "x" },
          {
            sequence: 0,
            action: "usage.consumed",
            source: "runtime",
            resource_type: "license",
            resource_id: lic.L1!.id,
            license_id: lic.L1!.id,
            product_id: lic.L1!.product_id,
            customer_id: customers.c1,
            order_id: order1,
            subscription_id: subscriptionId,
            feature_code: "fb",
            request_id: "x",
            result_class: "success",
            status_code: 200,
            error_code: null,
            occurred_at: "x",
          },
        );
        assert.match(consumed.request_id, /^req_/);
        const denied = feed.find((r) => r.action === "license.validation_denied" && r.license_id === lic.L5!.id);
        assert.equal(denied.result_class, "denied");
        assert.equal(denied.status_code, 403);
        assert.equal(denied.error_code, "FEATURE_NOT_ENTITLED");
        assert.equal(denied.feature_code, "fb");
        assert.equal(denied.customer_id, customers.c3);
        const created = feed.find((r) => r.action === "license.created" && r.license_id === lic.L4!.id);
        assert.equal(created.source, "management");
        assert.equal(created.status_code, 201);
        assert.equal(created.order_id, order2);
        const assigned = feed.find((r) => r.action === "license.feature_assigned" && r.license_id === lic.L2!.id);
        assert.equal(assigned.status_code, 200);
        assert.ok(assigned.feature_code);
        const suspended = feed.find((r) => r.action === "license.suspended");
        assert.equal(suspended.status_code, 200);
        assert.equal(suspended.license_id, lic.L6!.id);
        assert.equal(suspended.customer_id, null, "L6 has no customer");
        for (const [type, status] of [
          ["license.revoked", 200],
          ["api_key.revoked", 204],
          ["license.feature_removed", 204],
          ["custom_field_value.cleared", 204],
          ["webhook_endpoint.created", 201],
          ["usage.consumed", 200],
        ] as const) {
          assert.equal(successStatus(type), status, type);
        }
        const customerDeleted = feed.find((r) => r.action === "customer.deleted");
        assert.equal(customerDeleted.status_code, 204);
        assert.equal(customerDeleted.customer_id, customerDeleted.resource_id);
        assert.equal(customerDeleted.license_id, null);
        const order = feed.find((r) => r.action === "order.created" && r.resource_id === order2);
        assert.equal(order.order_id, order2);
        const bootstrap = feed.find((r) => r.action === "api_key.created" && r.source === "system");
        assert.ok(bootstrap, "the bootstrap key is a system event");
        assert.equal(bootstrap.status_code, null);
        assert.equal(bootstrap.result_class, "success");
      });

      const filters: { param: string; values: () => (string | number)[] }[] = [
        { param: "action", values: () => ["usage.consumed", "license.created", "license.suspended", "license.validation_denied"] },
        { param: "source", values: () => ["runtime", "management", "system"] },
        { param: "license_id", values: () => [lic.L1!.id, lic.L4!.id, lic.L6!.id] },
        { param: "product_id", values: () => [lic.L1!.product_id, lic.L4!.product_id] },
        { param: "customer_id", values: () => [customers.c1!, customers.c2!, customers.c3!] },
        { param: "order_id", values: () => [order1, order2] },
        { param: "subscription_id", values: () => [subscriptionId] },
        { param: "feature_code", values: () => ["fa", "fb", "fd"] },
        { param: "result_class", values: () => ["success", "denied"] },
        { param: "status_code", values: () => [200, 201, 204, 403] },
      ];
      for (const f of filters) {
        it(`filter ${f.param} selects exactly the rows carrying that value`, async () => {
          for (const value of f.values()) {
            const got = await allPages("/api/v1/activities", { [f.param]: value }, 200, (r) => String(r.sequence));
            const want = feed.filter((r) => r[f.param === "action" ? "action" : f.param] === value);
            assert.ok(want.length > 0, `${f.param}=${value} matches something`);
            assert.deepEqual(
              got.map((r) => r.sequence),
              want.map((r) => r.sequence),
              `${f.param}=${value}`,
            );
          }
        });
      }

      it("filter request_id, from/to, and several filters together", async () => {
        const one = feed.find((r) => r.action === "usage.consumed" && r.license_id === lic.L4!.id);
        const byRequest = await allPages("/api/v1/activities", { request_id: one.request_id }, 200, (r) => String(r.sequence));
        assert.deepEqual(
          byRequest.map((r) => r.sequence),
          feed.filter((r) => r.request_id === one.request_id).map((r) => r.sequence),
        );
        const from = "2026-03-01T13:00:00Z";
        const to = "2026-03-01T14:00:00Z";
        const windowed = await allPages("/api/v1/activities", { from, to }, 50, (r) => String(r.sequence));
        const want = feed.filter((r) => r.occurred_at >= "2026-03-01T13:00:00.000Z" && r.occurred_at < "2026-03-01T14:00:00.000Z");
        assert.ok(want.length >= 20);
        assert.deepEqual(
          windowed.map((r) => r.sequence),
          want.map((r) => r.sequence),
        );
        const combined = await allPages("/api/v1/activities", { from, to, customer_id: customers.c1!, action: "usage.consumed", feature_code: "fa" }, 2, (r) =>
          String(r.sequence),
        );
        assert.equal(combined.length, 5);
        assert.ok(combined.every((r) => r.license_id === lic.L1!.id));
      });

      it("refuses bad parameters with 400 INVALID_QUERY naming them", async () => {
        const u = "/api/v1/activities";
        await invalid(`${u}?source=cron`, "source");
        await invalid(`${u}?result_class=error`, "result_class");
        await invalid(`${u}?status_code=99`, "status_code");
        await invalid(`${u}?status_code=abc`, "status_code");
        await invalid(`${u}?action=license.exploded`, "action");
        await invalid(`${u}?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z`, "from");
        await invalid(`${u}?to=2026-13-01T00:00:00Z`, "to");
        await invalid(`${u}?event_type=usage.consumed`, "event_type");
        await invalid(`${u}?limit=0`, "limit");
        await invalid(`${u}?cursor=${Buffer.from(JSON.stringify({ seq: -1 })).toString("base64url")}`, "cursor");
        await invalid(`${u}?cursor=%00`, "cursor");
        await invalid(`${u}?request_id=${"x".repeat(201)}`, "request_id");
      });
    });

    describe("license-audit", () => {
      it("answers the license, devices, usage per feature, calls and events in the window", async () => {
        const l = lic.L1!;
        const r = ok(await get(`/api/v1/reports/license-audit?${qs({ license_id: l.id, limit: 3 })}`), "audit");
        assert.deepEqual(Object.keys(r).sort(), ["devices", "events", "license", "runtime_calls", "usage", "window"]);
        assert.equal(r.license.id, l.id);
        assert.equal(r.license.status, "active");
        assert.equal(r.license.customer_id, customers.c1);
        assert.equal("license_key" in r.license, false);
        assert.deepEqual(r.devices, { total: 1, active: 1, by_status: { active: 1, deactivated: 0, blacklisted: 0, reset: 0, expired: 0 } });
        const rows = await ledger({ license_id: l.id });
        assert.equal(r.usage.totals.consumed_amount, rows.reduce((s: number, x: Json) => s + x.amount, 0));
        assert.equal(r.usage.totals.consume_count, rows.length);
        assert.deepEqual(
          r.usage.by_feature.map((f: Json) => f.feature_code),
          [...new Set(rows.map((x: Json) => x.feature_code))].sort(),
        );
        for (const f of r.usage.by_feature) {
          assert.equal(f.consumed_amount, rows.filter((x: Json) => x.feature_code === f.feature_code).reduce((s: number, x: Json) => s + x.amount, 0));
        }
        const licCalls = calls.filter((c) => c.license_id === l.id);
        assert.deepEqual(r.runtime_calls, {
          validate_count: licCalls.filter((c) => c.operation === "validate").reduce((s, c) => s + c.calls, 0),
          check_count: licCalls.filter((c) => c.operation === "check").reduce((s, c) => s + c.calls, 0),
        });
        const events = feed(l.id);
        assert.equal(r.events.total, (await events).length);
        assert.deepEqual(r.events.rows, (await events).slice(0, 3));

        // A window narrows usage, calls and events alike.
        const w = ok(await get(`/api/v1/reports/license-audit?${qs({ license_id: l.id, from: "2026-03-01T13:00:00Z", to: "2026-03-01T14:00:00Z" })}`), "window");
        assert.deepEqual(w.window, { from: "2026-03-01T13:00:00Z", to: "2026-03-01T14:00:00Z" });
        assert.equal(w.usage.totals.consume_count, 10);
        assert.equal(w.usage.totals.consumed_amount, 30);
        assert.deepEqual(w.runtime_calls, { validate_count: 0, check_count: 0 });
        assert.ok(w.events.rows.every((e: Json) => e.occurred_at.startsWith("2026-03-01T13:")));
      });

      const feed = (licenseId: string) => allPages("/api/v1/activities", { license_id: licenseId }, 200, (r) => String(r.sequence));

      it("needs license_id (400), answers 404 for an unknown one, validates the rest", async () => {
        const u = "/api/v1/reports/license-audit";
        await invalid(u, "license_id");
        await invalid(`${u}?license_id=${lic.L1!.id}&limit=0`, "limit");
        await invalid(`${u}?license_id=${lic.L1!.id}&customer_id=${customers.c1}`, "customer_id");
        await invalid(`${u}?license_id=${lic.L1!.id}&from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z`, "from");
        const missing = await get(`${u}?license_id=lic_00000000000000000000000000`);
        assert.equal(missing.status, 404, missing.text);
        assert.equal(missing.json.error.code, "NOT_FOUND");
        assert.ok(missing.json.error.detail.includes("license_id"));
      });
    });

    describe("customer-summary", () => {
      it("answers licenses by status, usage per feature, calls and recent activity", async () => {
        const r = ok(await get(`/api/v1/reports/customer-summary?${qs({ customer_id: customers.c2!, limit: 4 })}`), "summary");
        assert.deepEqual(Object.keys(r).sort(), ["customer", "licenses", "recent_activity", "runtime_calls", "usage", "window"]);
        assert.equal(r.customer.id, customers.c2);
        assert.equal(r.customer.code, "c2");
        assert.deepEqual(r.licenses, { total: 2, by_status: { active: 2, suspended: 0, expired: 0, revoked: 0, grace_period: 0 } });
        const rows = await ledger({ customer_id: customers.c2! });
        assert.equal(r.usage.totals.consumed_amount, rows.reduce((s: number, x: Json) => s + x.amount, 0));
        assert.equal(r.usage.totals.consume_count, rows.length);
        assert.equal(
          r.usage.by_feature.reduce((s: number, f: Json) => s + f.consume_count, 0),
          rows.length,
        );
        const activity = await allPages("/api/v1/activities", { customer_id: customers.c2! }, 200, (x) => String(x.sequence));
        assert.deepEqual(r.recent_activity, activity.slice(0, 4));
        const none = ok(await get(`/api/v1/reports/customer-summary?${qs({ customer_id: customers.c3!, from: "2030-01-01T00:00:00Z" })}`), "future");
        assert.deepEqual(none.usage, { totals: { consumed_amount: 0, consume_count: 0 }, by_feature: [] });
        assert.deepEqual(none.recent_activity, []);
        assert.equal(none.licenses.total, 1, "licenses are counted as they are now, whatever the window");
      });

      it("needs customer_id (400), answers 404 for an unknown one", async () => {
        const u = "/api/v1/reports/customer-summary";
        await invalid(u, "customer_id");
        await invalid(`${u}?customer_id=${customers.c1}&limit=-3`, "limit");
        await invalid(`${u}?customer_id=${customers.c1}&bucket=1d`, "bucket");
        const missing = await get(`${u}?customer_id=cust_00000000000000000000000000`);
        assert.equal(missing.status, 404, missing.text);
        assert.equal(missing.json.error.code, "NOT_FOUND");
      });
    });

    describe("subscription-settlement", () => {
      it("answers the licenses under a subscription and their usage per group and feature", async () => {
        const r = ok(await get(`/api/v1/reports/subscription-settlement?${qs({ subscription_id: subscriptionId })}`), "settlement");
        assert.deepEqual(Object.keys(r).sort(), ["group_by", "licenses", "order", "subscription", "usage", "window"]);
        assert.equal(r.subscription.id, subscriptionId);
        assert.equal(r.order, null);
        assert.equal(r.group_by, "license_id");
        assert.deepEqual(
          r.licenses.rows.map((x: Json) => x.id),
          [lic.L1!.id, lic.L2!.id].sort(),
        );
        assert.equal(r.licenses.total, 2);
        const rows = await ledger({ subscription_id: subscriptionId });
        assert.equal(r.usage.totals.consumed_amount, rows.reduce((s: number, x: Json) => s + x.amount, 0));
        for (const g of r.usage.by_group) {
          const sel = rows.filter((x: Json) => x.license_id === g.group && x.feature_code === g.feature_code);
          assert.equal(g.consume_count, sel.length);
          assert.equal(g.consumed_amount, sel.reduce((s: number, x: Json) => s + x.amount, 0));
        }
        assert.equal(
          r.usage.by_group.reduce((s: number, g: Json) => s + g.consume_count, 0),
          rows.length,
        );

        const byOrder = ok(
          await get(`/api/v1/reports/subscription-settlement?${qs({ order_id: order1, group_by: "feature_code", from: "2026-02-25T00:00:00Z", limit: 1 })}`),
          "by order",
        );
        assert.equal(byOrder.order.id, order1);
        assert.equal(byOrder.subscription, null);
        assert.deepEqual(
          byOrder.licenses.rows.map((x: Json) => x.id),
          [lic.L1!.id],
        );
        const orderRows = await ledger({ order_id: order1, from: "2026-02-25T00:00:00Z" });
        assert.equal(byOrder.usage.totals.consume_count, orderRows.length);
        assert.ok(byOrder.usage.by_group.every((g: Json) => g.group === g.feature_code));

        const both = ok(await get(`/api/v1/reports/subscription-settlement?${qs({ order_id: order1, subscription_id: subscriptionId })}`), "both");
        assert.equal(both.licenses.total, 1, "both ids: the licenses linked to both");
      });

      it("needs subscription_id or order_id (400), answers 404 for unknown ones", async () => {
        const u = "/api/v1/reports/subscription-settlement";
        await invalid(u, "subscription_id");
        await invalid(`${u}?order_id=${order1}&group_by=device`, "group_by");
        await invalid(`${u}?order_id=${order1}&bucket=1h`, "bucket");
        for (const q of ["subscription_id=sub_00000000000000000000000000", "order_id=ord_00000000000000000000000000", `subscription_id=${subscriptionId}&order_id=nope`]) {
          const r = await get(`${u}?${q}`);
          assert.equal(r.status, 404, r.text);
          assert.equal(r.json.error.code, "NOT_FOUND");
        }
      });
    });

    describe("snapshots (what exports freeze)", () => {
      it("each kind's snapshot summary is the object its live read answers; tables and charts are bounded", async () => {
        const live: Record<ReportKind, [string, Record<string, string | number>]> = {
          "usage-summary": ["usage-summary", { group_by: "customer_id", bucket: "1h", from: "2026-02-26T00:00:00Z" }],
          "usage-ledger": ["usage-ledger", { customer_id: customers.c3! }],
          "license-audit": ["license-audit", { license_id: lic.L4!.id, limit: 5 }],
          "customer-summary": ["customer-summary", { customer_id: customers.c1! }],
          "subscription-settlement": ["subscription-settlement", { subscription_id: subscriptionId, group_by: "feature_code" }],
        };
        for (const kind of REPORT_KINDS) {
          const [path, params] = live[kind];
          const filters = parseReportFilters(kind, params);
          const snap = JSON.parse(JSON.stringify(await takeSnapshot(h.lk.store.db, kind, filters, h.clock.now())));
          assert.equal(snap.report_kind, kind);
          assert.equal(snap.generated_at, new Date(h.clock.now()).toISOString());
          assert.deepEqual(snap.filters, filters);
          assert.ok(snap.chart.labels.length <= CHART_MAX_POINTS && snap.chart.labels.length === snap.chart.values.length, kind);
          assert.ok(snap.chart.values.every((v: number) => typeof v === "number" && v >= 0), kind);
          assert.ok(snap.table.rows.every((row: unknown[]) => row.length === snap.table.columns.length), kind);
          if (kind === "usage-ledger") {
            const rows = await ledger(params as Record<string, string>);
            assert.equal(snap.table.rows.length, rows.length);
            assert.deepEqual(
              snap.table.rows.map((row: unknown[]) => Object.fromEntries(snap.table.columns.map((c: string, i: number) => [c, row[i]]))),
              rows,
            );
            assert.equal(snap.summary.row_count, rows.length);
            assert.equal(snap.summary.truncated, false);
            assert.equal(snap.summary.consumed_amount, rows.reduce((s: number, x: Json) => s + x.amount, 0));
            continue;
          }
          const r = ok(await get(`/api/v1/reports/${path}?${qs(params)}`), kind);
          assert.deepEqual(snap.summary, r, `${kind}: snapshot summary = live read`);
        }
      });

      it("a repeated snapshot of unchanged data is identical (deterministic order)", async () => {
        for (const kind of REPORT_KINDS) {
          const filters = parseReportFilters(
            kind,
            kind === "license-audit"
              ? { license_id: lic.L2!.id }
              : kind === "customer-summary"
                ? { customer_id: customers.c2! }
                : kind === "subscription-settlement"
                  ? { order_id: order2 }
                  : { from: "2026-02-28T00:00:00Z" },
          );
          const a = JSON.stringify(await takeSnapshot(h.lk.store.db, kind, filters, h.clock.now()));
          const b = JSON.stringify(await takeSnapshot(h.lk.store.db, kind, filters, h.clock.now()));
          assert.equal(a, b, kind);
        }
      });
    });
  });
}

describe("parseReportFilters", () => {
  it("accepts exactly each kind's parameters, keeps values as given, and names the bad one", () => {
    assert.deepEqual(parseReportFilters("usage-summary", { from: "2026-01-01T00:00:00Z", group_by: "feature_code", bucket: "1d", feature_code: "fa" }), {
      from: "2026-01-01T00:00:00Z",
      group_by: "feature_code",
      bucket: "1d",
      feature_code: "fa",
    });
    assert.deepEqual(parseReportFilters("usage-ledger", { limit: "25", action: "usage.consumed", to: "2026-01-01T00:00:00.5+02:00" }), {
      limit: 25,
      action: "usage.consumed",
      to: "2026-01-01T00:00:00.5+02:00",
    });
    assert.deepEqual(parseReportFilters("license-audit", { license_id: "lic_x", limit: 7, from: undefined }), { license_id: "lic_x", limit: 7 });
    const refused = (kind: ReportKind, raw: Record<string, unknown>, param: string) =>
      assert.throws(
        () => parseReportFilters(kind, raw),
        (e: Error & { code?: string; detail?: string }) => e.code === "INVALID_QUERY" && (e.detail ?? "").includes(`query parameter ${param}`),
        `${kind} ${JSON.stringify(raw)}`,
      );
    refused("license-audit", {}, "license_id");
    refused("customer-summary", { limit: 5 }, "customer_id");
    refused("subscription-settlement", { from: "2026-01-01T00:00:00Z" }, "subscription_id");
    refused("usage-summary", { cursor: "x" }, "cursor");
    refused("usage-summary", { limit: 3 }, "limit");
    refused("license-audit", { license_id: "lic_x", group_by: "license_id" }, "group_by");
    refused("customer-summary", { customer_id: "c", bucket: "1h" }, "bucket");
    refused("usage-ledger", { limit: 1.5 }, "limit");
    refused("usage-ledger", { limit: "0" }, "limit");
    refused("usage-ledger", { from: "2026-02-29T00:00:00Z" }, "from");
    refused("usage-ledger", { from: "2026-01-01" }, "from");
    refused("usage-ledger", { from: "2026-01-01T00:00:00Z", to: "2025-12-31T23:59:59Z" }, "from");
    refused("usage-ledger", { license_id: ["a", "b"] }, "license_id");
    refused("usage-ledger", { license_id: { id: "a" } }, "license_id");
    refused("usage-ledger", { action: "usage.quota_exceeded" }, "action");
    refused("usage-ledger", { cursor: "not-ours" }, "cursor");
    refused("subscription-settlement", { order_id: "o", bucket: "1d" }, "bucket");
  });
});
