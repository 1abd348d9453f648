// The runtime cache's copies of license, policy and feature rows share V8 hidden classes, frozen as
// they are kept (cache/runtime-cache.ts, fastCopy). A copy made by a spread had a hidden class of its
// own once frozen: with one class per license, every read of a cached license or feature on the
// validate path missed V8's megamorphic inline cache, and each license carried its own class in the
// heap (1,844 heap bytes per cached license against 955 with shared classes, bench/cache-memory.ts).
// Checked through V8's own %HaveSameMap on licenses loaded the way validate loads them, on both engines.
import assert from "node:assert/strict";
import v8 from "node:v8";
import { after, before, describe, it } from "node:test";
import type { CacheEntry } from "../src/cache/runtime-cache.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, type Reply, startHarness } from "./helpers/harness.js";

// Natives syntax for the functions compiled below only; the flag changes nothing else.
v8.setFlagsFromString("--allow-natives-syntax");
const sameClass = new Function("a", "b", "return %HaveSameMap(a, b)") as (a: object, b: object) => boolean;
const fastProperties = new Function("o", "return %HasFastProperties(o)") as (o: object) => boolean;

/** More licenses than a polymorphic inline cache tells apart (4), so a per-object class would show. */
const LICENSES = 12;

for (const engine of ENGINES) {
  describe(`runtime cache row shapes [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine, { env: { LICENSEKIT_RATE_LIMIT_STORE: "memory", LICENSEKIT_RUNTIME_CHANGES_POLL_MS: "50" } });
      await h.lk.runtimeInvalidation.start();
      for (let i = 0; i < 50 && !h.lk.runtimeCache.usable(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(h.lk.runtimeCache.usable(), "the runtime cache is live");
    });
    after(async () => {
      await h?.close();
    });

    let n = 0;
    const write = (o: Parameters<Harness["request"]>[0]) => h.request({ idempotencyKey: `shape-${Date.now()}-${n++}`, ...o });
    const ok = (r: Reply) => assert.equal(r.status, 200, r.text);

    it("cached licenses and their feature assignments share one hidden class per shape, their policy is one copy, all with fast properties", async () => {
      // One product and policy: every license row and feature row has the same columns.
      const first = await issueLicense(h, { max_activations: 3 });
      const feat = await write({ url: `/api/v1/products/${first.productId}/features`, body: { code: "export", name: "Export" } });
      assert.equal(feat.status, 201, feat.text);
      const keys = [first.key];
      const ids = [first.licenseId];
      for (let i = 1; i < LICENSES; i++) {
        const lic = await write({ url: "/api/v1/licenses", body: { product_id: first.productId, policy_id: first.policyId } });
        assert.equal(lic.status, 201, lic.text);
        keys.push(lic.json.data.license_key);
        ids.push(lic.json.data.license.id);
      }
      for (let i = 0; i < LICENSES; i++) {
        ok(await write({ url: `/api/v1/licenses/${ids[i]}/features`, body: { feature_id: feat.json.data.id, max_consumptions: 10 } }));
        ok(await write({ url: "/api/v1/license/activate", licenseKey: keys[i], body: { fingerprint: `shape-fp-${i}` } }));
      }
      await h.lk.runtimeInvalidation.catchUp();
      // Loaded by validate (a miss reads the license with its features and devices), then held.
      for (let i = 0; i < LICENSES; i++) ok(await h.request({ url: "/api/v1/license/validate", licenseKey: keys[i], body: { fingerprint: `shape-fp-${i}` } }));

      const entries: CacheEntry[] = [];
      for (const key of keys) {
        const before = h.lk.runtimeCache.stats.hits;
        const entry = await h.lk.runtimeCache.license(h.lk.store.db, h.lk.hasher.hash(key), { withState: true });
        assert.ok(entry, "the license is cached");
        assert.equal(h.lk.runtimeCache.stats.hits, before + 1, "answered from the cache");
        assert.ok(entry.features && entry.features.length === 1, "its features are cached");
        entries.push(entry);
      }
      const [e0] = entries as [CacheEntry];
      for (const [i, e] of entries.entries()) {
        assert.ok(Object.isFrozen(e.license) && Object.isFrozen(e.features![0]), "cached rows are frozen");
        assert.ok(sameClass(e.license, e0.license), `license ${i} has the hidden class of license 0`);
        assert.ok(sameClass(e.features![0]!, e0.features![0]!), `feature row of license ${i} has the hidden class of license 0's`);
        assert.equal(e.policy, e0.policy, `license ${i} holds the one cached copy of their policy`);
      }
      for (const [name, o] of [
        ["license", e0.license],
        ["policy", e0.policy],
        ["feature", e0.features![0]!],
      ] as const) {
        assert.ok(fastProperties(o), `the cached ${name} row has fast properties (not dictionary mode)`);
      }
    });
  });
}
