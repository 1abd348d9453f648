// Rate limits (D10): token buckets per license (runtime), per management token and per client IP for
// failed authentications; RateLimit-* headers on every answer of a limited surface; 429 RATE_LIMITED
// with Retry-After (signed on runtime routes, never kept by idempotency); buckets shared through the
// database by two apps; 0 turns a limit off. Small limits via env; the injected clock refills.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/app.js";
import { ConfigError, loadConfig } from "../src/config.js";
import { type BucketSpec, msToFull, quote, take, tokensAt } from "../src/domain/token-bucket.js";
import { MemoryBucketStore } from "../src/store/rate-limit-buckets.js";
import { createServices } from "../src/services.js";
import { assertContract } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { ADMIN_TOKEN, type Harness, issueLicense, listen, type Reply, startHarness } from "./helpers/harness.js";
import { sdkVerify } from "./helpers/verify.js";

const SMALL = {
  LICENSEKIT_RATE_LIMIT_RUNTIME_PER_SECOND: "2",
  LICENSEKIT_RATE_LIMIT_RUNTIME_BURST: "3",
  LICENSEKIT_RATE_LIMIT_MANAGEMENT_PER_SECOND: "4",
  LICENSEKIT_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "3",
  LICENSEKIT_TRUSTED_PROXIES: "127.0.0.1",
};
/** Long enough for every bucket to fill up again. */
const REFILL_ALL_MS = 120_000;

function limits(r: Reply): { limit: string | undefined; remaining: string | undefined; reset: string | undefined } {
  return {
    limit: r.headers["ratelimit-limit"] as string | undefined,
    remaining: r.headers["ratelimit-remaining"] as string | undefined,
    reset: r.headers["ratelimit-reset"] as string | undefined,
  };
}

function assertRateLimited(r: Reply): void {
  assert.equal(r.status, 429, r.text);
  assert.equal(r.json.error.code, "RATE_LIMITED");
  assert.match(r.json.error.detail, /retry after \d+ s/);
  assert.match(String(r.headers["retry-after"]), /^[1-9]\d*$/);
  assert.equal(r.headers["ratelimit-remaining"], "0");
  assertContract("ErrorEnvelope", r.json);
}

describe("token bucket arithmetic", () => {
  const spec: BucketSpec = { capacity: 3, refillTokens: 2, refillPeriodMs: 1000 };
  it("starts full, takes one per call, refuses when empty without changing state, refills continuously up to capacity", () => {
    let r = take(spec, undefined, 0);
    assert.deepEqual(r.quote, { allowed: true, limit: 3, remaining: 2, resetSeconds: 1, retryAfterSeconds: 0 });
    r = take(spec, r.state, 0);
    r = take(spec, r.state, 0);
    assert.equal(r.quote.remaining, 0);
    assert.equal(r.quote.resetSeconds, 2);
    const empty = r.state;
    const refused = take(spec, empty, 100);
    assert.equal(refused.quote.allowed, false);
    assert.equal(refused.quote.retryAfterSeconds, 1);
    assert.deepEqual(refused.state, empty);
    assert.equal(tokensAt(spec, empty, 500), 1);
    assert.equal(take(spec, empty, 500).quote.allowed, true);
    assert.equal(tokensAt(spec, empty, 60_000), 3);
    assert.equal(msToFull(spec), 1500);
  });

  it("never refills backwards when another process's clock is behind", () => {
    const r = take(spec, { tokens: 0, updatedAt: 10_000 }, 9_000);
    assert.equal(r.quote.allowed, false);
    const later = take(spec, { tokens: 1, updatedAt: 10_000 }, 9_000);
    assert.equal(later.quote.allowed, true);
    assert.equal(later.state.updatedAt, 10_000);
  });

  it("Retry-After is whole seconds, at least 1; a slow bucket waits longer", () => {
    const slow: BucketSpec = { capacity: 3, refillTokens: 3, refillPeriodMs: 60_000 };
    assert.equal(quote(slow, 0, false).retryAfterSeconds, 20);
    assert.equal(quote(slow, 0.5, false).retryAfterSeconds, 10);
    assert.equal(quote(slow, 0, false).resetSeconds, 60);
  });

  it("the memory store forgets buckets that have filled up again", async () => {
    const store = new MemoryBucketStore();
    for (let i = 0; i < 10; i++) await store.take(`k${i}`, spec, 0);
    assert.equal(store.size, 10);
    assert.equal((await store.peek("k0", spec, 0)).remaining, 2);
    await store.take("late", spec, 61_000); // a minute later the periodic sweep runs
    assert.equal(store.size, 1);
  });
});

describe("rate-limit settings", () => {
  it("defaults: runtime 20/s burst 40, auth failures 30/min, management 50/s; memory on SQLite, database on PostgreSQL", () => {
    const c = loadConfig({});
    assert.deepEqual(c.rateLimits, { runtimePerSecond: 20, runtimeBurst: 40, authFailuresPerMinute: 30, managementPerSecond: 50, store: "memory" });
    assert.equal(loadConfig({ LICENSEKIT_DATABASE_URL: "postgres://u@db/lk" }).rateLimits.store, "database");
    assert.equal(loadConfig({ LICENSEKIT_RATE_LIMIT_STORE: "database" }).rateLimits.store, "database");
    assert.equal(loadConfig({ LICENSEKIT_RATE_LIMIT_RUNTIME_PER_SECOND: "100" }).rateLimits.runtimeBurst, 200);
  });

  const bad: [string, string][] = [
    ["LICENSEKIT_RATE_LIMIT_STORE", "redis"],
    ["LICENSEKIT_RATE_LIMIT_RUNTIME_PER_SECOND", "-1"],
    ["LICENSEKIT_RATE_LIMIT_RUNTIME_BURST", "0"],
    ["LICENSEKIT_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "lots"],
    ["LICENSEKIT_RATE_LIMIT_MANAGEMENT_PER_SECOND", "2000000"],
  ];
  for (const [name, value] of bad) {
    it(`refuses ${name}=${JSON.stringify(value)} naming the setting`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: unknown) => err instanceof ConfigError && err.setting === name,
      );
    });
  }
});

for (const engine of ENGINES) {
  describe(`rate limits [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine, { env: SMALL });
    });
    after(async () => h?.close());

    const keys = async () => (await h.request({ url: "/api/v1/system/public-keys", token: null })).json.data;
    const validate = (key: string, ip = "198.51.100.1", extra: Record<string, string> = {}) =>
      h.request({ url: "/api/v1/license/validate", licenseKey: key, body: { fingerprint: "fp-rate" }, headers: { "x-forwarded-for": ip, ...extra } });

    it("runtime: headers on every answer, decreasing; the call past the burst is 429, signed, with Retry-After; time refills", async () => {
      const lic = await issue(h);
      const other = await issue(h);
      h.clock.advance(REFILL_ALL_MS);

      const seen = [];
      for (let i = 0; i < 3; i++) {
        const r = await validate(lic.key);
        assert.equal(r.status, 200, r.text);
        seen.push(limits(r));
      }
      assert.deepEqual(seen, [
        { limit: "3", remaining: "2", reset: "1" },
        { limit: "3", remaining: "1", reset: "1" },
        { limit: "3", remaining: "0", reset: "2" },
      ]);

      const refused = await validate(lic.key);
      assertRateLimited(refused);
      assert.equal(refused.headers["retry-after"], "1");
      assert.equal(refused.headers["ratelimit-limit"], "3");
      assert.ok(refused.json.signature, "runtime errors are signed, the 429 too");
      assert.equal(await sdkVerify(refused.json, await keys(), "error"), true);

      // Another license has its own bucket.
      const elsewhere = await validate(other.key);
      assert.equal(elsewhere.status, 200);
      assert.equal(limits(elsewhere).remaining, "2");

      // 2/s: half a second gives one more call, and only one.
      h.clock.advance(500);
      assert.equal((await validate(lic.key)).status, 200);
      assertRateLimited(await validate(lic.key));
      h.clock.advance(1500);
      for (let i = 0; i < 3; i++) assert.equal((await validate(lic.key)).status, 200);
      assertRateLimited(await validate(lic.key));
    });

    it("runtime: a 429 is never stored by idempotency — the same key after the refill runs the request", async () => {
      const lic = await issue(h, { max_activations: 5 });
      h.clock.advance(REFILL_ALL_MS);
      for (let i = 0; i < 3; i++) assert.equal((await validate(lic.key)).status, 200);
      const activate = () =>
        h.request({ url: "/api/v1/license/activate", licenseKey: lic.key, idempotencyKey: "rl-act-1", body: { fingerprint: "fp-idem" } });
      assertRateLimited(await activate());
      h.clock.advance(1000);
      const ok = await activate();
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.headers["idempotent-replayed"], undefined);
      const again = await activate();
      assert.equal(again.status, 200);
      assert.equal(again.json.data.license_id, lic.licenseId);
    });

    it("the memory store (the SQLite default) writes no rows to the table", async () => {
      if (h.config.rateLimits.store !== "memory") return;
      const rows = await h.lk.store.db.selectFrom("rate_limit_buckets").selectAll().execute();
      assert.deepEqual(rows, []);
    });

    it("management: per-token limit with headers, 429 unsigned with Retry-After; another token has its own bucket", async () => {
      h.clock.advance(REFILL_ALL_MS);
      const created = await h.request({ url: "/api/v1/api-keys", body: { name: "reader", scopes: ["product:read"] } });
      assert.equal(created.status, 201, created.text);
      const reader: string = created.json.data.token;
      h.clock.advance(REFILL_ALL_MS);

      const remaining = [];
      for (let i = 0; i < 4; i++) {
        const r = await h.request({ url: "/api/v1/products" });
        assert.equal(r.status, 200, r.text);
        assert.equal(limits(r).limit, "4");
        remaining.push(limits(r).remaining);
      }
      assert.deepEqual(remaining, ["3", "2", "1", "0"]);
      const refused = await h.request({ url: "/api/v1/products" });
      assertRateLimited(refused);
      assert.equal(refused.json.signature, undefined, "management errors are not signed");
      assert.equal(refused.headers["retry-after"], "1");

      // The other token is unaffected; its scope denial (403) spends its budget and carries headers too.
      const read = await h.request({ url: "/api/v1/products", token: reader });
      assert.equal(read.status, 200);
      assert.equal(limits(read).remaining, "3");
      const denied = await h.request({ url: "/api/v1/products", token: reader, body: { name: "x", code: "rl-x" } });
      assert.equal(denied.status, 403);
      assert.equal(limits(denied).remaining, "2");

      h.clock.advance(250);
      assert.equal((await h.request({ url: "/api/v1/products" })).status, 200);
      assertRateLimited(await h.request({ url: "/api/v1/products" }));
    });

    it("failed authentications: counted per client IP on both surfaces; past the limit even a good credential is 429 until the bucket refills; other IPs unaffected", async () => {
      const lic = await issue(h);
      h.clock.advance(REFILL_ALL_MS);
      const bad = "203.0.113.5";
      const good = "203.0.113.6";
      const asIp = (ip: string) => ({ "x-forwarded-for": ip });

      const f1 = await h.request({ url: "/api/v1/products", token: "lkm_NotARealToken000000000000000", headers: asIp(bad) });
      const f2 = await h.request({ url: "/api/v1/license/validate", licenseKey: "LK-NOPE-NOPE-NOPE", body: { fingerprint: "x" }, headers: asIp(bad) });
      const f3 = await h.request({ url: "/api/v1/products", token: null, headers: asIp(bad) });
      assert.deepEqual(
        [f1.status, f2.status, f3.status],
        [401, 401, 401],
      );
      assert.deepEqual(
        [f1, f2, f3].map((r) => limits(r)),
        [
          { limit: "3", remaining: "2", reset: "20" },
          { limit: "3", remaining: "1", reset: "40" },
          { limit: "3", remaining: "0", reset: "60" },
        ],
      );

      // Now refused before the credential is looked up — good credentials included, on both surfaces.
      const mgmt = await h.request({ url: "/api/v1/products", headers: asIp(bad) });
      assertRateLimited(mgmt);
      assert.equal(mgmt.headers["retry-after"], "20");
      assert.equal(mgmt.json.signature, undefined);
      const rt = await validate(lic.key, bad);
      assertRateLimited(rt);
      assert.equal(await sdkVerify(rt.json, await keys(), "error"), true);

      // Another client address behind the trusted proxy is unaffected.
      const fine = await h.request({ url: "/api/v1/products", headers: asIp(good) });
      assert.equal(fine.status, 200, fine.text);
      assert.equal((await validate(lic.key, good)).status, 200);

      // Retry-After later one attempt is allowed again.
      h.clock.advance(20_000);
      const back = await h.request({ url: "/api/v1/products", headers: asIp(bad) });
      assert.equal(back.status, 200, back.text);
    });

    it("the client address is taken from X-Forwarded-For only through a trusted proxy", async () => {
      // The harness injects from 127.0.0.1 (trusted here); a second app that trusts no proxy keys by the peer.
      const { services } = await createServices(loadConfig({ ...h.env, LICENSEKIT_TRUSTED_PROXIES: "" }), { clock: h.clock });
      const untrusting = await buildApp(services, { logger: false });
      try {
        h.clock.advance(REFILL_ALL_MS);
        const statuses = [];
        for (let i = 0; i < 4; i++) {
          const r = await untrusting.inject({ url: "/api/v1/products", headers: { authorization: "Bearer lkm_Nope", "x-forwarded-for": `192.0.2.${i}` } });
          statuses.push(r.statusCode);
        }
        assert.deepEqual(statuses, [401, 401, 401, 429], "forged X-Forwarded-For does not escape the limit");
      } finally {
        await untrusting.close();
      }
    });
  });

  describe(`key guessing at the default failed-authentication limit (D10: 30/min per client IP) [${engine}]`, () => {
    let h: Harness;
    const perMinute = loadConfig({}).rateLimits.authFailuresPerMinute;
    before(async () => {
      h = await startHarness(engine, { env: { LICENSEKIT_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: String(perMinute), LICENSEKIT_TRUSTED_PROXIES: "127.0.0.1" } });
    });
    after(async () => h?.close());

    it("40 wrong license keys from one IP: 30 × 401, then 429 RATE_LIMITED with Retry-After, even for the right key; another IP is unaffected", async () => {
      assert.equal(perMinute, 30);
      const lic = await issueLicense(h);
      const attacker = { "x-forwarded-for": "198.51.100.66" };
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) {
        const guess = `lsk_${String(i).padStart(32, "0")}`;
        const r = await h.request({ url: "/api/v1/license/validate", licenseKey: guess, body: { fingerprint: "guess" }, headers: attacker });
        statuses.push(r.status);
        if (r.status === 429) assertRateLimited(r);
      }
      assert.deepEqual(statuses, [...Array(30).fill(401), ...Array(10).fill(429)]);
      const right = await h.request({ url: "/api/v1/license/validate", licenseKey: lic.key, body: { fingerprint: "m" }, headers: attacker });
      assertRateLimited(right);
      // 30 per minute refill one token every 2 s: Retry-After says so.
      assert.equal(right.headers["retry-after"], "2");

      const other = { "x-forwarded-for": "198.51.100.67" };
      assert.equal((await h.request({ url: "/api/v1/license/validate", licenseKey: lic.key, body: { fingerprint: "m" }, headers: other })).status, 200);
      const miss = await h.request({ url: "/api/v1/license/validate", licenseKey: `lsk_${"9".repeat(32)}`, body: { fingerprint: "m" }, headers: other });
      assert.equal(miss.status, 401, "the other address has its own bucket");
      assert.equal(miss.headers["ratelimit-remaining"], "29");

      // After Retry-After the attacker gets one more guess, not a fresh burst.
      h.clock.advance(2000);
      const next = await h.request({ url: "/api/v1/license/validate", licenseKey: `lsk_${"8".repeat(32)}`, body: { fingerprint: "m" }, headers: attacker });
      assert.equal(next.status, 401);
      assertRateLimited(await h.request({ url: "/api/v1/license/validate", licenseKey: `lsk_${"7".repeat(32)}`, body: { fingerprint: "m" }, headers: attacker }));
    });
  });

  describe(`rate limits switched off [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine, {
        env: {
          LICENSEKIT_RATE_LIMIT_RUNTIME_PER_SECOND: "0",
          LICENSEKIT_RATE_LIMIT_MANAGEMENT_PER_SECOND: "0",
          LICENSEKIT_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "0",
        },
      });
    });
    after(async () => h?.close());

    it("0 disables each limit: no RateLimit headers, no 429", async () => {
      const lic = await issue(h);
      for (let i = 0; i < 60; i++) {
        const r = await h.request({ url: "/api/v1/license/validate", licenseKey: lic.key, body: { fingerprint: "fp-off" } });
        assert.equal(r.status, 200);
        assert.equal(r.headers["ratelimit-limit"], undefined);
      }
      for (let i = 0; i < 60; i++) {
        const r = await h.request({ url: "/api/v1/products", token: "lkm_WrongWrongWrongWrongWrong" });
        assert.equal(r.status, 401);
        assert.equal(r.headers["ratelimit-limit"], undefined);
      }
      for (let i = 0; i < 60; i++) assert.equal((await h.request({ url: "/api/v1/products" })).status, 200);
    });
  });

  describe(`rate limits in the database, shared by two apps [${engine}]`, () => {
    let h: Harness;
    let second: FastifyInstance;
    before(async () => {
      h = await startHarness(engine, { env: { ...SMALL, LICENSEKIT_RATE_LIMIT_STORE: "database", LICENSEKIT_RATE_LIMIT_RUNTIME_BURST: "5" } });
      const { services } = await createServices(h.config, { clock: h.clock });
      second = await buildApp(services, { logger: false });
    });
    after(async () => {
      await second?.close();
      await h?.close();
    });

    it("calls alternating between the two apps share one bucket per license, stored under the license id", async () => {
      const lic = await issue(h);
      h.clock.advance(REFILL_ALL_MS);
      const statuses: number[] = [];
      const remaining: string[] = [];
      for (let i = 0; i < 7; i++) {
        const headers = { authorization: `License ${lic.key}`, "content-type": "application/json" };
        const payload = JSON.stringify({ fingerprint: "fp-shared" });
        const r =
          i % 2 === 0
            ? await h.app.inject({ method: "POST", url: "/api/v1/license/validate", headers, payload })
            : await second.inject({ method: "POST", url: "/api/v1/license/validate", headers, payload });
        statuses.push(r.statusCode);
        remaining.push(String(r.headers["ratelimit-remaining"]));
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
      assert.deepEqual(remaining, ["4", "3", "2", "1", "0", "0", "0"]);

      const rows = await h.lk.store.db.selectFrom("rate_limit_buckets").selectAll().execute();
      const row = rows.find((x) => x.bucket === `rt:${lic.licenseId}`);
      assert.ok(row, "bucket named by the license id");
      assert.equal(Number(row.tokens), 0);
      assert.ok(!JSON.stringify(rows).includes(lic.key), "the license key is nowhere in the table");

      // Time refills it for both apps.
      h.clock.advance(1000);
      const a = await validateVia(h.app, lic.key);
      const b = await validateVia(second, lic.key);
      const c = await validateVia(second, lic.key);
      assert.deepEqual([a, b, c], [200, 200, 429]);
    });

    it("parallel HTTP calls through both apps never get more than the burst", async () => {
      const lic = await issue(h);
      h.clock.advance(REFILL_ALL_MS);
      const base1 = await listen(h);
      await second.listen({ host: "127.0.0.1", port: 0 });
      const addr = second.server.address();
      assert.ok(addr && typeof addr === "object");
      const base2 = `http://127.0.0.1:${addr.port}`;
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          fetch(`${i % 2 ? base1 : base2}/api/v1/license/validate`, {
            method: "POST",
            headers: { authorization: `License ${lic.key}`, "content-type": "application/json" },
            body: JSON.stringify({ fingerprint: "fp-parallel" }),
          }).then((r) => r.status),
        ),
      );
      assert.equal(results.filter((s) => s === 200).length, 5, results.join(","));
      assert.equal(results.filter((s) => s === 429).length, 19, results.join(","));
    });

    it("failed authentications and management calls are shared too", async () => {
      h.clock.advance(REFILL_ALL_MS);
      const ip = { "x-forwarded-for": "203.0.113.77" };
      const wrong = { authorization: "Bearer lkm_WrongWrongWrongWrongWrong", ...ip };
      const s1 = (await h.app.inject({ url: "/api/v1/products", headers: wrong })).statusCode;
      const s2 = (await second.inject({ url: "/api/v1/products", headers: wrong })).statusCode;
      const s3 = (await h.app.inject({ url: "/api/v1/products", headers: wrong })).statusCode;
      const s4 = (await second.inject({ url: "/api/v1/products", headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...ip } })).statusCode;
      assert.deepEqual([s1, s2, s3, s4], [401, 401, 401, 429]);

      h.clock.advance(REFILL_ALL_MS);
      const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
      const m = [];
      for (let i = 0; i < 5; i++) m.push((await (i % 2 ? second : h.app).inject({ url: "/api/v1/products", headers: admin })).statusCode);
      assert.deepEqual(m, [200, 200, 200, 200, 429]);
    });

    it("buckets that have filled up again are swept from the table", async () => {
      const lic = await issue(h);
      assert.equal(await validateVia(second, lic.key), 200);
      const buckets = async () => (await h.lk.store.db.selectFrom("rate_limit_buckets").select("bucket").execute()).map((r) => r.bucket);
      assert.ok((await buckets()).includes(`rt:${lic.licenseId}`));
      h.clock.advance(REFILL_ALL_MS);
      // The next take of a process past its sweep interval deletes every bucket that is full again.
      assert.equal((await h.app.inject({ url: "/api/v1/products", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).statusCode, 200);
      assert.deepEqual(await buckets(), [(await h.lk.store.db.selectFrom("api_keys").select("id").executeTakeFirstOrThrow()).id].map((id) => `mg:${id}`));
    });
  });
}

/** issueLicense makes three management calls: start and end with full buckets. */
async function issue(h: Harness, policy: Record<string, unknown> = {}) {
  h.clock.advance(REFILL_ALL_MS);
  const lic = await issueLicense(h, policy);
  h.clock.advance(REFILL_ALL_MS);
  return lic;
}

async function validateVia(app: FastifyInstance, key: string): Promise<number> {
  const r = await app.inject({
    method: "POST",
    url: "/api/v1/license/validate",
    headers: { authorization: `License ${key}`, "content-type": "application/json" },
    payload: JSON.stringify({ fingerprint: "fp-shared" }),
  });
  return r.statusCode;
}
