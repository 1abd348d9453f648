// The D2 decision order as a client sees it: license state, dates (clock injected, nothing sleeps),
// grace period, VM/container rules, implicit binding, and check that never writes.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DAY_MS } from "../src/clock.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";
import { sdkVerify } from "./helpers/verify.js";

for (const engine of ENGINES) {
  describe(`runtime decision order [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => h?.close());

    const validate = (key: string, body: Record<string, unknown> = { fingerprint: "fp-1" }) => h.request({ url: "/api/v1/license/validate", licenseKey: key, body });
    const keys = async () => (await h.request({ url: "/api/v1/system/public-keys", token: null })).json.data;
    const lifecycle = (id: string, action: string) => h.request({ method: "POST", url: `/api/v1/licenses/${id}/${action}` });

    it("suspended → LICENSE_INACTIVE; reinstated → valid again; revoked → LICENSE_INACTIVE and seats released", async () => {
      const lic = await issueLicense(h, { max_activations: 2 });
      assert.equal((await validate(lic.key)).status, 200);
      const s = await lifecycle(lic.licenseId, "suspend");
      assert.equal(s.status, 200);
      assert.equal(s.json.data.status, "suspended");
      const denied = await validate(lic.key);
      assert.equal(denied.status, 403);
      assert.equal(denied.json.error.code, "LICENSE_INACTIVE");
      assert.equal(await sdkVerify(denied.json, await keys(), "error"), true);
      assert.equal((await lifecycle(lic.licenseId, "reinstate")).json.data.status, "active");
      assert.equal((await validate(lic.key)).status, 200);
      const r = await lifecycle(lic.licenseId, "revoke");
      assert.equal(r.json.data.status, "revoked");
      assert.equal(r.json.data.active_device_count, 0);
      assert.equal((await validate(lic.key)).json.error.code, "LICENSE_INACTIVE");
      const active = await h.lk.store.db.selectFrom("devices").select("id").where("license_id", "=", lic.licenseId).where("status", "=", "active").execute();
      assert.equal(active.length, 0);
      assert.equal((await lifecycle(lic.licenseId, "reinstate")).status, 409);
    });

    it("a license that has not started yet is LICENSE_INACTIVE until starts_at", async () => {
      const startsAt = h.clock.now() + 2 * DAY_MS;
      const lic = await issueLicense(h, {}, { starts_at: new Date(startsAt).toISOString() });
      const res = await validate(lic.key);
      assert.equal(res.status, 403);
      assert.equal(res.json.error.code, "LICENSE_INACTIVE");
      assert.match(res.json.error.detail, /starts at/);
      h.clock.advance(2 * DAY_MS + 1);
      assert.equal((await validate(lic.key)).status, 200);
    });

    it("past expiry: grace_period within grace days, then LICENSE_EXPIRED; status shown everywhere follows the clock", async () => {
      const expiresAt = h.clock.now() + 10 * DAY_MS;
      const lic = await issueLicense(h, { grace_period_days: 3 }, { expires_at: new Date(expiresAt).toISOString() });
      assert.equal((await validate(lic.key)).json.data.status, "active");

      h.clock.set(expiresAt + DAY_MS);
      const inGrace = await validate(lic.key);
      assert.equal(inGrace.status, 200);
      assert.equal(inGrace.json.data.status, "grace_period");
      assert.equal(await sdkVerify(inGrace.json, await keys()), true);
      assert.equal((await h.request({ url: `/api/v1/licenses/${lic.licenseId}` })).json.data.status, "grace_period");
      const graceList = await h.request({ url: `/api/v1/licenses?status=grace_period&product_id=${lic.productId}` });
      assert.deepEqual(
        graceList.json.data.map((l: { id: string }) => l.id),
        [lic.licenseId],
      );
      assert.equal((await h.request({ url: `/api/v1/licenses?status=active&product_id=${lic.productId}` })).json.data.length, 0);

      h.clock.set(expiresAt + 4 * DAY_MS);
      const expired = await validate(lic.key);
      assert.equal(expired.status, 403);
      assert.equal(expired.json.error.code, "LICENSE_EXPIRED");
      assert.equal((await h.request({ url: `/api/v1/licenses/${lic.licenseId}` })).json.data.status, "expired");
      assert.equal((await h.request({ url: `/api/v1/licenses?status=expired&product_id=${lic.productId}` })).json.data.length, 1);
    });

    it("without grace days an expired license is refused at once; suspension outranks expiry", async () => {
      const expiresAt = h.clock.now() + DAY_MS;
      const lic = await issueLicense(h, {}, { expires_at: new Date(expiresAt).toISOString() });
      h.clock.set(expiresAt);
      assert.equal((await validate(lic.key)).json.error.code, "LICENSE_EXPIRED");
      await lifecycle(lic.licenseId, "suspend");
      assert.equal((await validate(lic.key)).json.error.code, "LICENSE_INACTIVE");
    });

    it("VM and container rules come from the policy", async () => {
      const noVm = await issueLicense(h, { allow_vm: false, max_activations: 3 });
      assert.equal((await validate(noVm.key, { fingerprint: "v", is_vm: true })).json.error.code, "VM_NOT_ALLOWED");
      assert.equal((await validate(noVm.key, { fingerprint: "p", is_vm: false })).status, 200);
      const noCt = await issueLicense(h, { allow_container: false, max_activations: 3 });
      assert.equal((await validate(noCt.key, { is_container: true, pod_name: "web-1" })).json.error.code, "CONTAINER_NOT_ALLOWED");
      const ct = await issueLicense(h, { max_activations: 5, max_container_instances: 1 });
      assert.equal((await validate(ct.key, { is_container: true, namespace: "prod", pod_name: "web-1" })).status, 200);
      const second = await validate(ct.key, { is_container: true, namespace: "prod", pod_name: "web-2" });
      assert.equal(second.json.error.code, "ACTIVATION_LIMIT_EXCEEDED");
      const missing = await validate(ct.key, { is_container: true });
      assert.equal(missing.status, 422);
      assert.equal(missing.json.error.code, "VALIDATION_ERROR");
      const noFingerprint = await validate(ct.key, {});
      assert.equal(noFingerprint.status, 422);
      assert.match(noFingerprint.json.error.detail, /fingerprint/);
    });

    it("validate binds a new fingerprint implicitly and records it without the raw fingerprint", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      const res = await validate(lic.key, { fingerprint: "secret-fingerprint-123" });
      assert.equal(res.status, 200);
      const ev = await h.lk.store.db
        .selectFrom("audit_events")
        .selectAll()
        .where("resource_id", "=", lic.licenseId)
        .where("event_type", "=", "license.activated")
        .executeTakeFirstOrThrow();
      assert.equal(JSON.parse(ev.metadata).implicit, true);
      assert.equal(ev.metadata.includes("secret-fingerprint-123"), false);
      assert.equal(ev.actor_type, "license");
      assert.equal((await validate(lic.key, { fingerprint: "other" })).json.error.code, "ACTIVATION_LIMIT_EXCEEDED");
    });

    it("check never writes: DEVICE_NOT_ACTIVATED for an unbound fingerprint, no stamps for a bound one", async () => {
      const lic = await issueLicense(h, { max_activations: 2 });
      const unbound = await h.request({ url: "/api/v1/license/check", licenseKey: lic.key, body: { fingerprint: "nobody" } });
      assert.equal(unbound.status, 403);
      assert.equal(unbound.json.error.code, "DEVICE_NOT_ACTIVATED");
      assert.equal((await h.lk.store.db.selectFrom("devices").select("id").where("license_id", "=", lic.licenseId).execute()).length, 0);

      await h.request({ url: "/api/v1/license/activate", licenseKey: lic.key, idempotencyKey: "chk", body: { fingerprint: "bound" } });
      const deviceRow = () => h.lk.store.db.selectFrom("devices").selectAll().where("license_id", "=", lic.licenseId).executeTakeFirstOrThrow();
      const before = await deviceRow();
      h.clock.advance(60_000);
      const ok = await h.request({ url: "/api/v1/license/check", licenseKey: lic.key, body: { fingerprint: "bound" } });
      assert.equal(ok.status, 200);
      assert.equal(await sdkVerify(ok.json, await keys()), true);
      await h.lk.sideEffects.flush();
      assert.deepEqual(await deviceRow(), before);
    });

    it("validate stamps last_validated_at through the batched flush, not on the request", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      await h.request({ url: "/api/v1/license/activate", licenseKey: lic.key, idempotencyKey: "stamp", body: { fingerprint: "s" } });
      h.clock.advance(5 * 60_000);
      const at = h.clock.now();
      assert.equal((await validate(lic.key, { fingerprint: "s" })).status, 200);
      const row = () => h.lk.store.db.selectFrom("devices").selectAll().where("license_id", "=", lic.licenseId).executeTakeFirstOrThrow();
      assert.equal((await row()).last_validated_at, null);
      await h.lk.sideEffects.flush();
      assert.equal((await row()).last_validated_at, at);
      assert.equal((await row()).last_seen_at, at);
    });

    it("a key typed in lower case with hyphens still authenticates", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      const body = lic.key.slice(4).toLowerCase();
      const typed = `lsk_${body.slice(0, 8)}-${body.slice(8, 16)}-${body.slice(16, 24)}-${body.slice(24)}`;
      assert.equal((await validate(typed)).status, 200);
    });
  });
}
