// Limits hold across server processes (issue 9 item 1): two separate `licensekit serve` processes
// on ONE PostgreSQL database, hit in parallel over real HTTP with requests alternating between
// them, and `serve --workers 2` on one SQLite file. 200 activations against max_activations 10,
// 500 consumes against a quota of 100, 100 floating checkouts against 5 seats: exactly the limit
// is granted, every other answer is the limit's 409, and the database agrees with the answers.
// Concurrency is bounded (50 in flight) so a small CI machine copes.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestDatabase, type TestDatabase } from "../helpers/engines.js";
import { type Answer, admin, bounded, call, HIGH_LIMITS, ServeProcess, sleep, withDb } from "./processes.js";

const TOKEN = `lkm_${"T".repeat(40)}`;
const MASTER_KEY = "5a".repeat(32);
const IN_FLIGHT = 50;

interface Setup {
  bases: string[];
  dbUrl: string;
  procs: ServeProcess[];
}

/** The servers' error log lines, for the message of a failed assertion. */
const errorLines = (procs: ServeProcess[]) =>
  procs
    .flatMap((p) => p.logLines())
    .filter((l) => Number(l.level) >= 50)
    .slice(0, 5)
    .map((l) => JSON.stringify(l))
    .join("\n");

const tally = (rs: Answer[]) => {
  const out: Record<string, number> = {};
  for (const r of rs) {
    const k = r.status === 200 ? "200" : `${r.status} ${r.json?.error?.code}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
};

let retried503 = 0;

function scenarios(label: string, setup: () => Setup) {
  after(() => {
    // Not an error: answered 503 + Retry-After and retried, as a client does. Shown for the record.
    if (retried503 > 0) console.log(`# ${label}: ${retried503} answers were 503 SERVICE_UNAVAILABLE and were retried`);
    retried503 = 0;
  });
  /**
   * A runtime call as the SDK makes it: a 503 SERVICE_UNAVAILABLE (a process waited too long for a
   * database connection while the others held the license row lock) is retried after its
   * Retry-After with the same Idempotency-Key, so it can never count twice. The retries are counted.
   */
  const runtime = async (i: number, path: string, key: string, body: unknown, idem: string) => {
    const { bases } = setup();
    for (let attempt = 0; ; attempt++) {
      const r = await call(bases[(i + attempt) % bases.length]!, `/api/v1/license/${path}`, { auth: `License ${key}`, body, headers: { "idempotency-key": idem } });
      if (r.status !== 503 || attempt === 5) return r;
      assert.equal(r.json?.error?.code, "SERVICE_UNAVAILABLE", r.text);
      assert.match(String(r.headers["retry-after"]), /^\d+$/);
      retried503++;
      await sleep(Number(r.headers["retry-after"]) * 1000);
    }
  };
  const mgmt = () => admin(setup().bases[0]!, TOKEN);
  const n = () => Math.random().toString(36).slice(2, 10);

  async function license(policy: Record<string, unknown>) {
    const m = mgmt();
    const s = n();
    const product = await m("/products", { name: `Product ${s}`, code: `p-${s}` });
    const pol = await m(`/products/${product.id}/policies`, { name: "Policy", code: `pol-${s}`, license_type: "perpetual", ...policy });
    const lic = await m("/licenses", { product_id: product.id, policy_id: pol.id });
    return { productId: product.id as string, licenseId: lic.license.id as string, key: lic.license_key as string };
  }

  it(`${label}: 200 concurrent activations against max_activations 10 → exactly 10 devices, 190 ACTIVATION_LIMIT_EXCEEDED`, async () => {
    const lic = await license({ max_activations: 10 });
    const results = await bounded(200, IN_FLIGHT, (i) => runtime(i, "activate", lic.key, { fingerprint: `race-fp-${i}` }, `act-${i}`));
    assert.deepEqual(tally(results), { "200": 10, "409 ACTIVATION_LIMIT_EXCEEDED": 190 }, errorLines(setup().procs));
    const devices = new Set(results.filter((r) => r.status === 200).map((r) => r.json.data.device_id));
    assert.equal(devices.size, 10, "each success bound its own device");
    await withDb(setup().dbUrl, async (q) => {
      const rows = await q("SELECT id, status FROM devices WHERE license_id = $1", [lic.licenseId]);
      assert.equal(rows.length, 10, "refused attempts leave no device rows");
      assert.deepEqual(new Set(rows.filter((r) => r.status === "active").map((r) => r.id)), devices);
      const [row] = await q("SELECT active_device_count, times_activated FROM licenses WHERE id = $1", [lic.licenseId]);
      assert.equal(Number(row!.active_device_count), 10);
      assert.equal(Number(row!.times_activated), 10);
      const [events] = await q("SELECT COUNT(*) AS n FROM audit_events WHERE resource_id = $1 AND event_type = 'license.activated'", [lic.licenseId]);
      assert.equal(Number(events!.n), 10);
    });
  });

  it(`${label}: 500 concurrent consumes of 1 (unique event_ids) against a quota of 100 → exactly 100 units, answers and database agree`, async () => {
    const lic = await license({ max_activations: 1 });
    const m = mgmt();
    const feature = await m(`/products/${lic.productId}/features`, { name: "Exports", code: "exports" });
    await m(`/licenses/${lic.licenseId}/features`, { feature_id: feature.id, max_consumptions: 100 });
    const bound = await runtime(0, "activate", lic.key, { fingerprint: "meter" }, "bind-meter");
    assert.equal(bound.status, 200, bound.text);

    const results = await bounded(500, IN_FLIGHT, (i) =>
      runtime(i, "consume", lic.key, { fingerprint: "meter", feature_code: "exports", amount: 1, event_id: `ev-${i}` }, `use-${i}`),
    );
    assert.deepEqual(tally(results), { "200": 100, "409 FEATURE_QUOTA_EXCEEDED": 400 }, errorLines(setup().procs));
    // Each grant saw its own running total: the consumed values are 1..100, once each.
    const consumed = results
      .filter((r) => r.status === 200)
      .map((r) => r.json.data.features.find((f: { code: string }) => f.code === "exports").consumed as number)
      .sort((a, b) => a - b);
    assert.deepEqual(
      consumed,
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
    await withDb(setup().dbUrl, async (q) => {
      const [assigned] = await q("SELECT total_consumptions FROM license_features WHERE license_id = $1 AND feature_id = $2", [lic.licenseId, feature.id]);
      assert.equal(Number(assigned!.total_consumptions), 100);
      const [row] = await q("SELECT total_consumptions FROM licenses WHERE id = $1", [lic.licenseId]);
      assert.equal(Number(row!.total_consumptions), 100);
      const [events] = await q("SELECT COUNT(*) AS n, SUM(amount) AS units FROM consumption_events WHERE license_id = $1 AND response_status = 200", [lic.licenseId]);
      assert.equal(Number(events!.n), 100);
      assert.equal(Number(events!.units), 100);
      const [audit] = await q("SELECT COUNT(*) AS n FROM audit_events WHERE resource_id = $1 AND event_type = 'usage.consumed'", [lic.licenseId]);
      assert.equal(Number(audit!.n), 100);
    });
  });

  it(`${label}: 20 concurrent activations with ONE Idempotency-Key, sent to every process → one device; every 200 is the same bytes, the rest IDEMPOTENCY_IN_PROGRESS`, async () => {
    const lic = await license({ max_activations: 10 });
    const results = await bounded(20, 20, (i) => runtime(i, "activate", lic.key, { fingerprint: "one-key" }, "one-key"));
    const ok = results.filter((r) => r.status === 200);
    assert.ok(ok.length >= 1, JSON.stringify(tally(results)));
    for (const r of ok) assert.equal(r.text, ok[0]!.text, "a replay is the first answer byte for byte");
    const first = ok.filter((r) => r.headers["idempotent-replayed"] === undefined);
    assert.equal(first.length, 1, "exactly one answer is not a replay");
    for (const r of results.filter((x) => x.status !== 200)) assert.equal(r.json?.error?.code, "IDEMPOTENCY_IN_PROGRESS", r.text);
    await withDb(setup().dbUrl, async (q) => {
      const rows = await q("SELECT id FROM devices WHERE license_id = $1", [lic.licenseId]);
      assert.equal(rows.length, 1);
      const [row] = await q("SELECT times_activated FROM licenses WHERE id = $1", [lic.licenseId]);
      assert.equal(Number(row!.times_activated), 1);
      const [events] = await q("SELECT COUNT(*) AS n FROM audit_events WHERE resource_id = $1 AND event_type = 'license.activated'", [lic.licenseId]);
      assert.equal(Number(events!.n), 1);
      const [records] = await q("SELECT COUNT(*) AS n FROM idempotency_records WHERE credential_id = $1 AND state = 'completed'", [lic.licenseId]);
      assert.equal(Number(records!.n), 1);
    });
  });

  it(`${label}: 100 concurrent floating checkouts (distinct machines) against 5 seats → exactly 5 live leases`, async () => {
    const lic = await license({ max_activations: 100, max_floating_users: 5, floating_timeout_minutes: 30 });
    const results = await bounded(100, IN_FLIGHT, (i) => runtime(i, "floating/checkout", lic.key, { fingerprint: `seat-${i}` }, `seat-${i}`));
    assert.deepEqual(tally(results), { "200": 5, "409 FLOATING_LIMIT_EXCEEDED": 95 }, errorLines(setup().procs));
    const tokens = new Set(results.filter((r) => r.status === 200).map((r) => r.json.data.lease_token));
    assert.equal(tokens.size, 5);
    await withDb(setup().dbUrl, async (q) => {
      const live = await q("SELECT id FROM floating_leases WHERE license_id = $1 AND status = 'active' AND expires_at > $2", [lic.licenseId, Date.now()]);
      assert.equal(live.length, 5);
      const [all] = await q("SELECT COUNT(*) AS n FROM floating_leases WHERE license_id = $1", [lic.licenseId]);
      assert.equal(Number(all!.n), 5, "refused checkouts leave no lease rows");
    });
  });
}

function baseEnv(db: TestDatabase): Record<string, string> {
  return {
    LICENSEKIT_DATABASE_URL: db.url,
    LICENSEKIT_DATA_DIR: db.dir,
    LICENSEKIT_MASTER_KEY: MASTER_KEY,
    LICENSEKIT_BOOTSTRAP_TOKEN: TOKEN,
    // "info": the start-up line that names the port is an info line (a line per request comes with it).
    LICENSEKIT_LOG_LEVEL: "info",
    LICENSEKIT_DB_POOL_SIZE: "10",
    ...HIGH_LIMITS,
  };
}

describe("two `licensekit serve` processes on one PostgreSQL database", { skip: !process.env.LICENSEKIT_TEST_DATABASE_URL && "LICENSEKIT_TEST_DATABASE_URL is not set" }, () => {
  let db: TestDatabase;
  const procs: ServeProcess[] = [];
  before(async () => {
    db = await createTestDatabase("postgres");
    // The first start migrates and bootstraps; the second finds it done.
    procs.push(await ServeProcess.start({ env: baseEnv(db) }));
    procs.push(await ServeProcess.start({ env: baseEnv(db) }));
    assert.notEqual(procs[0]!.pid, procs[1]!.pid);
  });
  after(async () => {
    const codes = await Promise.all(procs.map((p) => p.stop()));
    await db?.drop();
    assert.deepEqual(codes, procs.map(() => 0), "both processes exit 0 on SIGTERM");
  });
  scenarios("postgres, 2 processes", () => ({ bases: procs.map((p) => p.base), dbUrl: db.url, procs }));
});

describe("`licensekit serve --workers 2` on one SQLite file", () => {
  let db: TestDatabase;
  let cluster: ServeProcess;
  before(async () => {
    db = await createTestDatabase("sqlite");
    cluster = await ServeProcess.start({ env: baseEnv(db), workers: 2 });
  });
  after(async () => {
    const code = await cluster?.stop();
    await db?.drop();
    assert.equal(code, 0, "the cluster exits 0 on SIGTERM");
  });
  scenarios("sqlite, 2 workers", () => ({ bases: [cluster.base], dbUrl: db.url, procs: [cluster] }));
});
