// License actions (NOTES §7, §11): renew and transfer (Idempotency-Key required), feature
// assignments and usage reset. Each success is checked against the contract and leaves exactly one
// audit event; each operation-specific refusal (400, 404, 409, 422) is checked by code and detail.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DAY_MS } from "../src/clock.js";
import { assertContract, assertOperationResponse } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";

const iso = (ms: number) => new Date(ms).toISOString();
const UNKNOWN_LICENSE = "lic_01AAAAAAAAAAAAAAAAAAAAAAAA";

for (const engine of ENGINES) {
  describe(`license actions [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => h?.close());

    let n = 0;
    const key = () => `la-${engine}-${++n}`;
    const events = (resourceId: string, type?: string) => {
      let q = h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", resourceId);
      if (type) q = q.where("event_type", "=", type);
      return q.orderBy("sequence").execute();
    };
    const row = (id: string) => h.lk.store.db.selectFrom("licenses").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    const renew = (id: string, body: unknown, idempotencyKey: string | null = key()) =>
      h.request({ url: `/api/v1/licenses/${id}/renew`, body, ...(idempotencyKey ? { idempotencyKey } : {}) });
    const transfer = (id: string, body: unknown, idempotencyKey: string | null = key()) =>
      h.request({ url: `/api/v1/licenses/${id}/transfer`, body, ...(idempotencyKey ? { idempotencyKey } : {}) });
    const lifecycle = (id: string, action: "suspend" | "revoke") => h.request({ method: "POST", url: `/api/v1/licenses/${id}/${action}` });
    // biome-ignore lint/suspicious/noExplicitAny: parsed response bodies
    const assertError = (res: { status: number; json: any; text: string }, status: number, code: string, detail?: RegExp) => {
      assert.equal(res.status, status, res.text);
      assert.equal(res.json.error.code, code, res.text);
      if (detail) assert.match(res.json.error.detail, detail);
    };

    describe("renewLicense", () => {
      it("extends from the stored expiry while active, bumps entitlement_version, records license.renewed; a replay is identical", async () => {
        const lic = await issueLicense(h, { duration_days: 30 });
        const before = await row(lic.licenseId);
        const k = key();
        const res = await renew(lic.licenseId, { extend_by_days: 10 }, k);
        assert.equal(res.status, 200, res.text);
        assertContract("License", res.json.data);
        assertOperationResponse("/api/v1/licenses/{id}/renew", "post", "200", res.json);
        assert.equal(res.json.data.expires_at, iso(before.expires_at! + 10 * DAY_MS));
        assert.equal(res.json.data.entitlement_version, before.entitlement_version + 1);
        assert.equal(res.json.data.status, "active");
        const ev = await events(lic.licenseId, "license.renewed");
        assert.equal(ev.length, 1);
        assert.equal(ev[0]!.resource_type, "license");
        assert.deepEqual(JSON.parse(ev[0]!.metadata), { previous_expires_at: iso(before.expires_at!), expires_at: res.json.data.expires_at, extend_by_days: 10 });
        const replay = await renew(lic.licenseId, { extend_by_days: 10 }, k);
        assert.equal(replay.status, 200);
        assert.equal(replay.text, res.text);
        assert.equal(replay.headers["idempotent-replayed"], "true");
        assert.equal((await row(lic.licenseId)).expires_at, before.expires_at! + 10 * DAY_MS, "extended once");
        assert.equal((await events(lic.licenseId, "license.renewed")).length, 1);
      });

      it("extends from now once the license has expired; an explicit expires_at is taken as is", async () => {
        const lic = await issueLicense(h, {}, { expires_at: iso(h.clock.now() + DAY_MS) });
        h.clock.advanceDays(5);
        const now = h.clock.now();
        const got = await h.request({ url: `/api/v1/licenses/${lic.licenseId}` });
        assert.equal(got.json.data.status, "expired");
        const res = await renew(lic.licenseId, { extend_by_days: 10 });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.data.expires_at, iso(now + 10 * DAY_MS));
        assert.equal(res.json.data.status, "active");
        const explicit = iso(now + 100 * DAY_MS);
        const res2 = await renew(lic.licenseId, { expires_at: explicit });
        assert.equal(res2.status, 200, res2.text);
        assert.equal(res2.json.data.expires_at, explicit);
        assert.equal((await events(lic.licenseId, "license.renewed")).length, 2);
      });

      it("a license without an expiry gets one counted from now; a suspended license stays suspended", async () => {
        const lic = await issueLicense(h, { license_type: "trial" });
        assert.equal((await row(lic.licenseId)).expires_at, null);
        assert.equal((await lifecycle(lic.licenseId, "suspend")).status, 200);
        const res = await renew(lic.licenseId, { extend_by_days: 14 });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.data.status, "suspended");
        assert.equal(res.json.data.expires_at, iso(h.clock.now() + 14 * DAY_MS));
      });

      it("validates order_id / subscription_id and records them in the event without rewriting the license's linkage", async () => {
        const lic = await issueLicense(h, { duration_days: 30 });
        const order = await h.request({ url: `/api/v1/products/${lic.productId}/orders`, body: { external_system: "stripe", external_id: `in_${key()}`, status: "paid" } });
        assert.equal(order.status, 201, order.text);
        const res = await renew(lic.licenseId, { extend_by_days: 30, order_id: order.json.data.id });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.data.order_id, undefined, "the stored origin linkage is not rewritten");
        const ev = await events(lic.licenseId, "license.renewed");
        assert.equal(JSON.parse(ev[0]!.metadata).order_id, order.json.data.id);
        const missing = await renew(lic.licenseId, { extend_by_days: 30, order_id: "ord_01AAAAAAAAAAAAAAAAAAAAAAAA" });
        assertError(missing, 404, "NOT_FOUND", /order_id/);
        const other = await issueLicense(h);
        const foreign = await renew(other.licenseId, { extend_by_days: 30, order_id: order.json.data.id });
        assertError(foreign, 422, "VALIDATION_ERROR", /order_id/);
      });

      it("422: neither or both of expires_at / extend_by_days, a past expires_at, extend_by_days < 1, a non-renewable type", async () => {
        const lic = await issueLicense(h, { duration_days: 30 });
        assertError(await renew(lic.licenseId, {}), 422, "VALIDATION_ERROR", /expires_at.*extend_by_days/);
        assertError(await renew(lic.licenseId, { extend_by_days: 1, expires_at: iso(h.clock.now() + DAY_MS) }), 422, "VALIDATION_ERROR", /exactly one/);
        assertError(await renew(lic.licenseId, { expires_at: iso(h.clock.now() - DAY_MS) }), 422, "VALIDATION_ERROR", /field expires_at: must be in the future/);
        assertError(await renew(lic.licenseId, { extend_by_days: 0 }), 422, "VALIDATION_ERROR", /extend_by_days/);
        assertError(await renew(lic.licenseId, { extend_by_days: 1e15 }), 422, "VALIDATION_ERROR", /extend_by_days/);
        for (const type of ["perpetual", "consumption"]) {
          const other = await issueLicense(h, { license_type: type });
          assertError(await renew(other.licenseId, { extend_by_days: 10 }), 422, "VALIDATION_ERROR", new RegExp(`${type}.*not renewable`));
        }
        assert.equal((await events(lic.licenseId, "license.renewed")).length, 0);
      });

      it("409 on a revoked license; 404 for an unknown one", async () => {
        const lic = await issueLicense(h, { duration_days: 30 });
        await lifecycle(lic.licenseId, "revoke");
        assertError(await renew(lic.licenseId, { extend_by_days: 10 }), 409, "CONFLICT", /revoked/);
        assertError(await renew(UNKNOWN_LICENSE, { extend_by_days: 10 }), 404, "NOT_FOUND");
      });

      it("400 without an Idempotency-Key or with an unknown field; 409 reusing a key with another body", async () => {
        const lic = await issueLicense(h, { duration_days: 30 });
        assertError(await renew(lic.licenseId, { extend_by_days: 1 }, null), 400, "IDEMPOTENCY_KEY_REQUIRED");
        assertError(await renew(lic.licenseId, { extend_by_days: 1, reinstate: true }), 400, "INVALID_JSON", /reinstate/);
        const k = key();
        assert.equal((await renew(lic.licenseId, { extend_by_days: 1 }, k)).status, 200);
        assertError(await renew(lic.licenseId, { extend_by_days: 2 }, k), 409, "IDEMPOTENCY_CONFLICT");
      });

      it("10 concurrent renews with one Idempotency-Key extend exactly once and answer identically", async () => {
        const lic = await issueLicense(h, { duration_days: 30 });
        const before = await row(lic.licenseId);
        const k = key();
        const answers = await Promise.all(Array.from({ length: 10 }, () => renew(lic.licenseId, { extend_by_days: 7 }, k)));
        const ok = answers.filter((a) => a.status === 200);
        assert.ok(ok.length >= 1);
        for (const a of answers.filter((x) => x.status !== 200)) assertError(a, 409, "IDEMPOTENCY_IN_PROGRESS");
        for (const a of ok) assert.equal(a.text, ok[0]!.text);
        const after = await row(lic.licenseId);
        assert.equal(after.expires_at, before.expires_at! + 7 * DAY_MS);
        assert.equal(after.entitlement_version, before.entitlement_version + 1);
        assert.equal((await events(lic.licenseId, "license.renewed")).length, 1);
        const replay = await renew(lic.licenseId, { extend_by_days: 7 }, k);
        assert.equal(replay.text, ok[0]!.text);
      });
    });

    describe("transferLicense", () => {
      const activate = (licenseKey: string, fingerprint: string) =>
        h.request({ url: "/api/v1/license/activate", licenseKey, body: { fingerprint }, idempotencyKey: key() });

      it("moves the assignee, counts the transfer, releases every active device with reset_devices, records license.transferred", async () => {
        const lic = await issueLicense(h, { max_activations: 3 });
        for (const fp of ["t-a", "t-b"]) assert.equal((await activate(lic.key, fp)).status, 200);
        const customer = await h.request({ url: "/api/v1/customers", body: { name: "Hooli", code: `hooli-${key()}` } });
        const before = await row(lic.licenseId);
        const res = await transfer(lic.licenseId, { customer_id: customer.json.data.id, customer_email: "gavin@hooli.test", customer_name: "Gavin", reset_devices: true });
        assert.equal(res.status, 200, res.text);
        assertContract("License", res.json.data);
        assertOperationResponse("/api/v1/licenses/{id}/transfer", "post", "200", res.json);
        const d = res.json.data;
        assert.equal(d.customer_id, customer.json.data.id);
        assert.equal(d.customer_email, "gavin@hooli.test");
        assert.equal(d.customer_name, "Gavin");
        assert.equal(d.times_transferred, 1);
        assert.equal(d.active_device_count, 0);
        assert.equal(d.entitlement_version, before.entitlement_version + 1);
        const devices = await h.lk.store.db.selectFrom("devices").select("status").where("license_id", "=", lic.licenseId).execute();
        assert.deepEqual(devices.map((x) => x.status), ["reset", "reset"]);
        const ev = await events(lic.licenseId, "license.transferred");
        assert.equal(ev.length, 1);
        const meta = JSON.parse(ev[0]!.metadata);
        assert.equal(meta.reset_devices, 2);
        assert.equal(meta.customer_id, customer.json.data.id);
        assert.equal(meta.previous_customer_id, null);
        // A released seat can be taken again.
        assert.equal((await activate(lic.key, "t-c")).status, 200);
      });

      it("an empty customer_id clears the link; max_transfers 0 is unlimited", async () => {
        const customer = await h.request({ url: "/api/v1/customers", body: { name: "Pied Piper", code: `pp-${key()}` } });
        const lic = await issueLicense(h, {}, { customer_id: customer.json.data.id });
        const res = await transfer(lic.licenseId, { customer_id: "" });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.data.customer_id, undefined);
        for (let i = 0; i < 3; i++) assert.equal((await transfer(lic.licenseId, { customer_name: `Owner ${i}` })).status, 200);
        assert.equal((await row(lic.licenseId)).times_transferred, 4);
        assert.equal((await events(lic.licenseId, "license.transferred")).length, 4);
      });

      it("409 TRANSFER_LIMIT_EXCEEDED past max_transfers; 409 CONFLICT on a revoked license", async () => {
        const lic = await issueLicense(h, { max_transfers: 1 });
        assert.equal((await transfer(lic.licenseId, { customer_name: "First" })).status, 200);
        assertError(await transfer(lic.licenseId, { customer_name: "Second" }), 409, "TRANSFER_LIMIT_EXCEEDED");
        assert.equal((await row(lic.licenseId)).customer_name, "First");
        const revoked = await issueLicense(h);
        await lifecycle(revoked.licenseId, "revoke");
        assertError(await transfer(revoked.licenseId, { customer_name: "X" }), 409, "CONFLICT", /revoked/);
      });

      it("422 without any change or with a bad email; 404 for an unknown customer or license; 400 without a key or with an unknown field", async () => {
        const lic = await issueLicense(h);
        assertError(await transfer(lic.licenseId, {}), 422, "VALIDATION_ERROR", /at least one/);
        assertError(await transfer(lic.licenseId, { reset_devices: false }), 422, "VALIDATION_ERROR", /at least one/);
        assertError(await transfer(lic.licenseId, { customer_email: "nope" }), 422, "VALIDATION_ERROR", /customer_email/);
        assertError(await transfer(lic.licenseId, { customer_id: "cust_01AAAAAAAAAAAAAAAAAAAAAAAA" }), 404, "NOT_FOUND", /field customer_id/);
        assertError(await transfer(UNKNOWN_LICENSE, { customer_name: "X" }), 404, "NOT_FOUND");
        assertError(await transfer(lic.licenseId, { customer_name: "X" }, null), 400, "IDEMPOTENCY_KEY_REQUIRED");
        assertError(await transfer(lic.licenseId, { owner: "X" }), 400, "INVALID_JSON", /owner/);
        assert.equal((await events(lic.licenseId, "license.transferred")).length, 0);
        assert.equal((await row(lic.licenseId)).times_transferred, 0);
      });
    });

    describe("license features and usage reset", () => {
      const feature = async (productId: string, code: string) => {
        const res = await h.request({ url: `/api/v1/products/${productId}/features`, body: { name: `Feature ${code}`, code } });
        assert.equal(res.status, 201, res.text);
        return res.json.data.id as string;
      };
      const assign = (id: string, body: unknown) => h.request({ url: `/api/v1/licenses/${id}/features`, body });
      const reset = (id: string, body: unknown) => h.request({ url: `/api/v1/licenses/${id}/usage/reset`, body });

      it("assign creates, re-assign updates (fields left out are kept), list shows them newest first; each change records one event", async () => {
        const lic = await issueLicense(h, { license_type: "consumption" });
        const exportId = await feature(lic.productId, "export");
        const apiId = await feature(lic.productId, "api");
        const empty = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/features` });
        assert.equal(empty.status, 200);
        assert.deepEqual(empty.json.data, []);
        const v0 = (await row(lic.licenseId)).entitlement_version;

        const a = await assign(lic.licenseId, { feature_id: exportId, max_consumptions: 100, metadata: { tier: "gold" } });
        assert.equal(a.status, 200, a.text);
        assertContract("LicenseFeature", a.json.data);
        assertOperationResponse("/api/v1/licenses/{id}/features", "post", "200", a.json);
        assert.deepEqual(a.json.data, {
          license_id: lic.licenseId,
          feature_id: exportId,
          feature_code: "export",
          feature_name: "Feature export",
          enabled: true,
          max_consumptions: 100,
          total_consumptions: 0,
          remaining: 100,
          metadata: { tier: "gold" },
        });
        const expiresAt = iso(h.clock.now() + 30 * DAY_MS);
        const u = await assign(lic.licenseId, { feature_id: exportId, enabled: false, expires_at: expiresAt });
        assert.equal(u.status, 200, u.text);
        assert.equal(u.json.data.enabled, false);
        assert.equal(u.json.data.max_consumptions, 100, "kept");
        assert.deepEqual(u.json.data.metadata, { tier: "gold" }, "kept");
        assert.equal(u.json.data.expires_at, expiresAt);
        const same = await assign(lic.licenseId, { feature_id: exportId, enabled: false });
        assert.equal(same.status, 200);
        assert.deepEqual(same.json.data, u.json.data);
        assert.equal((await assign(lic.licenseId, { feature_id: apiId })).status, 200);

        const ev = await events(lic.licenseId, "license.feature_assigned");
        assert.deepEqual(ev.map((e) => JSON.parse(e.metadata).assignment), ["created", "updated", "created"], "the no-op re-assign records nothing");
        assert.equal((await row(lic.licenseId)).entitlement_version, v0 + 3);

        const list = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/features` });
        assert.equal(list.status, 200);
        assertOperationResponse("/api/v1/licenses/{id}/features", "get", "200", list.json);
        assert.deepEqual(list.json.data.map((f: { feature_code: string }) => f.feature_code), ["api", "export"]);
        const page1 = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/features?limit=1` });
        assert.equal(page1.json.data.length, 1);
        assert.ok(page1.json.page_info.next_cursor);
        const page2 = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/features?limit=1&cursor=${page1.json.page_info.next_cursor}` });
        assert.deepEqual(page2.json.data.map((f: { feature_code: string }) => f.feature_code), ["export"]);
        assert.equal(page2.json.page_info.next_cursor, null);
        assertError(await h.request({ url: `/api/v1/licenses/${UNKNOWN_LICENSE}/features` }), 404, "NOT_FOUND");
      });

      it("assign refusals: unknown feature 404, another product's feature 422, past expires_at 422, revoked license 409, unknown field 400", async () => {
        const lic = await issueLicense(h);
        const other = await issueLicense(h);
        const foreign = await feature(other.productId, "foreign");
        const own = await feature(lic.productId, "own");
        assertError(await assign(lic.licenseId, { feature_id: "feat_01AAAAAAAAAAAAAAAAAAAAAAAA" }), 404, "NOT_FOUND", /field feature_id/);
        assertError(await assign(UNKNOWN_LICENSE, { feature_id: own }), 404, "NOT_FOUND");
        assertError(await assign(lic.licenseId, { feature_id: foreign }), 422, "VALIDATION_ERROR", /field feature_id: .*belongs to product/);
        assertError(await assign(lic.licenseId, { feature_id: own, expires_at: iso(h.clock.now() - 1000) }), 422, "VALIDATION_ERROR", /field expires_at/);
        assertError(await assign(lic.licenseId, { feature_id: own, max_consumptions: -1 }), 422, "VALIDATION_ERROR", /max_consumptions/);
        assertError(await assign(lic.licenseId, { feature_id: own, quota: 3 }), 400, "INVALID_JSON", /quota/);
        await lifecycle(lic.licenseId, "revoke");
        assertError(await assign(lic.licenseId, { feature_id: own }), 409, "CONFLICT", /revoked/);
        assert.equal((await events(lic.licenseId, "license.feature_assigned")).length, 0);
      });

      it("remove answers 204 and records license.feature_removed; 404 when not assigned; 409 on a revoked license", async () => {
        const lic = await issueLicense(h);
        const f = await feature(lic.productId, "removable");
        assert.equal((await assign(lic.licenseId, { feature_id: f })).status, 200);
        const del = await h.request({ method: "DELETE", url: `/api/v1/licenses/${lic.licenseId}/features/${f}` });
        assert.equal(del.status, 204, del.text);
        assert.equal(del.text, "");
        const ev = await events(lic.licenseId, "license.feature_removed");
        assert.equal(ev.length, 1);
        assert.equal(JSON.parse(ev[0]!.metadata).feature_id, f);
        assert.deepEqual((await h.request({ url: `/api/v1/licenses/${lic.licenseId}/features` })).json.data, []);
        assertError(await h.request({ method: "DELETE", url: `/api/v1/licenses/${lic.licenseId}/features/${f}` }), 404, "NOT_FOUND", /not assigned/);
        assert.equal((await assign(lic.licenseId, { feature_id: f })).status, 200);
        await lifecycle(lic.licenseId, "revoke");
        assertError(await h.request({ method: "DELETE", url: `/api/v1/licenses/${lic.licenseId}/features/${f}` }), 409, "CONFLICT", /revoked/);
      });

      it("usage reset: reset_consumed, total_consumptions, max_consumptions and add_credits (by feature_id or feature_code)", async () => {
        const lic = await issueLicense(h, { license_type: "consumption" });
        const f = await feature(lic.productId, "tokens");
        assert.equal((await assign(lic.licenseId, { feature_id: f, max_consumptions: 10 })).status, 200);
        // Simulate consumption: the feature counter and the license total move together.
        const db = h.lk.store.db;
        await db.updateTable("license_features").set({ total_consumptions: 7 }).where("license_id", "=", lic.licenseId).execute();
        await db.updateTable("licenses").set({ total_consumptions: 7 }).where("id", "=", lic.licenseId).execute();
        const v0 = (await row(lic.licenseId)).entitlement_version;

        const r1 = await reset(lic.licenseId, { feature_id: f, reset_consumed: true });
        assert.equal(r1.status, 200, r1.text);
        assertContract("LicenseFeature", r1.json.data);
        assertOperationResponse("/api/v1/licenses/{id}/usage/reset", "post", "200", r1.json);
        assert.equal(r1.json.data.total_consumptions, 0);
        assert.equal(r1.json.data.remaining, 10);
        assert.equal((await row(lic.licenseId)).total_consumptions, 0);
        const ev = await events(lic.licenseId, "license.usage_reset");
        assert.equal(ev.length, 1);
        assert.equal(JSON.parse(ev[0]!.metadata).previous_total_consumptions, 7);

        const r2 = await reset(lic.licenseId, { feature_code: "tokens", add_credits: 5, total_consumptions: 3 });
        assert.equal(r2.status, 200, r2.text);
        assert.equal(r2.json.data.max_consumptions, 15);
        assert.equal(r2.json.data.total_consumptions, 3);
        assert.equal(r2.json.data.remaining, 12);
        assert.equal((await row(lic.licenseId)).total_consumptions, 3);
        const r3 = await reset(lic.licenseId, { feature_id: f, max_consumptions: 2 });
        assert.equal(r3.json.data.max_consumptions, 2);
        assert.equal(r3.json.data.remaining, 0, "never negative");
        const noop = await reset(lic.licenseId, { feature_id: f, max_consumptions: 2 });
        assert.equal(noop.status, 200);
        assert.equal((await events(lic.licenseId, "license.usage_reset")).length, 3, "a reset that changes nothing records nothing");
        assert.equal((await row(lic.licenseId)).entitlement_version, v0 + 3);
      });

      it("usage reset refusals: 422 for the target and mutation rules, 404 when not assigned, 409 on a revoked license, 400 for an unknown field", async () => {
        const lic = await issueLicense(h, { license_type: "consumption" });
        const f = await feature(lic.productId, "unmetered");
        assert.equal((await assign(lic.licenseId, { feature_id: f })).status, 200);
        assertError(await reset(lic.licenseId, { reset_consumed: true }), 422, "VALIDATION_ERROR", /feature_id, feature_code/);
        assertError(await reset(lic.licenseId, { feature_id: f, feature_code: "unmetered", reset_consumed: true }), 422, "VALIDATION_ERROR", /exactly one/);
        assertError(await reset(lic.licenseId, { feature_id: f }), 422, "VALIDATION_ERROR", /at least one/);
        assertError(await reset(lic.licenseId, { feature_id: f, reset_consumed: false }), 422, "VALIDATION_ERROR", /at least one/);
        assertError(await reset(lic.licenseId, { feature_id: f, reset_consumed: true, total_consumptions: 1 }), 422, "VALIDATION_ERROR", /total_consumptions/);
        assertError(await reset(lic.licenseId, { feature_id: f, add_credits: 1, max_consumptions: 1 }), 422, "VALIDATION_ERROR", /add_credits/);
        assertError(await reset(lic.licenseId, { feature_id: f, add_credits: 5 }), 422, "VALIDATION_ERROR", /field add_credits: .*no quota/);
        assertError(await reset(lic.licenseId, { feature_id: f, add_credits: 0 }), 422, "VALIDATION_ERROR", /add_credits/);
        assertError(await reset(lic.licenseId, { feature_code: "nope", reset_consumed: true }), 404, "NOT_FOUND", /field feature_code/);
        assertError(await reset(UNKNOWN_LICENSE, { feature_id: f, reset_consumed: true }), 404, "NOT_FOUND");
        assertError(await reset(lic.licenseId, { feature_id: f, wipe: true }), 400, "INVALID_JSON", /wipe/);
        await lifecycle(lic.licenseId, "revoke");
        assertError(await reset(lic.licenseId, { feature_id: f, reset_consumed: true }), 409, "CONFLICT", /revoked/);
        assert.equal((await events(lic.licenseId, "license.usage_reset")).length, 0);
      });
    });
  });
}
