// Suspend, reinstate and revoke (NOTES §11): each change bumps entitlement_version and leaves one
// event; repeating a transition that already holds is a 200 no-op with no event (the contract:
// "suspended or already suspended", "reinstated or already active"); revocation is permanent (409
// for suspend/reinstate afterwards) and releases every active seat. Unknown licenses are 404, and a
// reused Idempotency-Key with another request is 409 IDEMPOTENCY_CONFLICT on these and on create.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { assertContract } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";

const UNKNOWN = "lic_01AAAAAAAAAAAAAAAAAAAAAAAA";

for (const engine of ENGINES) {
  describe(`license lifecycle [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => h?.close());

    const action = (id: string, a: "suspend" | "reinstate" | "revoke", idempotencyKey?: string, query = "") =>
      h.request({ method: "POST", url: `/api/v1/licenses/${id}/${a}${query}`, ...(idempotencyKey ? { idempotencyKey } : {}) });
    const eventCount = async (id: string) =>
      Number(
        (
          await h.lk.store.db
            .selectFrom("audit_events")
            .select((eb) => eb.fn.countAll<string>().as("n"))
            .where("resource_id", "=", id)
            .executeTakeFirstOrThrow()
        ).n,
      );

    it("suspend → suspend (no-op) → reinstate → reinstate (no-op): versions and events move only on change", async () => {
      const { licenseId } = await issueLicense(h);
      const start = await eventCount(licenseId);
      const s1 = await action(licenseId, "suspend");
      assert.equal(s1.status, 200, s1.text);
      assertContract("License", s1.json.data);
      assert.equal(s1.json.data.status, "suspended");
      assert.equal(s1.json.data.entitlement_version, 2);
      const s2 = await action(licenseId, "suspend");
      assert.equal(s2.status, 200);
      assert.equal(s2.json.data.entitlement_version, 2);
      const r1 = await action(licenseId, "reinstate");
      assert.equal(r1.status, 200);
      assert.equal(r1.json.data.status, "active");
      assert.equal(r1.json.data.entitlement_version, 3);
      const r2 = await action(licenseId, "reinstate");
      assert.equal(r2.status, 200);
      assert.equal(r2.json.data.entitlement_version, 3);
      assert.equal((await eventCount(licenseId)) - start, 2);
    });

    it("revoke is permanent: releases seats, repeats as a no-op, and suspend/reinstate answer 409 CONFLICT", async () => {
      const { licenseId, key } = await issueLicense(h, { max_activations: 3 });
      for (const fp of ["a", "b"]) {
        const act = await h.request({ url: "/api/v1/license/activate", licenseKey: key, body: { fingerprint: fp }, idempotencyKey: `lc-${licenseId}-${fp}` });
        assert.equal(act.status, 200, act.text);
      }
      const rev = await action(licenseId, "revoke");
      assert.equal(rev.status, 200, rev.text);
      assert.equal(rev.json.data.status, "revoked");
      assert.equal(rev.json.data.active_device_count, 0);
      const ev = await h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", licenseId).where("event_type", "=", "license.revoked").execute();
      assert.equal(ev.length, 1);
      assert.equal(JSON.parse(ev[0]!.metadata).released_devices, 2);
      const devices = (await h.request({ url: `/api/v1/licenses/${licenseId}/devices` })).json.data;
      assert.deepEqual(
        devices.map((d: { status: string }) => d.status),
        ["deactivated", "deactivated"],
      );
      assert.equal((await action(licenseId, "revoke")).status, 200);
      for (const a of ["suspend", "reinstate"] as const) {
        const res = await action(licenseId, a);
        assert.equal(res.status, 409, res.text);
        assert.equal(res.json.error.code, "CONFLICT");
        assert.match(res.json.error.detail, /revoked/);
      }
    });

    it("an unknown license is 404 NOT_FOUND for every transition", async () => {
      for (const a of ["suspend", "reinstate", "revoke"] as const) {
        const res = await action(UNKNOWN, a);
        assert.equal(res.status, 404, `${a}: ${res.text}`);
        assert.equal(res.json.error.code, "NOT_FOUND");
      }
    });

    it("an Idempotency-Key reused with another request is 409 IDEMPOTENCY_CONFLICT; the same request replays", async () => {
      const { licenseId, productId, policyId } = await issueLicense(h);
      for (const a of ["suspend", "reinstate", "revoke"] as const) {
        const first = await action(licenseId, a, `lc-${a}-${licenseId}`);
        assert.equal(first.status, 200, first.text);
        const replay = await action(licenseId, a, `lc-${a}-${licenseId}`);
        assert.equal(replay.text, first.text);
        const other = await action(licenseId, a, `lc-${a}-${licenseId}`, "?note=other");
        assert.equal(other.status, 409, other.text);
        assert.equal(other.json.error.code, "IDEMPOTENCY_CONFLICT");
      }
      const body = { product_id: productId, policy_id: policyId };
      const created = await h.request({ url: "/api/v1/licenses", body, idempotencyKey: "lc-create" });
      assert.equal(created.status, 201);
      const again = await h.request({ url: "/api/v1/licenses", body, idempotencyKey: "lc-create" });
      assert.equal(again.text, created.text, "the replay returns the same license key");
      const changed = await h.request({ url: "/api/v1/licenses", body: { ...body, customer_name: "Someone" }, idempotencyKey: "lc-create" });
      assert.equal(changed.status, 409);
      assert.equal(changed.json.error.code, "IDEMPOTENCY_CONFLICT");
    });
  });
}
