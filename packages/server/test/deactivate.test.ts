// POST /api/v1/license/deactivate: releasing a seat (signed answer in the contract's shape, one
// `license.deactivated` event, entitlement_version moves on), every declared status, the D2 refusals,
// and D12 — max_deactivations within deactivation_window_days, also under real concurrent HTTP — plus
// the D12 policy fields on create, update and the Policy view.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DAY_MS } from "../src/clock.js";
import { assertContract } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, listen, startHarness, postRuntime } from "./helpers/harness.js";
import { type PublicKeyEntry, sdkVerify } from "./helpers/verify.js";

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: parsed response bodies
  json: any;
  text: string;
  headers?: Record<string, unknown>;
}

for (const engine of ENGINES) {
  describe(`POST /api/v1/license/deactivate [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => h?.close());

    let n = 0;
    const idem = () => `deact-${engine}-${++n}`;
    const activate = (key: string, body: Record<string, unknown>) => h.request({ url: "/api/v1/license/activate", licenseKey: key, body, idempotencyKey: idem() });
    const deactivate = (key: string, body: Record<string, unknown>, idempotencyKey: string | null = idem()) =>
      h.request({ url: "/api/v1/license/deactivate", licenseKey: key, body, ...(idempotencyKey ? { idempotencyKey } : {}) });
    const keys = async (): Promise<PublicKeyEntry[]> => (await h.request({ url: "/api/v1/system/public-keys", token: null })).json.data;
    const license = async (id: string) => (await h.request({ url: `/api/v1/licenses/${id}` })).json.data;
    const events = (licenseId: string, type: string) =>
      h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", licenseId).where("event_type", "=", type).orderBy("sequence").execute();
    const device = (id: string) => h.lk.store.db.selectFrom("devices").selectAll().where("id", "=", id).executeTakeFirstOrThrow();

    /** A signed runtime error with this status and code. */
    const assertDenied = async (res: Answer, status: number, code: string) => {
      assert.equal(res.status, status, res.text);
      assert.equal(res.json.error.code, code, res.text);
      assert.equal(res.json.data, undefined);
      assert.equal(await sdkVerify(res.json, await keys(), "error"), true, `${code} carries a verifiable signature`);
    };

    it("200: releases the seat, answers the contract's signed deactivation data, records one license.deactivated event", async () => {
      const lic = await issueLicense(h, { max_activations: 2 }, { expires_at: new Date(h.clock.now() + 90 * DAY_MS).toISOString() });
      const act = await activate(lic.key, { fingerprint: "fp-main", hostname: "main" });
      assert.equal(act.status, 200, act.text);
      const before = await license(lic.licenseId);
      assert.equal(before.active_device_count, 1);

      const res = await deactivate(lic.key, { fingerprint: "fp-main", app_version: "1.0.0" });
      assert.equal(res.status, 200, res.text);
      assertContract("SignedRuntimeDeactivationEnvelope", res.json);
      assert.equal(await sdkVerify(res.json, await keys()), true);
      assert.deepEqual(Object.keys(res.json.data), ["license_id", "status", "license_type", "entitlement_version", "issued_at", "device_id", "expires_at"]);
      assert.equal(res.json.data.license_id, lic.licenseId);
      assert.equal(res.json.data.status, "active");
      assert.equal(res.json.data.license_type, "subscription");
      assert.equal(res.json.data.device_id, act.json.data.device_id);
      assert.equal(res.json.data.entitlement_version, before.entitlement_version + 1);
      assert.equal(res.json.data.issued_at, new Date(h.clock.now()).toISOString());
      assert.equal(res.json.data.expires_at, before.expires_at);

      const after = await license(lic.licenseId);
      assert.equal(after.active_device_count, 0);
      assert.equal(after.entitlement_version, before.entitlement_version + 1);
      assert.equal((await device(act.json.data.device_id)).status, "deactivated");

      const evs = await events(lic.licenseId, "license.deactivated");
      assert.equal(evs.length, 1);
      assert.equal(evs[0]!.actor_type, "license");
      assert.equal(evs[0]!.resource_type, "license");
      const meta = JSON.parse(evs[0]!.metadata);
      assert.equal(meta.device_id, act.json.data.device_id);
      assert.equal(meta.binding_kind, "hardware");
      assert.match(meta.binding_hash, /^[0-9a-f]{16}$/);
      assert.ok(!evs[0]!.metadata.includes("fp-main"), "the fingerprint is hashed in event metadata");

      // A license without expires_at answers without the optional field.
      const open = await issueLicense(h);
      await activate(open.key, { fingerprint: "fp-open" });
      const res2 = await deactivate(open.key, { fingerprint: "fp-open" });
      assert.equal(res2.status, 200, res2.text);
      assert.equal(res2.json.data.expires_at, undefined);
      assertContract("SignedRuntimeDeactivationEnvelope", res2.json);
    });

    it("deactivate then activate elsewhere works, and the released machine can come back", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      const a = await activate(lic.key, { fingerprint: "move-a" });
      assert.equal(a.status, 200, a.text);
      await assertDenied(await activate(lic.key, { fingerprint: "move-b" }), 409, "ACTIVATION_LIMIT_EXCEEDED");
      const d = await deactivate(lic.key, { fingerprint: "move-a" });
      assert.equal(d.status, 200, d.text);
      const b = await activate(lic.key, { fingerprint: "move-b" });
      assert.equal(b.status, 200, b.text);
      assert.equal(await sdkVerify(b.json, await keys()), true);
      assert.equal((await license(lic.licenseId)).active_device_count, 1);
      // check on the released machine: it is no longer bound.
      await assertDenied(await h.request({ url: "/api/v1/license/check", licenseKey: lic.key, body: { fingerprint: "move-a" } }), 403, "DEVICE_NOT_ACTIVATED");
      // B leaves, A returns to its old device record.
      assert.equal((await deactivate(lic.key, { fingerprint: "move-b" })).status, 200);
      const back = await activate(lic.key, { fingerprint: "move-a" });
      assert.equal(back.status, 200, back.text);
      assert.equal(back.json.data.device_id, a.json.data.device_id);
    });

    it("container bindings are released the same way", async () => {
      const lic = await issueLicense(h, { max_activations: 2 });
      const ct = { is_container: true, cluster_id: "c1", namespace: "ns", pod_name: "pod-1" };
      assert.equal((await activate(lic.key, ct)).status, 200);
      const res = await deactivate(lic.key, ct);
      assert.equal(res.status, 200, res.text);
      const ev = (await events(lic.licenseId, "license.deactivated"))[0]!;
      assert.equal(JSON.parse(ev.metadata).binding_kind, "container");
    });

    it("404 NOT_FOUND (signed) for a binding that is not active on the license: unknown, or already released", async () => {
      const lic = await issueLicense(h, { max_activations: 2 });
      await assertDenied(await deactivate(lic.key, { fingerprint: "never-seen" }), 404, "NOT_FOUND");
      await activate(lic.key, { fingerprint: "twice" });
      assert.equal((await deactivate(lic.key, { fingerprint: "twice" })).status, 200);
      await assertDenied(await deactivate(lic.key, { fingerprint: "twice" }), 404, "NOT_FOUND");
      // A device reset by the operator is not bound either.
      const r = await activate(lic.key, { fingerprint: "reset-me" });
      const reset = await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/devices/${r.json.data.device_id}/reset` });
      assert.equal(reset.status, 200, reset.text);
      await assertDenied(await deactivate(lic.key, { fingerprint: "reset-me" }), 404, "NOT_FOUND");
      assert.equal((await license(lic.licenseId)).active_device_count, 0);
      assert.equal((await events(lic.licenseId, "license.deactivated")).length, 1);
      const denials = await events(lic.licenseId, "license.validation_denied");
      assert.deepEqual(
        denials.map((e) => JSON.parse(e.metadata).code),
        ["NOT_FOUND", "NOT_FOUND", "NOT_FOUND"],
      );
      assert.ok(denials.every((e) => JSON.parse(e.metadata).operation === "deactivate"));
    });

    it("400: unknown body field (INVALID_JSON), missing Idempotency-Key (IDEMPOTENCY_KEY_REQUIRED), malformed key (BAD_REQUEST)", async () => {
      const lic = await issueLicense(h);
      await activate(lic.key, { fingerprint: "fp-400" });
      await assertDenied(await deactivate(lic.key, { fingerprint: "fp-400", seat: 1 }), 400, "INVALID_JSON");
      await assertDenied(await deactivate(lic.key, { fingerprint: 12 }), 400, "INVALID_JSON");
      await assertDenied(await deactivate(lic.key, { fingerprint: "fp-400" }, null), 400, "IDEMPOTENCY_KEY_REQUIRED");
      await assertDenied(await deactivate(lic.key, { fingerprint: "fp-400" }, "bad key with spaces"), 400, "BAD_REQUEST");
      assert.equal((await license(lic.licenseId)).active_device_count, 1, "nothing was released");
    });

    it("401 UNAUTHORIZED (signed) without a valid license key", async () => {
      const res = await h.request({ url: "/api/v1/license/deactivate", body: { fingerprint: "x" }, idempotencyKey: idem() });
      await assertDenied(res, 401, "UNAUTHORIZED");
      const unknown = await deactivate("lsk_00000000000000000000000000000000", { fingerprint: "x" });
      await assertDenied(unknown, 401, "UNAUTHORIZED");
    });

    it("422 VALIDATION_ERROR: a hardware binding without fingerprint, a container binding without any identity", async () => {
      const lic = await issueLicense(h);
      const a = await deactivate(lic.key, { hostname: "no-fp" });
      await assertDenied(a, 422, "VALIDATION_ERROR");
      assert.match(a.json.error.detail, /fingerprint/);
      const b = await deactivate(lic.key, { is_container: true, hostname: "x" });
      await assertDenied(b, 422, "VALIDATION_ERROR");
      assert.match(b.json.error.detail, /container_id/);
    });

    it("409: a reused Idempotency-Key replays the first answer byte for byte; with another body it is IDEMPOTENCY_CONFLICT", async () => {
      const lic = await issueLicense(h, { max_activations: 2 });
      await activate(lic.key, { fingerprint: "idem-a" });
      await activate(lic.key, { fingerprint: "idem-b" });
      const key = idem();
      const first = await deactivate(lic.key, { fingerprint: "idem-a" }, key);
      assert.equal(first.status, 200, first.text);
      const again = await deactivate(lic.key, { fingerprint: "idem-a" }, key);
      assert.equal(again.status, 200);
      assert.equal(again.text, first.text);
      assert.equal(again.headers["idempotent-replayed"], "true");
      await assertDenied(await deactivate(lic.key, { fingerprint: "idem-b" }, key), 409, "IDEMPOTENCY_CONFLICT");
      assert.equal((await license(lic.licenseId)).active_device_count, 1);
      assert.equal((await events(lic.licenseId, "license.deactivated")).length, 1, "the replay released nothing");
    });

    describe("403: the D2 refusals come before the binding rule", () => {
      const iso = (ms: number) => new Date(ms).toISOString();

      it("suspended and revoked → LICENSE_INACTIVE", async () => {
        for (const action of ["suspend", "revoke"] as const) {
          const lic = await issueLicense(h);
          await activate(lic.key, { fingerprint: `st-${action}` });
          const s = await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/${action}` });
          assert.equal(s.status, 200, s.text);
          await assertDenied(await deactivate(lic.key, { fingerprint: `st-${action}` }), 403, "LICENSE_INACTIVE");
        }
      });

      it("expired past the grace days → LICENSE_EXPIRED; inside them the release succeeds with status grace_period", async () => {
        const now = h.clock.now();
        const lic = await issueLicense(h, { grace_period_days: 3, max_activations: 2 }, { expires_at: iso(now + DAY_MS) });
        await activate(lic.key, { fingerprint: "exp-a" });
        await activate(lic.key, { fingerprint: "exp-b" });
        h.clock.advance(2 * DAY_MS);
        const grace = await deactivate(lic.key, { fingerprint: "exp-a" });
        assert.equal(grace.status, 200, grace.text);
        assert.equal(grace.json.data.status, "grace_period");
        assert.equal(await sdkVerify(grace.json, await keys()), true);
        h.clock.advance(3 * DAY_MS);
        await assertDenied(await deactivate(lic.key, { fingerprint: "exp-b" }), 403, "LICENSE_EXPIRED");
      });

      it("blacklisted device → DEVICE_BLACKLISTED", async () => {
        const lic = await issueLicense(h);
        const a = await activate(lic.key, { fingerprint: "bl-a" });
        const bl = await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/devices/${a.json.data.device_id}/blacklist` });
        assert.equal(bl.status, 200, bl.text);
        await assertDenied(await deactivate(lic.key, { fingerprint: "bl-a" }), 403, "DEVICE_BLACKLISTED");
      });

      it("VM and container refused by the policy → VM_NOT_ALLOWED / CONTAINER_NOT_ALLOWED", async () => {
        const lic = await issueLicense(h, { allow_vm: false, allow_container: false });
        await assertDenied(await deactivate(lic.key, { fingerprint: "vm-a", is_vm: true }), 403, "VM_NOT_ALLOWED");
        await assertDenied(await deactivate(lic.key, { is_container: true, pod_name: "p" }), 403, "CONTAINER_NOT_ALLOWED");
      });

      it("an app_version outside the product's version catalogue → VERSION_NOT_ELIGIBLE", async () => {
        const lic = await issueLicense(h);
        await activate(lic.key, { fingerprint: "ver-a" });
        const v = await h.request({ url: `/api/v1/products/${lic.productId}/versions`, body: { version: "2.0.0" } });
        assert.equal(v.status, 201, v.text);
        await assertDenied(await deactivate(lic.key, { fingerprint: "ver-a", app_version: "9.9.9" }), 403, "VERSION_NOT_ELIGIBLE");
        assert.equal((await deactivate(lic.key, { fingerprint: "ver-a", app_version: "2.0.0" })).status, 200);
      });
    });

    describe("D12: max_deactivations within deactivation_window_days", () => {
      it("409 DEACTIVATION_LIMIT_EXCEEDED past the limit, with a license.deactivation_limit_exceeded event committed with the denial", async () => {
        const lic = await issueLicense(h, { max_activations: 3, max_deactivations: 2, deactivation_window_days: 10 });
        for (const fp of ["l-a", "l-b", "l-c"]) assert.equal((await activate(lic.key, { fingerprint: fp })).status, 200);
        assert.equal((await deactivate(lic.key, { fingerprint: "l-a" })).status, 200);
        h.clock.advance(DAY_MS);
        assert.equal((await deactivate(lic.key, { fingerprint: "l-b" })).status, 200);
        const denied = await deactivate(lic.key, { fingerprint: "l-c" });
        await assertDenied(denied, 409, "DEACTIVATION_LIMIT_EXCEEDED");
        assert.match(denied.json.error.detail, /2 deactivations/);
        const lim = await events(lic.licenseId, "license.deactivation_limit_exceeded");
        assert.equal(lim.length, 1);
        const meta = JSON.parse(lim[0]!.metadata);
        assert.equal(meta.max_deactivations, 2);
        assert.equal(meta.deactivation_window_days, 10);
        assert.ok(!lim[0]!.metadata.includes("l-c"), "fingerprint hashed");
        assert.equal((await license(lic.licenseId)).active_device_count, 1, "the refused machine keeps its seat");

        // The window slides: 10 days after the first deactivation one becomes available again.
        h.clock.advance(9 * DAY_MS);
        const freed = await deactivate(lic.key, { fingerprint: "l-c" });
        assert.equal(freed.status, 200, freed.text);
        assert.equal((await events(lic.licenseId, "license.deactivated")).length, 3);
      });

      it("a management device reset does not count; 0 means unlimited", async () => {
        const lic = await issueLicense(h, { max_activations: 3, max_deactivations: 1 });
        const a = await activate(lic.key, { fingerprint: "r-a" });
        await activate(lic.key, { fingerprint: "r-b" });
        const reset = await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/devices/${a.json.data.device_id}/reset` });
        assert.equal(reset.status, 200, reset.text);
        assert.equal((await deactivate(lic.key, { fingerprint: "r-b" })).status, 200, "the reset used none of the one deactivation");

        const unlimited = await issueLicense(h, { max_activations: 1 });
        for (let i = 0; i < 5; i++) {
          assert.equal((await activate(unlimited.key, { fingerprint: "u" })).status, 200);
          assert.equal((await deactivate(unlimited.key, { fingerprint: "u" })).status, 200);
        }
      });

      it("concurrent deactivations over real HTTP cannot exceed the limit", async () => {
        const base = await listen(h);
        const lic = await issueLicense(h, { max_activations: 12, max_deactivations: 3 });
        const fps = Array.from({ length: 12 }, (_, i) => `race-${i}`);
        for (const fp of fps) assert.equal((await activate(lic.key, { fingerprint: fp })).status, 200);
        const results = await Promise.all(
          fps.map((fp, i) => postRuntime(base, "/api/v1/license/deactivate", lic.key, { fingerprint: fp }, `race-${engine}-${i}`)),
        );
        const ok = results.filter((r) => r.status === 200);
        const denied = results.filter((r) => r.status !== 200);
        assert.equal(ok.length, 3, JSON.stringify(results.map((r) => r.status)));
        for (const r of denied) assert.equal(r.json.error.code, "DEACTIVATION_LIMIT_EXCEEDED", r.text);
        const ks = await keys();
        for (const r of ok) assert.equal(await sdkVerify(r.json, ks), true);
        for (const r of denied) assert.equal(await sdkVerify(r.json, ks, "error"), true);
        assert.equal((await license(lic.licenseId)).active_device_count, 9);
        assert.equal((await events(lic.licenseId, "license.deactivated")).length, 3);
        assert.equal((await events(lic.licenseId, "license.deactivation_limit_exceeded")).length, 9);
        const released = await h.lk.store.db.selectFrom("devices").select("id").where("license_id", "=", lic.licenseId).where("status", "=", "deactivated").execute();
        assert.equal(released.length, 3);
      });
    });

    describe("D12 policy fields", () => {
      it("default to 0 (unlimited) and 30 days, are set on create and update, and shown on the Policy view", async () => {
        const p = await h.request({ url: "/api/v1/products", body: { name: "D12", code: `d12-${engine}` } });
        const pid = p.json.data.id;
        const plain = await h.request({ url: `/api/v1/products/${pid}/policies`, body: { name: "Plain", code: "plain", license_type: "perpetual" } });
        assert.equal(plain.status, 201, plain.text);
        assertContract("Policy", plain.json.data);
        assert.equal(plain.json.data.max_deactivations, 0);
        assert.equal(plain.json.data.deactivation_window_days, 30);

        const set = await h.request({
          url: `/api/v1/products/${pid}/policies`,
          body: { name: "Strict", code: "strict", license_type: "subscription", max_deactivations: 3, deactivation_window_days: 7 },
        });
        assert.equal(set.status, 201, set.text);
        assert.equal(set.json.data.max_deactivations, 3);
        assert.equal(set.json.data.deactivation_window_days, 7);
        const got = await h.request({ url: `/api/v1/policies/${set.json.data.id}` });
        assert.deepEqual(got.json.data, set.json.data);

        const upd = await h.request({ method: "PATCH", url: `/api/v1/policies/${set.json.data.id}`, body: { max_deactivations: 5, deactivation_window_days: 60 } });
        assert.equal(upd.status, 200, upd.text);
        assertContract("Policy", upd.json.data);
        assert.equal(upd.json.data.max_deactivations, 5);
        assert.equal(upd.json.data.deactivation_window_days, 60);
        const ev = await h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", set.json.data.id).where("event_type", "=", "policy.updated").execute();
        assert.equal(ev.length, 1);
        assert.deepEqual(JSON.parse(ev[0]!.metadata).changed.sort(), ["deactivation_window_days", "max_deactivations"]);
        const list = await h.request({ url: `/api/v1/products/${pid}/policies` });
        assert.equal(list.json.data.find((x: { id: string }) => x.id === set.json.data.id).max_deactivations, 5);
      });

      it("422 for out-of-range values, 400 for wrong types", async () => {
        const p = await h.request({ url: "/api/v1/products", body: { name: "D12 bad", code: `d12-bad-${engine}` } });
        const url = `/api/v1/products/${p.json.data.id}/policies`;
        const base = { name: "X", code: "x", license_type: "subscription" };
        const neg = await h.request({ url, body: { ...base, max_deactivations: -1 } });
        assert.equal(neg.status, 422, neg.text);
        assert.match(neg.json.error.detail, /max_deactivations/);
        const zero = await h.request({ url, body: { ...base, deactivation_window_days: 0 } });
        assert.equal(zero.status, 422, zero.text);
        assert.match(zero.json.error.detail, /deactivation_window_days/);
        const str = await h.request({ url, body: { ...base, max_deactivations: "3" } });
        assert.equal(str.status, 400, str.text);
        const ok = await h.request({ url, body: base });
        const patch = await h.request({ method: "PATCH", url: `/api/v1/policies/${ok.json.data.id}`, body: { deactivation_window_days: 0 } });
        assert.equal(patch.status, 422, patch.text);
      });
    });
  });
}
