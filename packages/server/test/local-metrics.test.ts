// The hot-path metrics (observability/local-metrics.ts) print exactly what prom-client's own
// Counter and Histogram print for the same observations (both exposition formats; JSON values),
// and what a scrape has taken is not counted again by the next one.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Counter, Histogram, Registry } from "prom-client";
import { BatchedCounter, LocalHistogram } from "../src/observability/local-metrics.js";

const BUCKETS = [0.0005, 0.001, 0.01, 0.1, 1];
const OBSERVED = [0.0001, 0.0005, 0.0007, 0.02, 0.02, 0.5, 3, 1, 0.001];

describe("hot-path metrics", () => {
  it("LocalHistogram prints what prom-client's Histogram prints", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const local = new LocalHistogram<"method" | "route">("lk_test_seconds", "test latency", BUCKETS, ours);
    const reference = new Histogram({ name: "lk_test_seconds", help: "test latency", labelNames: ["method", "route"], buckets: BUCKETS, registers: [theirs] });
    // Series print in the order their label sets were first seen, in both.
    for (const [i, v] of OBSERVED.entries()) {
      const labels = i % 3 === 0 ? { method: "GET", route: "/x/:id" } : { method: "POST", route: "/v" };
      local.labels(labels).observe(v);
      reference.observe(labels, v);
    }
    assert.equal(local.labels({ route: "/v", method: "POST" }), local.labels({ method: "POST", route: "/v" }), "one child per label set");
    assert.equal(await ours.metrics(), await theirs.metrics());
    const json = async (r: Registry) =>
      (await r.getMetricsAsJSON()).map((m) => ({ name: m.name, type: m.type, values: m.values.map((v) => ({ ...v.labels, metric: (v as { metricName?: string }).metricName, value: v.value })) }));
    assert.deepEqual(await json(ours), await json(theirs));
    ours.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
    theirs.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
    assert.equal(await ours.metrics(), await theirs.metrics());
  });

  it("an unlabelled LocalHistogram matches too, and reset() zeroes it", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const local = new LocalHistogram("lk_sign_seconds", "signing", [0.00002, 0.0001], ours);
    const reference = new Histogram({ name: "lk_sign_seconds", help: "signing", buckets: [0.00002, 0.0001], registers: [theirs] });
    for (const v of [0.00001, 0.00005, 0.0002]) {
      local.observe(v);
      reference.observe(v);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    ours.resetMetrics();
    assert.match(await ours.metrics(), /lk_sign_seconds_count 0/);
  });

  it("BatchedCounter cells reach the counter at scrape time, once", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const cells = new BatchedCounter(ours, "lk_answers_total", "answers", ["operation", "code"]);
    const reference = new Counter({ name: "lk_answers_total", help: "answers", labelNames: ["operation", "code"], registers: [theirs] });
    const ok = cells.cell({ operation: "validateLicense", code: "none" });
    assert.equal(cells.cell({ code: "none", operation: "validateLicense" }), ok, "one cell per label set, whatever the key order");
    const denied = cells.cell({ operation: "validateLicense", code: "LICENSE_SUSPENDED" });
    ok.n += 5;
    denied.n += 2;
    reference.inc({ operation: "validateLicense", code: "none" }, 5);
    reference.inc({ operation: "validateLicense", code: "LICENSE_SUSPENDED" }, 2);
    assert.equal(await ours.metrics(), await theirs.metrics());
    // A second scrape with nothing new prints the same totals (not doubled).
    assert.equal(await ours.metrics(), await theirs.metrics());
    ok.n += 1;
    reference.inc({ operation: "validateLicense", code: "none" }, 1);
    assert.equal(await ours.metrics(), await theirs.metrics());
  });
});
