// The operations view (NOTES §16, §21): GET /api/v1/ops/summary over the per-minute request counts
// (flushed to ops_request_minutes), GET /api/v1/ops/runtime-errors over the denials the audit feed
// records, GET /api/v1/ops/webhook-health over the delivery outbox, and the Prometheus catalogue on
// /metrics (read as text exposition). docs/operations.md must list exactly the metrics the registry has.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import { collectDefaultMetrics, Registry } from "prom-client";
import { MINUTE_MS } from "../src/clock.js";
import { RequestStats, RETENTION_MS } from "../src/observability/request-stats.js";
import { insertApiKey } from "../src/store/api-keys.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, type Reply, startHarness } from "./helpers/harness.js";

const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../docs/operations.md");
const LICENSE_READ_ONLY = "lkm_OpsLicenseReadOnly000000000000000000000";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition into samples (HELP/TYPE lines give the metric names). */
function parseExposition(text: string): { samples: Sample[]; names: Set<string> } {
  const samples: Sample[] = [];
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const meta = /^# TYPE (\S+) \S+$/.exec(line);
    if (meta) names.add(meta[1]!);
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, names };
}

for (const engine of ENGINES) {
  describe(`operations view and metrics [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
      await insertApiKey(h.lk.store.db, h.lk.hasher, { name: "license reader", token: LICENSE_READ_ONLY, scopes: ["license:read"] }, h.clock.now());
    });
    after(async () => h?.close());

    const scrape = async () => {
      const res = await h.request({ url: "/metrics", token: null });
      assert.equal(res.status, 200);
      return parseExposition(res.text);
    };
    /** The value of one sample (0 when absent); labels must match exactly. */
    const value = (s: { samples: Sample[] }, name: string, labels: Record<string, string> = {}) => {
      const hit = s.samples.find((x) => x.name === name && JSON.stringify(Object.entries(x.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
      return hit?.value ?? 0;
    };
    const summary = async () => {
      await h.lk.requestStats.flush();
      const res = await h.request({ url: "/api/v1/ops/summary" });
      assert.equal(res.status, 200, res.text);
      return res.json.data;
    };
    const runtimeErrors = async (query = "") => {
      await h.lk.sideEffects.flush();
      const res = await h.request({ url: `/api/v1/ops/runtime-errors${query}` });
      assert.equal(res.status, 200, res.text);
      return res.json.data;
    };
    interface SurfaceStats {
      surface: string;
      requests: number;
      errors_4xx: number;
      errors_5xx: number;
      error_rate: number;
      p99_ms: number | null;
    }
    const surface = (window: { surfaces: SurfaceStats[] }, name: string): SurfaceStats => {
      const found = window.surfaces.find((s) => s.surface === name);
      assert.ok(found, `no ${name} surface`);
      return found;
    };
    let idem = 0;
    const runtime = (op: string, key: string, body: Record<string, unknown>, needsKey = false) =>
      h.request({ url: `/api/v1/license/${op}`, licenseKey: key, body, ...(needsKey ? { idempotencyKey: `ops-${engine}-${++idem}` } : {}) });

    it("a burst of 25 scope-denied requests shows in licensekit_scope_denials_total and, after the flush, in ops/summary", async () => {
      const before = await scrape();
      const ids: string[] = [];
      for (let i = 0; i < 25; i++) {
        const res = await h.request({ url: "/api/v1/products", token: LICENSE_READ_ONLY, body: { name: `Denied ${i}`, code: `denied-${i}` } });
        assert.equal(res.status, 403);
        assert.equal(res.json.error.code, "TOKEN_SCOPE_DENIED");
        ids.push(String(res.headers["x-request-id"]));
      }
      // The same token where it holds the scope is not denied (and not counted).
      assert.equal((await h.request({ url: "/api/v1/licenses", token: LICENSE_READ_ONLY })).status, 200);

      const after = await scrape();
      assert.equal(value(after, "licensekit_scope_denials_total", { scope: "product:write" }) - value(before, "licensekit_scope_denials_total", { scope: "product:write" }), 25);
      assert.equal(
        value(after, "licensekit_management_requests_total", { operation: "createProduct", code: "TOKEN_SCOPE_DENIED" }) -
          value(before, "licensekit_management_requests_total", { operation: "createProduct", code: "TOKEN_SCOPE_DENIED" }),
        25,
      );
      assert.ok(value(after, "licensekit_management_requests_total", { operation: "listLicenses", code: "none" }) >= 1);
      assert.ok(value(after, "licensekit_request_duration_seconds_count", { surface: "management" }) >= value(before, "licensekit_request_duration_seconds_count", { surface: "management" }) + 26);

      // Nothing reaches the table before the flush; the flush writes one row for the burst.
      const rows = () =>
        h.lk.store.db.selectFrom("ops_request_minutes").selectAll().where("operation", "=", "createProduct").where("code", "=", "TOKEN_SCOPE_DENIED").execute();
      assert.equal((await rows()).length, 0);
      const s = await summary();
      const stored = await rows();
      assert.equal(stored.reduce((a, r) => a + Number(r.count), 0), 25);
      assert.ok(stored.every((r) => r.surface === "management" && Number(r.status) === 403));

      for (const window of [s.last_hour, s.last_day]) {
        assert.equal(window.scope_denials.total, 25);
        assert.deepEqual(window.scope_denials.by_scope, [{ scope: "product:write", count: 25 }]);
        const m = surface(window, "management");
        assert.ok(m.errors_4xx >= 25 && m.requests >= m.errors_4xx + 1, JSON.stringify(m));
        assert.ok(m.error_rate > 0 && m.error_rate <= 1);
        assert.equal(typeof m.p99_ms, "number");
      }
      assert.deepEqual(
        s.last_hour.surfaces.map((x: { surface: string }) => x.surface),
        ["management", "runtime", "system"],
      );
    });

    it("idempotency: a replay and a conflict are counted (metrics and summary)", async () => {
      const before = await scrape();
      const body = { name: "Idem product", code: `idem-${engine}` };
      const first = await h.request({ url: "/api/v1/products", body, idempotencyKey: "ops-idem-1" });
      assert.equal(first.status, 201, first.text);
      const replay = await h.request({ url: "/api/v1/products", body, idempotencyKey: "ops-idem-1" });
      assert.equal(replay.status, 201);
      assert.equal(replay.headers["idempotent-replayed"], "true");
      const conflict = await h.request({ url: "/api/v1/products", body: { ...body, name: "Other" }, idempotencyKey: "ops-idem-1" });
      assert.equal(conflict.status, 409);
      assert.equal(conflict.json.error.code, "IDEMPOTENCY_CONFLICT");

      const after = await scrape();
      assert.equal(value(after, "licensekit_idempotency_replays_total") - value(before, "licensekit_idempotency_replays_total"), 1);
      assert.equal(
        value(after, "licensekit_idempotency_conflicts_total", { code: "IDEMPOTENCY_CONFLICT" }) -
          value(before, "licensekit_idempotency_conflicts_total", { code: "IDEMPOTENCY_CONFLICT" }),
        1,
      );
      assert.equal(value(after, "licensekit_management_requests_total", { operation: "createProduct", code: "replay" }), 1);
      const s = await summary();
      assert.deepEqual(s.last_hour.idempotency, { conflicts: 1, in_progress: 0, replays: 1 });
      assert.deepEqual(s.last_day.idempotency, { conflicts: 1, in_progress: 0, replays: 1 });
    });

    it("runtime denials: grouped in ops/runtime-errors by code, operation and product with the answers' request ids; counted in the summary and the metrics", async () => {
      const before = await scrape();
      // LICENSE_INACTIVE on validate (a batched denial event), 7 times, one second apart.
      const suspended = await issueLicense(h);
      assert.equal((await h.request({ url: `/api/v1/licenses/${suspended.licenseId}/suspend`, method: "POST" })).status, 200);
      const inactiveIds: string[] = [];
      for (let i = 0; i < 7; i++) {
        const res = await runtime("validate", suspended.key, { fingerprint: "fp-inactive" });
        assert.equal(res.status, 403);
        assert.equal(res.json.error.code, "LICENSE_INACTIVE");
        assert.equal(res.json.meta.request_id, res.headers["x-request-id"]);
        inactiveIds.push(String(res.headers["x-request-id"]));
        h.clock.advance(1000);
      }
      // LICENSE_EXPIRED on check (twice) and on activate (once; its own group, under activateLicense).
      const expired = await issueLicense(h);
      await h.lk.store.db
        .updateTable("licenses")
        .set({ expires_at: h.clock.now() - 60_000 })
        .where("id", "=", expired.licenseId)
        .execute();
      const expiredIds: string[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await runtime("check", expired.key, { fingerprint: "fp-expired" });
        assert.equal(res.json.error.code, "LICENSE_EXPIRED");
        expiredIds.push(String(res.headers["x-request-id"]));
      }
      const act = await runtime("activate", expired.key, { fingerprint: "fp-expired" }, true);
      assert.equal(act.json.error.code, "LICENSE_EXPIRED");
      // ACTIVATION_LIMIT_EXCEEDED on validate (implicit binding with no free slot).
      const full = await issueLicense(h, { max_activations: 1 });
      assert.equal((await runtime("validate", full.key, { fingerprint: "fp-a" })).status, 200);
      const limit = await runtime("validate", full.key, { fingerprint: "fp-b" });
      assert.equal(limit.json.error.code, "ACTIVATION_LIMIT_EXCEEDED");

      const all = await runtimeErrors();
      const group = (code: string, productId: string) => all.groups.find((g: { code: string; product_id: string }) => g.code === code && g.product_id === productId);
      const inactive = group("LICENSE_INACTIVE", suspended.productId);
      assert.equal(inactive.operation, "validateLicense");
      assert.equal(inactive.count, 7);
      // The 5 newest, newest first.
      assert.deepEqual(inactive.sample_request_ids, inactiveIds.slice(2).reverse());
      assert.equal(Date.parse(inactive.last_seen_at) - Date.parse(inactive.first_seen_at), 6000);
      const exp = group("LICENSE_EXPIRED", expired.productId);
      assert.equal(exp.operation, "checkLicense");
      assert.equal(exp.count, 2);
      assert.deepEqual([...exp.sample_request_ids].sort(), [...expiredIds].sort());
      const expiredActivate = all.groups.find(
        (g: { code: string; product_id: string; operation: string }) => g.code === "LICENSE_EXPIRED" && g.product_id === expired.productId && g.operation === "activateLicense",
      );
      assert.deepEqual(expiredActivate.sample_request_ids, [act.headers["x-request-id"]]);
      const lim = group("ACTIVATION_LIMIT_EXCEEDED", full.productId);
      assert.equal(lim.operation, "validateLicense");
      assert.deepEqual(lim.sample_request_ids, [limit.headers["x-request-id"]]);
      assert.equal(all.total_denials, 11);
      assert.equal(all.total_groups, 4);
      assert.equal(all.groups[0].code, "LICENSE_INACTIVE", "most frequent first");

      // Filters.
      const byProduct = await runtimeErrors(`?product_id=${expired.productId}`);
      assert.deepEqual(
        byProduct.groups.map((g: { code: string; operation: string }) => `${g.code} ${g.operation}`),
        ["LICENSE_EXPIRED checkLicense", "LICENSE_EXPIRED activateLicense"],
      );
      assert.deepEqual(
        (await runtimeErrors("?code=ACTIVATION_LIMIT_EXCEEDED")).groups.map((g: { product_id: string }) => g.product_id),
        [full.productId],
      );
      assert.equal((await runtimeErrors("?operation=checkLicense")).total_denials, 2);
      assert.equal((await runtimeErrors("?operation=validateLicense&limit=1")).groups.length, 1);
      assert.equal((await runtimeErrors("?operation=validateLicense&limit=1")).total_groups, 2);
      const later = new Date(h.clock.now() + 60_000).toISOString();
      const empty = await runtimeErrors(`?from=${encodeURIComponent(later)}&to=${encodeURIComponent(new Date(h.clock.now() + 120_000).toISOString())}`);
      assert.deepEqual(empty.groups, []);
      assert.equal(empty.from, later);

      // Summary: every runtime 4xx by code, including the activate that no event records.
      const s = await summary();
      const byCode = Object.fromEntries(s.last_hour.runtime_denials.by_code.map((c: { code: string; count: number }) => [c.code, c.count]));
      assert.deepEqual(byCode, { LICENSE_INACTIVE: 7, LICENSE_EXPIRED: 3, ACTIVATION_LIMIT_EXCEEDED: 1 });
      assert.equal(s.last_hour.runtime_denials.total, 11);
      const rt = surface(s.last_hour, "runtime");
      assert.equal(rt.requests, 12);
      assert.equal(rt.errors_4xx, 11);
      assert.equal(rt.error_rate, Math.round((11 / 12) * 10_000) / 10_000);

      const after = await scrape();
      const delta = (labels: Record<string, string>) => value(after, "licensekit_runtime_requests_total", labels) - value(before, "licensekit_runtime_requests_total", labels);
      assert.equal(delta({ operation: "validateLicense", code: "LICENSE_INACTIVE" }), 7);
      assert.equal(delta({ operation: "checkLicense", code: "LICENSE_EXPIRED" }), 2);
      assert.equal(delta({ operation: "activateLicense", code: "LICENSE_EXPIRED" }), 1);
      assert.equal(delta({ operation: "validateLicense", code: "none" }), 1);
      // Every runtime answer here is signed: 12 signatures at least.
      assert.ok(value(after, "licensekit_signing_duration_seconds_count") - value(before, "licensekit_signing_duration_seconds_count") >= 12);
      assert.equal(value(after, "licensekit_request_duration_seconds_count", { surface: "runtime" }) - value(before, "licensekit_request_duration_seconds_count", { surface: "runtime" }), 12);
    });

    it("ops/runtime-errors refuses bad parameters with 400 INVALID_QUERY", async () => {
      for (const q of [
        "from=yesterday",
        "from=2026-03-01",
        "to=not-a-time",
        "from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z",
        "operation=launchRocket",
        "code=license_expired",
        "limit=0",
        "limit=abc",
      ]) {
        const res = await h.request({ url: `/api/v1/ops/runtime-errors?${q}` });
        assert.equal(res.status, 400, `${q}: ${res.text}`);
        assert.equal(res.json.error.code, "INVALID_QUERY", q);
        assert.equal(res.json.meta.request_id, res.headers["x-request-id"]);
      }
    });

    it("webhook-health and the webhook gauges, from rows inserted into webhook_deliveries", async () => {
      const active = await h.request({ url: "/api/v1/webhooks", body: { name: "ops hook", url: "https://hooks.example.com/in?token=secret-value", event_types: ["signing_key.rotated"] } });
      assert.equal(active.status, 201, active.text);
      const inactive = await h.request({ url: "/api/v1/webhooks", body: { name: "paused hook", url: "https://paused.example.com/in", is_active: false } });
      assert.equal(inactive.status, 201, inactive.text);
      const a = active.json.data.webhook.id as string;
      const b = inactive.json.data.webhook.id as string;
      const now = h.clock.now();
      let n = 0;
      const row = (endpoint: string, status: "pending" | "delivered" | "failed", fields: Record<string, number | string | null>) => ({
        id: `whd_ops${String(++n).padStart(23, "0")}`,
        endpoint_id: endpoint,
        event_sequence: n,
        event_type: "signing_key.rotated",
        status,
        attempts: 0,
        next_attempt_at: now,
        claimed_until: null,
        last_attempt_at: null,
        last_status_code: null,
        last_error: null,
        last_response_body: null,
        delivered_at: null,
        created_at: now,
        updated_at: now,
        ...fields,
      });
      await h.lk.store.db
        .insertInto("webhook_deliveries")
        .values([
          row(a, "pending", { created_at: now - 120_000 }),
          row(a, "pending", { created_at: now - 30_000, attempts: 1, last_attempt_at: now - 20_000, last_status_code: 500, last_error: "HTTP 500" }),
          row(a, "failed", { created_at: now - 7_200_000, attempts: 12, last_attempt_at: now - 10_000, last_error: "timeout after 10 s" }),
          row(a, "delivered", { attempts: 1, delivered_at: now - 3_600_000 }),
          row(a, "delivered", { attempts: 2, delivered_at: now - 60_000 }),
          row(a, "delivered", { attempts: 1, delivered_at: now - 25 * 3_600_000 }),
          row(b, "pending", { created_at: now - 300_000 }),
        ] as never)
        .execute();

      const res = await h.request({ url: "/api/v1/ops/webhook-health" });
      assert.equal(res.status, 200, res.text);
      const { endpoints, totals } = res.json.data;
      const ea = endpoints.find((e: { id: string }) => e.id === a);
      assert.deepEqual(ea, {
        id: a,
        name: "ops hook",
        url: "https://hooks.example.com/in",
        is_active: true,
        pending: 2,
        failed: 1,
        delivered_last_24h: 2,
        last_delivery_at: null,
        oldest_pending_age_seconds: 120,
        last_failure: { delivery_id: `whd_ops${"3".padStart(23, "0")}`, at: new Date(now - 10_000).toISOString(), status_code: null, error: "timeout after 10 s" },
      });
      assert.ok(!res.text.includes("secret-value"), "the URL's query is not shown");
      const eb = endpoints.find((e: { id: string }) => e.id === b);
      assert.equal(eb.is_active, false);
      assert.equal(eb.pending, 1);
      assert.equal(eb.oldest_pending_age_seconds, 300);
      assert.equal(eb.last_failure, null);
      assert.deepEqual(totals, { endpoints: 2, active_endpoints: 1, pending: 3, failed: 1, delivered_last_24h: 2, oldest_pending_age_seconds: 300 });

      const s = await summary();
      assert.deepEqual(s.webhooks, { pending: 3, oldest_pending_age_seconds: 300, failed: 1 });
      assert.equal(s.last_hour.webhook_failures, 1);
      assert.equal(s.last_day.webhook_failures, 1);

      const m = await scrape();
      assert.equal(value(m, "licensekit_webhook_queue_depth"), 3);
      assert.equal(value(m, "licensekit_webhook_oldest_pending_age_seconds"), 300);
      assert.ok(m.names.has("licensekit_webhook_deliveries_total"));
    });

    it("licensekit_floating_leases_active counts live leases at scrape time", async () => {
      const before = value(await scrape(), "licensekit_floating_leases_active");
      const lic = await issueLicense(h, { max_activations: 5, max_floating_users: 3, floating_timeout_minutes: 15 });
      for (const fp of ["fl-1", "fl-2"]) {
        const res = await runtime("floating/checkout", lic.key, { fingerprint: fp }, true);
        assert.equal(res.status, 200, res.text);
      }
      assert.equal(value(await scrape(), "licensekit_floating_leases_active") - before, 2);
      // Past their timeout the leases hold no seat, with no job run.
      h.clock.advance(16 * MINUTE_MS);
      assert.equal(value(await scrape(), "licensekit_floating_leases_active"), 0);
    });

    it("flushes add up across processes (two counters on one database) and rows past 8 days are purged", async () => {
      const other = new RequestStats(h.lk.store, h.clock);
      for (let i = 0; i < 3; i++) other.record("system", "health", 200, "", 0.4);
      for (let i = 0; i < 2; i++) h.lk.requestStats.record("system", "health", 200, "", 0.7);
      await Promise.all([other.flush(), h.lk.requestStats.flush()]);
      other.record("system", "health", 200, "", 0.9);
      await other.flush();
      const rows = await h.lk.store.db.selectFrom("ops_request_minutes").selectAll().where("operation", "=", "health").execute();
      assert.equal(rows.length, 1, "same minute, surface, operation, status, code and bucket: one row");
      assert.equal(Number(rows[0]!.count), 6);

      const old = { surface: "system" as const, operation: "old", status: 200, code: "", latency_bucket: 0, count: 1 };
      await h.lk.store.db
        .insertInto("ops_request_minutes")
        .values([
          { ...old, minute_start: h.clock.now() - RETENTION_MS - MINUTE_MS },
          { ...old, minute_start: h.clock.now() - RETENTION_MS + 10 * MINUTE_MS },
        ])
        .execute();
      assert.equal(await h.lk.requestStats.purge(), 1);
      const left = await h.lk.store.db.selectFrom("ops_request_minutes").select("minute_start").where("operation", "=", "old").execute();
      assert.equal(left.length, 1);
    });

    it("the summary windows: minutes older than an hour count only in last_day", async () => {
      const before = await summary();
      for (let i = 0; i < 4; i++) assert.equal((await h.request({ url: "/health", token: null })).status, 200);
      await h.lk.requestStats.flush();
      h.clock.advance(90 * MINUTE_MS);
      const s = await summary();
      const sys = (w: { surfaces: SurfaceStats[] }) => surface(w, "system").requests;
      // The /health calls moved out of the last hour; the day still holds them.
      assert.ok(sys(s.last_day) >= sys(before.last_day) + 4);
      assert.equal(sys(s.last_hour), 0);
      assert.equal(s.last_hour.scope_denials.total, 0);
      assert.equal(s.last_day.scope_denials.total, 25);
      assert.equal(Date.parse(s.last_hour.to) - Date.parse(s.last_hour.from) <= 3_600_000, true);
    });

    it("docs/operations.md lists exactly the licensekit_ metrics the registry exposes (default process metrics aside)", async () => {
      const defaults = new Registry();
      collectDefaultMetrics({ register: defaults, prefix: "licensekit_" });
      const defaultNames = new Set(defaults.getMetricsAsArray().map((m) => m.name));
      const ours = h.lk.metrics.registry
        .getMetricsAsArray()
        .map((m) => m.name)
        .filter((n) => n.startsWith("licensekit_") && !defaultNames.has(n))
        .sort();
      const doc = fs.readFileSync(DOCS, "utf8");
      const section = doc.split(/^## /m).find((s) => s.startsWith("Metrics"));
      assert.ok(section, "docs/operations.md has a '## Metrics' section");
      const documented = [...section.matchAll(/^\| `(licensekit_[a-z0-9_]+)` \|/gm)].map((m) => m[1]!).sort();
      assert.deepEqual(documented, ours);
      // And every one of them is served on /metrics.
      const served = (await scrape()).names;
      for (const name of ours) assert.ok(served.has(name), `${name} is not on /metrics`);
    });
  });

  describe(`operations view when reads fail [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => h?.close());

    it("a failing database read never fails the scrape (licensekit_scrape_errors_total); a 5xx is counted in the summary", async () => {
      const db = h.lk.store.db;
      await sql`alter table webhook_deliveries rename to webhook_deliveries_away`.execute(db);
      let scraped: Reply;
      let failed: Reply;
      try {
        scraped = await h.request({ url: "/metrics", token: null });
        failed = await h.request({ url: "/api/v1/ops/webhook-health" });
      } finally {
        await sql`alter table webhook_deliveries_away rename to webhook_deliveries`.execute(db);
      }
      assert.equal(scraped.status, 200);
      const m = parseExposition(scraped.text);
      const errors = m.samples.find((s) => s.name === "licensekit_scrape_errors_total" && s.labels.source === "webhook_deliveries");
      assert.equal(errors?.value, 1, "one failed read, although two gauges wait on it");
      assert.ok(m.samples.some((s) => s.name === "licensekit_floating_leases_active"), "the other gauges are still served");

      assert.equal(failed.status, 500);
      assert.equal(failed.json.error.code, "INTERNAL_ERROR");
      assert.ok(!/webhook_deliveries|SQL|select/i.test(failed.text), "no SQL in the answer");

      await h.lk.requestStats.flush();
      const res = await h.request({ url: "/api/v1/ops/summary" });
      assert.equal(res.status, 200, res.text);
      const server = res.json.data.last_hour.server_errors;
      assert.equal(server.total, 1);
      assert.deepEqual(server.by_operation, [{ surface: "management", operation: "getOpsWebhookHealth", status: 500, code: "INTERNAL_ERROR", count: 1 }]);
      const mgmt = res.json.data.last_hour.surfaces.find((s: { surface: string }) => s.surface === "management");
      assert.equal(mgmt.errors_5xx, 1);
      const after = parseExposition((await h.request({ url: "/metrics", token: null })).text);
      assert.ok(after.samples.some((s) => s.name === "licensekit_management_requests_total" && s.labels.operation === "getOpsWebhookHealth" && s.labels.code === "INTERNAL_ERROR" && s.value === 1));
    });
  });
}
