// The validate/check runtime cache (cache/runtime-cache.ts) and its change feed
// (jobs/runtime-invalidation.ts, migration 0006), on a real database: hits read nothing, every kind
// of change is answered at once through the same process, a change written behind the process's
// back (as another process would) is seen within a second, bookkeeping stamps invalidate nothing,
// a load that races an invalidation is not stored, and on PostgreSQL a killed LISTEN connection
// is bypassed and re-established. Two real processes: test/reliability/runtime-cache-processes.test.ts.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from "kysely";
import pg from "pg";
import v8 from "node:v8";
import { RuntimeCache } from "../src/cache/runtime-cache.js";
import { normalizeBinding } from "../src/domain/binding.js";
import { loadConfig } from "../src/config.js";
import { STALE_AFTER_MS } from "../src/jobs/runtime-invalidation.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, type Reply, startHarness } from "./helpers/harness.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts the queries run through the store, except the change feed's own polls. */
class QueryCounter implements KyselyPlugin {
  count = 0;
  tables: string[] = [];
  /** Reads of a license by its key hash (authentication and the one-read miss). */
  keyReads = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const text = JSON.stringify(args.node);
    if (!text.includes('"runtime_changes"')) {
      this.count++;
      if (args.node.kind === "SelectQueryNode" && text.includes('"key_hash"')) this.keyReads++;
      const m = /"TableNode","table":\{"kind":"SchemableIdentifierNode",.*?"name":"([a-z_]+)"/.exec(text);
      this.tables.push(m?.[1] ?? args.node.kind);
    }
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
  reset(): void {
    this.count = 0;
    this.keyReads = 0;
    this.tables = [];
  }
}

for (const engine of ENGINES) {
  describe(`runtime state cache [${engine}]`, () => {
    let h: Harness;
    const counter = new QueryCounter();

    before(async () => {
      // Rate-limit buckets in memory: the database store reads a bucket per call by design.
      h = await startHarness(engine, { env: { LICENSEKIT_RATE_LIMIT_STORE: "memory", LICENSEKIT_RUNTIME_CHANGES_POLL_MS: "50" } });
      await h.lk.runtimeInvalidation.start();
      h.lk.store.db = h.lk.store.db.withPlugin(counter);
      await waitLive(h);
    });
    after(async () => {
      await h?.close();
    });

    let n = 0;
    /** A write (management or runtime), with an Idempotency-Key where one is required. */
    const write = (o: Parameters<Harness["request"]>[0]) => h.request({ idempotencyKey: `rc-${Date.now()}-${n++}`, ...o });
    /** Applies every change recorded so far (this process's own writes too), so the next read is a clean miss. */
    const settle = () => h.lk.runtimeInvalidation.catchUp();
    const validate = (key: string, body: Record<string, unknown>) => h.request({ url: "/api/v1/license/validate", licenseKey: key, body });
    const check = (key: string, body: Record<string, unknown>) => h.request({ url: "/api/v1/license/check", licenseKey: key, body });
    const ok = (r: Reply) => assert.equal(r.status, 200, r.text);
    const denied = (r: Reply, status: number, code: string) => {
      assert.equal(r.status, status, r.text);
      assert.equal(r.json.error.code, code, r.text);
    };
    /** Runs `fn` and returns how many queries (other than the feed's) it ran. */
    async function queriesOf(fn: () => Promise<unknown>): Promise<{ n: number; tables: string[] }> {
      counter.reset();
      await fn();
      return { n: counter.count, tables: [...counter.tables] };
    }

    it("a validate or check answered from the cache runs no database query; a miss is one read of the license with its features and devices", async () => {
      const lic = await issueLicense(h, { max_activations: 3 });
      const product = lic.productId;
      const feat = await write({ url: `/api/v1/products/${product}/features`, body: { code: "export", name: "Export" } });
      assert.equal(feat.status, 201, feat.text);
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/features`, body: { feature_id: feat.json.data.id, max_consumptions: 10 } }));
      ok(await write({ url: "/api/v1/license/activate", licenseKey: lic.key, body: { fingerprint: "hit-fp" } }));

      await settle();
      // First read after the writes: a miss (the policy and the empty catalogue are read once too).
      const miss = await queriesOf(async () => ok(await validate(lic.key, { fingerprint: "hit-fp" })));
      assert.ok(miss.n >= 1 && miss.n <= 5, `miss ran ${miss.n} queries: ${miss.tables.join(", ")}`);

      const hits = await queriesOf(async () => {
        for (let i = 0; i < 10; i++) {
          const v = await validate(lic.key, { fingerprint: "hit-fp" });
          ok(v);
          assert.equal(v.json.data.features[0].code, "export");
          ok(await check(lic.key, { fingerprint: "hit-fp" }));
        }
      });
      assert.equal(hits.n, 0, `hits ran queries: ${hits.tables.join(", ")}`);

      // An unbound fingerprint is remembered as "no device": the second check reads nothing either.
      denied(await check(lic.key, { fingerprint: "nobody" }), 403, "DEVICE_NOT_ACTIVATED");
      const negative = await queriesOf(async () => denied(await check(lic.key, { fingerprint: "nobody" }), 403, "DEVICE_NOT_ACTIVATED"));
      assert.equal(negative.n, 0, `negative hit ran queries: ${negative.tables.join(", ")}`);

      // After a license-level invalidation the policy and the catalogue are still cached: one read
      // brings the license with its features and all its devices (issue 8 item 3)...
      h.lk.runtimeCache.invalidateLicense(lic.licenseId);
      const relicensed = await queriesOf(async () => {
        const v = await validate(lic.key, { fingerprint: "hit-fp" });
        ok(v);
        assert.equal(v.json.data.features[0].code, "export");
        assert.equal(v.json.data.features[0].quota, 10);
      });
      assert.deepEqual(relicensed.tables, ["licenses"]);
      // ...so a binding the license does not have is known to have no device without a read
      const unbound = await queriesOf(async () => denied(await check(lic.key, { fingerprint: "stranger" }), 403, "DEVICE_NOT_ACTIVATED"));
      assert.equal(unbound.n, 0, `unbound check ran queries: ${unbound.tables.join(", ")}`);
      // the same through check, whose miss is the same one read
      h.lk.runtimeCache.invalidateLicense(lic.licenseId);
      assert.deepEqual((await queriesOf(async () => ok(await check(lic.key, { fingerprint: "hit-fp" })))).tables, ["licenses"]);
    });

    it("the batched last-seen / last-validated flush invalidates nothing", async () => {
      const lic = await issueLicense(h);
      ok(await validate(lic.key, { fingerprint: "flush-fp" })); // binds (a write)
      await settle();
      ok(await validate(lic.key, { fingerprint: "flush-fp" })); // stamps batched
      await h.lk.sideEffects.flush();
      await settle();
      const after = await queriesOf(async () => ok(await validate(lic.key, { fingerprint: "flush-fp" })));
      assert.equal(after.n, 0, `after the flush: ${after.tables.join(", ")}`);
    });

    it("every kind of change is answered at once through the same process", async () => {
      const lic = await issueLicense(h, { max_activations: 2, allow_vm: true, validation_interval_minutes: 60 }, { expires_at: "2027-03-01T00:00:00.000Z" });
      const fp = { fingerprint: "chg-fp" };
      const warm = async () => {
        await settle();
        ok(await validate(lic.key, fp));
        const again = await queriesOf(async () => ok(await check(lic.key, fp)));
        assert.equal(again.n, 0, "warm before the change");
      };
      ok(await validate(lic.key, fp));

      // suspend / reinstate
      await warm();
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/suspend`, body: {} }));
      denied(await validate(lic.key, fp), 403, "LICENSE_INACTIVE");
      denied(await check(lic.key, fp), 403, "LICENSE_INACTIVE");
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/reinstate`, body: {} }));
      await warm();

      // renew: a new expires_at is shown at once
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/renew`, body: { expires_at: "2028-03-01T00:00:00.000Z" } }));
      assert.equal((await check(lic.key, fp)).json.data.expires_at, "2028-03-01T00:00:00.000Z");
      await warm();

      // policy: validation interval and VM rule
      ok(await write({ method: "PATCH", url: `/api/v1/policies/${lic.policyId}`, body: { validation_interval_minutes: 5 } }));
      const v = await validate(lic.key, fp);
      assert.equal(Date.parse(v.json.data.next_check_at) - Date.parse(v.json.data.issued_at), 5 * 60_000);
      ok(await validate(lic.key, { fingerprint: "vm-fp", is_vm: true }));
      await warm();
      ok(await write({ method: "PATCH", url: `/api/v1/policies/${lic.policyId}`, body: { allow_vm: false } }));
      denied(await validate(lic.key, { fingerprint: "vm-fp", is_vm: true }), 403, "VM_NOT_ALLOWED");

      // features: assignment, consume, usage reset
      const feat = await write({ url: `/api/v1/products/${lic.productId}/features`, body: { code: "seats", name: "Seats" } });
      await warm();
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/features`, body: { feature_id: feat.json.data.id, max_consumptions: 10 } }));
      assert.deepEqual((await check(lic.key, fp)).json.data.features, [{ code: "seats", enabled: true, quota: 10, consumed: 0, remaining: 10 }]);
      await warm();
      ok(await write({ url: "/api/v1/license/consume", licenseKey: lic.key, body: { ...fp, feature_code: "seats", amount: 3, event_id: "e1" } }));
      assert.equal((await check(lic.key, fp)).json.data.features[0].consumed, 3);
      await warm();
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/usage/reset`, body: { feature_id: feat.json.data.id, reset_consumed: true } }));
      assert.equal((await check(lic.key, fp)).json.data.features[0].consumed, 0);
      await warm();
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/features`, body: { feature_id: feat.json.data.id, enabled: false } }));
      assert.equal((await check(lic.key, fp)).json.data.features[0].enabled, false);

      // a first product version turns version gating on
      await warm();
      const ver = await write({ url: `/api/v1/products/${lic.productId}/versions`, body: { version: "1.0.0", released_at: "2026-01-01T00:00:00.000Z" } });
      assert.equal(ver.status, 201, ver.text);
      denied(await validate(lic.key, fp), 403, "VERSION_NOT_ELIGIBLE");
      ok(await validate(lic.key, { ...fp, app_version: "1.0.0" }));
      const withVersion = { ...fp, app_version: "1.0.0" };

      // devices: reset, then blacklist
      const devices = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/devices` });
      const device = devices.json.data.find((d: { fingerprint?: string }) => d.fingerprint === "chg-fp");
      ok(await check(lic.key, withVersion));
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/devices/${device.id}/reset`, body: {} }));
      denied(await check(lic.key, withVersion), 403, "DEVICE_NOT_ACTIVATED");
      ok(await validate(lic.key, withVersion)); // binds again
      ok(await check(lic.key, withVersion));
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/devices/${device.id}/blacklist`, body: {} }));
      denied(await validate(lic.key, withVersion), 403, "DEVICE_BLACKLISTED");

      // transfer with reset_devices releases the other device
      const other = { fingerprint: "other-fp", app_version: "1.0.0" };
      ok(await validate(lic.key, other));
      ok(await check(lic.key, other));
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/transfer`, body: { customer_email: "new@example.com", reset_devices: true } }));
      denied(await check(lic.key, other), 403, "DEVICE_NOT_ACTIVATED");

      // revoke
      ok(await validate(lic.key, other));
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/revoke`, body: {} }));
      denied(await validate(lic.key, other), 403, "LICENSE_INACTIVE");
    });

    it("a change written behind this process's back (as another process would) is answered within one second", async () => {
      const lic = await issueLicense(h);
      const fp = { fingerprint: "back-fp" };
      ok(await validate(lic.key, fp));
      ok(await validate(lic.key, fp));
      const db = h.lk.store.db;
      const t0 = Date.now();
      await db.updateTable("licenses").set({ state: "suspended" }).where("id", "=", lic.licenseId).execute();
      const ms = await msUntil(async () => (await validate(lic.key, fp)).status === 403);
      assert.ok(ms < 1000, `seen after ${ms} ms`);
      assert.ok(Date.now() - t0 < 2000);
      // a shared row (the policy) changes: every cached license is dropped
      await db.updateTable("licenses").set({ state: "active" }).where("id", "=", lic.licenseId).execute();
      await msUntil(async () => (await validate(lic.key, fp)).status === 200);
      await db.updateTable("policies").set({ grace_period_days: 0 }).where("id", "=", lic.policyId).execute();
      await db.updateTable("licenses").set({ expires_at: Date.parse("2026-02-01T00:00:00.000Z") }).where("id", "=", lic.licenseId).execute();
      const expiredMs = await msUntil(async () => (await validate(lic.key, fp)).status === 403);
      assert.ok(expiredMs < 1000, `expiry seen after ${expiredMs} ms`);
      denied(await validate(lic.key, fp), 403, "LICENSE_EXPIRED");
    });

    it("a changed license still authenticates from the cache: writes after writes read no license by key, validate loads it again", async () => {
      const lic = await issueLicense(h, { max_activations: 3 });
      const feat = await write({ url: `/api/v1/products/${lic.productId}/features`, body: { code: "meter", name: "Meter" } });
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/features`, body: { feature_id: feat.json.data.id, max_consumptions: 100 } }));
      ok(await write({ url: "/api/v1/license/activate", licenseKey: lic.key, body: { fingerprint: "stale-fp" } }));
      await settle();
      const consume = (event: string) => write({ url: "/api/v1/license/consume", licenseKey: lic.key, body: { fingerprint: "stale-fp", feature_code: "meter", event_id: event } });
      // the first write after the management writes loads the license (by key) once
      ok(await consume("s-0"));
      await settle();
      for (const event of ["s-1", "s-2"]) {
        const q = await queriesOf(async () => ok(await consume(event)));
        assert.equal(counter.keyReads, 0, `${event}: no read of the license by key (${q.tables.join(", ")})`);
      }
      await settle(); // the feed's own copies of those changes, so that the load below is not raced
      // validate is not answered from the stale entry: it loads the license with the new counters
      const first = await queriesOf(async () => {
        const r = await validate(lic.key, { fingerprint: "stale-fp" });
        ok(r);
        assert.equal(r.json.data.features.find((f: { code: string }) => f.code === "meter").consumed, 3);
      });
      assert.equal(counter.keyReads, 1, `validate after writes loads the license (${first.tables.join(", ")})`);
      const hit = await queriesOf(async () => ok(await validate(lic.key, { fingerprint: "stale-fp" })));
      assert.equal(hit.n, 0, "and is then answered from the cache");
      // a suspended license's key still authenticates a write, which is refused under the lock
      ok(await write({ url: `/api/v1/licenses/${lic.licenseId}/suspend`, body: {} }));
      await settle();
      denied(await consume("s-3"), 403, "LICENSE_INACTIVE");
      denied(await validate(lic.key, { fingerprint: "stale-fp" }), 403, "LICENSE_INACTIVE");
    });

    it("a load that races an invalidation is not stored; the cache is bounded; size 0 turns it off", async () => {
      const lic = await issueLicense(h);
      ok(await validate(lic.key, { fingerprint: "race-fp" }));
      await settle();
      const keyHash = (await h.lk.store.db.selectFrom("licenses").select("key_hash").where("id", "=", lic.licenseId).executeTakeFirstOrThrow()).key_hash;
      const cache = h.lk.runtimeCache;
      cache.invalidateLicense(lic.licenseId);
      const withState = { withState: true };
      const loading = cache.license(h.lk.store.db, keyHash, withState);
      cache.invalidateLicense(lic.licenseId); // a change lands while the read is in flight
      assert.ok(await loading);
      const again = await queriesOf(() => cache.license(h.lk.store.db, keyHash, withState));
      assert.ok(again.n >= 1, "the raced load was not stored");
      const settled = await queriesOf(() => cache.license(h.lk.store.db, keyHash, withState));
      assert.equal(settled.n, 0, "an undisturbed load is stored");

      const small = new RuntimeCache(2);
      small.setTrust(() => true);
      const keys = await h.lk.store.db.selectFrom("licenses").select("key_hash").limit(3).execute();
      assert.equal(keys.length, 3);
      for (const k of keys) await small.license(h.lk.store.db, k.key_hash);
      // Bounded by its capacity; a full cache is cut back in one pass, least recently used first.
      assert.ok(small.size >= 1 && small.size <= 2, `size ${small.size}`);
      assert.equal((await queriesOf(() => small.license(h.lk.store.db, keys[2]!.key_hash))).n, 0, "the newest entry is kept");
      assert.ok((await queriesOf(() => small.license(h.lk.store.db, keys[0]!.key_hash))).n >= 1, "the oldest entry was evicted");

      assert.equal(loadConfig({}).runtimeCache.size, 10_000_000);
      assert.equal(loadConfig({ LICENSEKIT_RUNTIME_CACHE_SIZE: "0" }).runtimeCache.size, 0);
      // the heap budget: half the V8 heap limit unless given in MiB
      assert.equal(loadConfig({}).runtimeCache.budgetBytes, Math.floor(v8.getHeapStatistics().heap_size_limit / 2));
      assert.equal(loadConfig({ LICENSEKIT_RUNTIME_CACHE_MB: "auto" }).runtimeCache.budgetBytes, Math.floor(v8.getHeapStatistics().heap_size_limit / 2));
      assert.equal(loadConfig({ LICENSEKIT_RUNTIME_CACHE_MB: "64" }).runtimeCache.budgetBytes, 64 * 2 ** 20);
      for (const bad of ["0", "-1", "1.5", "lots", "2000000"]) {
        assert.throws(() => loadConfig({ LICENSEKIT_RUNTIME_CACHE_MB: bad }), /LICENSEKIT_RUNTIME_CACHE_MB/, bad);
      }
      assert.throws(() => loadConfig({ LICENSEKIT_RUNTIME_CHANGES_POLL_MS: "5000" }), /LICENSEKIT_RUNTIME_CHANGES_POLL_MS/);
      const off = new RuntimeCache(0);
      off.setTrust(() => true);
      assert.equal(off.usable(), false);
      await off.license(h.lk.store.db, keys[0]!.key_hash);
      assert.equal(off.size, 0);
    });

    it("the cache is bounded by its heap budget: entries are reckoned by size, devices kept as id and status, least recently used dropped first (a hit is a second chance)", async () => {
      const licenses = [];
      for (let i = 0; i < 6; i++) {
        const lic = await issueLicense(h, { max_activations: 70 });
        ok(await validate(lic.key, { fingerprint: `budget-${i}` }));
        licenses.push(lic);
      }
      const rows = await h.lk.store.db
        .selectFrom("licenses")
        .select(["id", "key_hash"])
        .where(
          "id",
          "in",
          licenses.map((l) => l.licenseId),
        )
        .execute();
      const keyHash = new Map(rows.map((r) => [r.id, r.key_hash]));
      const db = h.lk.store.db;
      const bindingKey = (fp: string) => normalizeBinding({ fingerprint: fp }).key;

      // one license, its device and its features: the estimate grows with each, and the device kept is {id, status}
      const probe = new RuntimeCache(100);
      probe.setTrust(() => true);
      const entry = (await probe.license(db, keyHash.get(licenses[0]!.licenseId)!))!;
      const licenseOnly = probe.bytes;
      assert.ok(licenseOnly > 500 && licenseOnly < 3000, `license entry ${licenseOnly} bytes`);
      const device = await probe.device(db, entry, bindingKey("budget-0"));
      assert.deepEqual(Object.keys(device!).sort(), ["id", "status"]);
      assert.equal(device!.status, "active");
      assert.ok(probe.bytes > licenseOnly, "a device adds to the estimate");
      const withDevice = probe.bytes;
      assert.equal(await probe.device(db, entry, bindingKey("nobody")), undefined);
      assert.ok(probe.bytes > withDevice, "a remembered 'no device' adds to it too");
      await probe.features(db, entry);
      assert.equal(probe.size, 1);
      // a changed license keeps only its license row (stale, to authenticate): the rest's bytes go back
      probe.invalidateLicense(licenses[0]!.licenseId);
      assert.equal(probe.size, 1);
      assert.equal(probe.bytes, licenseOnly);

      // a budget of about three licenses holds about three, and keeps the most recently used
      const perLicense = licenseOnly;
      const small = new RuntimeCache(100, perLicense * 3 + perLicense / 2);
      small.setTrust(() => true);
      for (const l of licenses) await small.license(db, keyHash.get(l.licenseId)!);
      assert.ok(small.size >= 2 && small.size <= 3, `size ${small.size}`);
      assert.ok(small.bytes <= small.budgetBytes, `${small.bytes} within ${small.budgetBytes}`);
      const newest = keyHash.get(licenses[5]!.licenseId)!;
      assert.equal((await queriesOf(() => small.license(db, newest))).n, 0, "the newest license is kept");
      const oldest = keyHash.get(licenses[0]!.licenseId)!;
      assert.ok((await queriesOf(() => small.license(db, oldest))).n >= 1, "the oldest was dropped");

      // a license hit since it was stored outlives older and newer ones that were not
      const second = new RuntimeCache(3);
      second.setTrust(() => true);
      const hashes = licenses.map((l) => keyHash.get(l.licenseId)!);
      for (const k of hashes.slice(0, 3)) await second.license(db, k);
      await second.license(db, hashes[0]!); // a hit: marks it used
      await second.license(db, hashes[3]!); // over capacity: one eviction pass
      assert.equal((await queriesOf(() => second.license(db, hashes[0]!))).n, 0, "the used license was spared");
      assert.ok((await queriesOf(() => second.license(db, hashes[1]!))).n >= 1, "an unused older one was dropped");

      // devices past DEVICES_PER_LICENSE start over without the estimate drifting upwards
      const many = new RuntimeCache(100);
      many.setTrust(() => true);
      const e = (await many.license(db, keyHash.get(licenses[1]!.licenseId)!))!;
      for (let i = 0; i < 64; i++) await many.device(db, e, bindingKey(`absent-${i}`));
      const full = many.bytes;
      for (let i = 64; i < 300; i++) await many.device(db, e, bindingKey(`absent-${i}`));
      assert.ok(many.bytes <= full * 1.1, `${many.bytes} after 300 devices vs ${full} after 64`);
      many.invalidateAll();
      assert.equal(many.bytes, 0);

      // /metrics shows the fill against the bounds, and hits and misses
      const m = await h.request({ method: "GET", url: "/metrics" });
      assert.equal(m.status, 200);
      assert.match(m.text, /^licensekit_runtime_cache_licenses \d+$/m);
      assert.match(m.text, /^licensekit_runtime_cache_bytes \d+$/m);
      assert.match(m.text, new RegExp(`^licensekit_runtime_cache_budget_bytes ${h.lk.runtimeCache.budgetBytes}$`, "m"));
      assert.match(m.text, /^licensekit_runtime_cache_lookups_total\{result="hit"\} \d+$/m);
      assert.match(m.text, /^licensekit_runtime_cache_lookups_total\{result="miss"\} [1-9]\d*$/m);
    });

    it("a license with more than 64 devices is loaded without them; its devices are then read by binding key and remembered", async () => {
      const lic = await issueLicense(h, { max_activations: 100 });
      for (let i = 0; i < 65; i++) ok(await write({ url: "/api/v1/license/activate", licenseKey: lic.key, body: { fingerprint: `many-${i}` } }));
      await settle();
      const first = await queriesOf(async () => ok(await validate(lic.key, { fingerprint: "many-3" })));
      // (and, the first time this product is seen, its version catalogue)
      assert.deepEqual(
        first.tables.filter((t) => t !== "product_versions"),
        ["licenses", "devices"],
      );
      assert.equal((await queriesOf(async () => ok(await check(lic.key, { fingerprint: "many-3" })))).n, 0);
      const other = await queriesOf(async () => ok(await check(lic.key, { fingerprint: "many-64" })));
      assert.deepEqual(other.tables, ["devices"]);
      const none = await queriesOf(async () => denied(await check(lic.key, { fingerprint: "not-one-of-them" }), 403, "DEVICE_NOT_ACTIVATED"));
      assert.deepEqual(none.tables, ["devices"]);
      assert.equal((await queriesOf(async () => denied(await check(lic.key, { fingerprint: "not-one-of-them" }), 403, "DEVICE_NOT_ACTIVATED"))).n, 0);
    });

    if (engine === "sqlite") {
      it("a stalled change feed stops the cache from being served", async () => {
        const lic = await issueLicense(h);
        ok(await validate(lic.key, { fingerprint: "stall-fp" }));
        assert.equal(h.lk.runtimeCache.usable(), true);
        // Block the event loop past the staleness bound, so no poll can run: the next call reads.
        const until = Date.now() + STALE_AFTER_MS + 50;
        while (Date.now() < until) {
          // busy wait
        }
        assert.equal(h.lk.runtimeCache.usable(), false);
        const stale = await queriesOf(async () => ok(await validate(lic.key, { fingerprint: "stall-fp" })));
        assert.ok(stale.n >= 1, "served from the database while the feed was stale");
      });
    }

    if (engine === "postgres") {
      it("a killed LISTEN connection is bypassed at once and re-established; changes still arrive within one second", async () => {
        const lic = await issueLicense(h);
        const fp = { fingerprint: "kill-fp" };
        ok(await validate(lic.key, fp));
        const inv = h.lk.runtimeInvalidation;
        const pid = inv.listenerPid;
        assert.ok(pid, "listening");
        const listensBefore = inv.listens;
        const admin = new pg.Client({ connectionString: h.db.url });
        await admin.connect();
        try {
          await admin.query("select pg_terminate_backend($1)", [pid]);
          // While it is down the cache is not trusted: a change made now is answered at once.
          await admin.query("update licenses set state = 'suspended' where id = $1", [lic.licenseId]);
          const downMs = await msUntil(async () => (await validate(lic.key, fp)).status === 403);
          assert.ok(downMs < 1000, `seen after ${downMs} ms while the listener was down`);
          await msUntil(async () => inv.listens > listensBefore && h.lk.runtimeCache.usable(), 10_000);
          assert.notEqual(inv.listenerPid, pid);
          await admin.query("update licenses set state = 'active' where id = $1", [lic.licenseId]);
          await msUntil(async () => (await validate(lic.key, fp)).status === 200);
          await settle();
          ok(await validate(lic.key, fp));
          const hit = await queriesOf(async () => ok(await validate(lic.key, fp)));
          assert.equal(hit.n, 0, "cache trusted again after the reconnect");
          await admin.query("update licenses set state = 'suspended' where id = $1", [lic.licenseId]);
          const ms = await msUntil(async () => (await validate(lic.key, fp)).status === 403);
          assert.ok(ms < 1000, `seen after ${ms} ms after the reconnect`);
        } finally {
          await admin.end();
        }
      });
    }
  });
}

async function waitLive(h: Harness): Promise<void> {
  await msUntil(async () => h.lk.runtimeCache.usable(), 10_000);
}

/** Polls `cond` every 10 ms; returns the milliseconds until it held (throws after `limitMs`). */
async function msUntil(cond: () => Promise<boolean>, limitMs = 3000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - t0;
    if (Date.now() - t0 > limitMs) throw new Error(`condition not met within ${limitMs} ms`);
    await sleep(10);
  }
}
