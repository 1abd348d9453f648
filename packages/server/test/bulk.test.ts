// POST /api/v1/licenses/bulk (an extension beyond the contract): one action over up to 1000
// licenses named by id or selected by a filter. Each license succeeds or fails on its own, each
// change leaves the same single event the single-license route leaves, and the whole answer is
// stored for idempotent replay (Idempotency-Key required).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DAY_MS } from "../src/clock.js";
import { newId } from "../src/ids.js";
import type { LicenseRow } from "../src/store/schema.js";
import { assertContract } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, startHarness } from "./helpers/harness.js";

const iso = (ms: number) => new Date(ms).toISOString();
const UNKNOWN = "lic_01AAAAAAAAAAAAAAAAAAAAAAAA";

for (const engine of ENGINES) {
  describe(`bulk license actions [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => h?.close());

    let n = 0;
    const key = () => `bulk-${engine}-${++n}`;
    const bulk = (body: unknown, idempotencyKey: string | null = key()) =>
      h.request({ url: "/api/v1/licenses/bulk", body, ...(idempotencyKey ? { idempotencyKey } : {}) });
    const row = (id: string) => h.lk.store.db.selectFrom("licenses").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    const eventsOf = (ids: string[], type: string) =>
      h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "in", ids).where("event_type", "=", type).orderBy("sequence").execute();
    // biome-ignore lint/suspicious/noExplicitAny: parsed response bodies
    const assertError = (res: { status: number; json: any; text: string }, status: number, code: string, detail?: RegExp) => {
      assert.equal(res.status, status, res.text);
      assert.equal(res.json.error.code, code, res.text);
      if (detail) assert.match(res.json.error.detail, detail);
    };

    /** A product with a subscription policy (30 days), a perpetual policy, a customer and licenses. */
    const fleet = async (subscriptions: number, perpetual = 0) => {
      const s = key();
      const product = await h.request({ url: "/api/v1/products", body: { name: `Fleet ${s}`, code: `fleet-${s}` } });
      const productId = product.json.data.id as string;
      const sub = await h.request({ url: `/api/v1/products/${productId}/policies`, body: { name: "Sub", code: "sub", license_type: "subscription", duration_days: 30 } });
      const perp = await h.request({ url: `/api/v1/products/${productId}/policies`, body: { name: "Perp", code: "perp", license_type: "perpetual" } });
      const customer = await h.request({ url: "/api/v1/customers", body: { name: `Customer ${s}`, code: `cust-${s}` } });
      const customerId = customer.json.data.id as string;
      const issue = async (policyId: string) => {
        const res = await h.request({ url: "/api/v1/licenses", body: { product_id: productId, policy_id: policyId, customer_id: customerId } });
        assert.equal(res.status, 201, res.text);
        return res.json.data.license.id as string;
      };
      const subIds: string[] = [];
      for (let i = 0; i < subscriptions; i++) subIds.push(await issue(sub.json.data.id));
      const perpIds: string[] = [];
      for (let i = 0; i < perpetual; i++) perpIds.push(await issue(perp.json.data.id));
      return { productId, subPolicyId: sub.json.data.id as string, customerId, subIds, perpIds };
    };

    it("suspends the named licenses; unknown and revoked ones fail on their own; results keep the request order; one event per change", async () => {
      const f = await fleet(3);
      const [a, b, c] = f.subIds as [string, string, string];
      assert.equal((await h.request({ method: "POST", url: `/api/v1/licenses/${c}/revoke` })).status, 200);
      const k = key();
      const body = { action: "suspend", license_ids: [b, UNKNOWN, c, a] };
      const res = await bulk(body, k);
      assert.equal(res.status, 200, res.text);
      const d = res.json.data;
      assert.equal(d.action, "suspend");
      assert.deepEqual(
        d.results.map((r: { license_id: string; status: string }) => [r.license_id, r.status]),
        [
          [b, "ok"],
          [UNKNOWN, "error"],
          [c, "error"],
          [a, "ok"],
        ],
      );
      assert.equal(d.succeeded, 2);
      assert.equal(d.failed, 2);
      assertContract("License", d.results[0].license);
      assert.equal(d.results[0].license.status, "suspended");
      assert.equal(d.results[0].error, undefined);
      assert.deepEqual(d.results[1].error, { code: "NOT_FOUND", message: "not found", detail: `license ${UNKNOWN} not found` });
      assert.equal(d.results[1].license, undefined);
      assert.equal(d.results[2].error.code, "CONFLICT");
      assert.equal((await row(a)).state, "suspended");
      assert.equal((await row(b)).state, "suspended");
      assert.equal((await row(c)).state, "revoked");
      const ev = await eventsOf([a, b, c], "license.suspended");
      assert.deepEqual(ev.map((e) => e.resource_id).sort(), [a, b].sort());
      assert.ok(ev.every((e) => JSON.parse(e.metadata).bulk === true && e.request_id === res.json.meta.request_id));

      const replay = await bulk(body, k);
      assert.equal(replay.status, 200);
      assert.equal(replay.text, res.text, "a replay is the stored answer, byte for byte");
      assert.equal(replay.headers["idempotent-replayed"], "true");
      assert.equal((await eventsOf([a, b, c], "license.suspended")).length, 2);
      assertError(await bulk({ action: "revoke", license_ids: [a] }, k), 409, "IDEMPOTENCY_CONFLICT");
      // Suspending again is a no-op for each: ok, no new event.
      const again = await bulk({ action: "suspend", license_ids: [a, b] });
      assert.equal(again.json.data.succeeded, 2);
      assert.equal((await eventsOf([a, b], "license.suspended")).length, 2);
    });

    it("renews by filter: every subscription license moves once, a perpetual one in the same set fails without undoing the others", async () => {
      const f = await fleet(3, 1);
      const before = await Promise.all(f.subIds.map(row));
      const res = await bulk({ action: "renew", filter: { customer_id: f.customerId }, extend_by_days: 10 });
      assert.equal(res.status, 200, res.text);
      const d = res.json.data;
      assert.equal(d.results.length, 4);
      assert.deepEqual(
        d.results.map((r: { license_id: string }) => r.license_id),
        [...f.subIds, ...f.perpIds].sort().reverse(),
        "a filter selects newest first",
      );
      assert.equal(d.succeeded, 3);
      assert.equal(d.failed, 1);
      const failed = d.results.find((r: { status: string }) => r.status === "error");
      assert.equal(failed.license_id, f.perpIds[0]);
      assert.equal(failed.error.code, "VALIDATION_ERROR");
      assert.match(failed.error.detail, /perpetual/);
      for (const [i, id] of f.subIds.entries()) {
        const after = await row(id);
        assert.equal(after.expires_at, before[i]!.expires_at! + 10 * DAY_MS);
        assert.equal(after.entitlement_version, before[i]!.entitlement_version + 1);
      }
      const ev = await eventsOf([...f.subIds, ...f.perpIds], "license.renewed");
      assert.equal(ev.length, 3);
      const perp = await row(f.perpIds[0]!);
      assert.equal(perp.entitlement_version, 1, "the failed license is untouched");

      const explicit = iso(h.clock.now() + 365 * DAY_MS);
      const byPolicy = await bulk({ action: "renew", filter: { policy_id: f.subPolicyId }, expires_at: explicit });
      assert.equal(byPolicy.json.data.succeeded, 3, byPolicy.text);
      assert.ok(byPolicy.json.data.results.every((r: { license: { expires_at: string } }) => r.license.expires_at === explicit));
    });

    it("reinstates and revokes by product filter; a filter matching nothing answers an empty result", async () => {
      const f = await fleet(2);
      assert.equal((await bulk({ action: "suspend", filter: { product_id: f.productId } })).json.data.succeeded, 2);
      const re = await bulk({ action: "reinstate", filter: { product_id: f.productId, customer_id: f.customerId } });
      assert.equal(re.json.data.succeeded, 2, re.text);
      assert.equal((await eventsOf(f.subIds, "license.reinstated")).length, 2);
      const rv = await bulk({ action: "revoke", license_ids: f.subIds });
      assert.equal(rv.json.data.succeeded, 2);
      assert.ok(rv.json.data.results.every((r: { license: { status: string } }) => r.license.status === "revoked"));
      assert.equal((await eventsOf(f.subIds, "license.revoked")).length, 2);
      const none = await bulk({ action: "revoke", filter: { customer_id: "cust_01AAAAAAAAAAAAAAAAAAAAAAAA" } });
      assert.equal(none.status, 200);
      assert.deepEqual(none.json.data, { action: "revoke", results: [], succeeded: 0, failed: 0 });
    });

    it("two concurrent bulks over the same licenses in opposite orders both complete", async () => {
      const f = await fleet(4);
      const [x, y] = await Promise.all([
        bulk({ action: "renew", license_ids: f.subIds, extend_by_days: 1 }),
        bulk({ action: "renew", license_ids: [...f.subIds].reverse(), extend_by_days: 2 }),
      ]);
      assert.equal(x.status, 200, x.text);
      assert.equal(y.status, 200, y.text);
      assert.equal(x.json.data.succeeded + y.json.data.succeeded, 8);
      assert.equal((await eventsOf(f.subIds, "license.renewed")).length, 8);
    });

    it("422 for the body rules: license_ids xor filter, a non-empty filter, renew's dates, id list bounds", async () => {
      const f = await fleet(1);
      const id = f.subIds[0]!;
      assertError(await bulk({ action: "suspend" }), 422, "VALIDATION_ERROR", /license_ids, filter/);
      assertError(await bulk({ action: "suspend", license_ids: [id], filter: { product_id: f.productId } }), 422, "VALIDATION_ERROR", /exactly one/);
      assertError(await bulk({ action: "suspend", filter: {} }), 422, "VALIDATION_ERROR", /field filter/);
      assertError(await bulk({ action: "suspend", license_ids: [id], extend_by_days: 3 }), 422, "VALIDATION_ERROR", /field extend_by_days: only allowed with action renew/);
      assertError(await bulk({ action: "renew", license_ids: [id] }), 422, "VALIDATION_ERROR", /expires_at, extend_by_days/);
      assertError(await bulk({ action: "renew", license_ids: [id], extend_by_days: 0 }), 422, "VALIDATION_ERROR", /extend_by_days/);
      assertError(await bulk({ action: "renew", license_ids: [id], expires_at: iso(h.clock.now() - DAY_MS) }), 422, "VALIDATION_ERROR", /field expires_at: must be in the future/);
      assertError(await bulk({ action: "suspend", license_ids: [] }), 422, "VALIDATION_ERROR", /license_ids/);
      assertError(await bulk({ action: "suspend", license_ids: [id, id] }), 422, "VALIDATION_ERROR", /duplicates/);
      const many = Array.from({ length: 1001 }, (_, i) => `lic_${String(i).padStart(26, "0")}`);
      assertError(await bulk({ action: "suspend", license_ids: many }), 422, "VALIDATION_ERROR", /at most 1000/);
      assert.equal((await row(id)).state, "active");
    });

    it("422 when a filter matches more than 1000 licenses (nothing changes); exactly 1000 are processed", async () => {
      const f = await fleet(1);
      const template = await row(f.subIds[0]!);
      const now = h.clock.now();
      const rows: LicenseRow[] = Array.from({ length: 1000 }, (_, i) => ({
        ...template,
        id: newId("lic", now),
        key_hash: `${template.key_hash}-${i}`,
      }));
      for (let i = 0; i < rows.length; i += 100) await h.lk.store.db.insertInto("licenses").values(rows.slice(i, i + 100)).execute();
      const res = await bulk({ action: "suspend", filter: { product_id: f.productId } });
      assertError(res, 422, "VALIDATION_ERROR", /field filter: matches more than 1000/);
      const suspended = await h.lk.store.db.selectFrom("licenses").select("id").where("product_id", "=", f.productId).where("state", "=", "suspended").execute();
      assert.equal(suspended.length, 0);
      await h.lk.store.db.deleteFrom("licenses").where("id", "=", rows[0]!.id).execute();
      const all = await bulk({ action: "suspend", filter: { product_id: f.productId } });
      assert.equal(all.status, 200, all.text);
      assert.equal(all.json.data.succeeded, 1000);
      assert.equal(all.json.data.failed, 0);
      assert.equal((await eventsOf([f.subIds[0]!, rows[1]!.id], "license.suspended")).length, 2);
    });

    it("400 without an Idempotency-Key or for an unknown field; 422 for an unknown action", async () => {
      assertError(await bulk({ action: "suspend", license_ids: [UNKNOWN] }, null), 400, "IDEMPOTENCY_KEY_REQUIRED");
      assertError(await bulk({ action: "suspend", license_ids: [UNKNOWN], dry_run: true }), 400, "INVALID_JSON", /dry_run/);
      assertError(await bulk({ action: "suspend", filter: { status: "active" } }), 400, "INVALID_JSON", /status/);
      const unknownAction = await bulk({ action: "delete", license_ids: [UNKNOWN] });
      assert.equal(unknownAction.status, 422, unknownAction.text);
      assert.match(unknownAction.json.error.detail, /field action: must be one of suspend, reinstate, revoke, renew/);
    });
  });
}
