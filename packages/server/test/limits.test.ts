// Activation limits hold under real concurrency over real HTTP, in one server and (PostgreSQL)
// across two servers sharing one database.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createServices } from "../src/services.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, listen, startHarness } from "./helpers/harness.js";

async function post(base: string, path: string, key: string, body: unknown, idem?: string) {
  const res = await fetch(base + path, {
    method: "POST",
    headers: { authorization: `License ${key}`, "content-type": "application/json", ...(idem ? { "idempotency-key": idem } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as { data?: { device_id: string }; error?: { code: string } } };
}

for (const engine of ENGINES) {
  describe(`activation limits under concurrency [${engine}]`, () => {
    let h: Harness;
    let base: string;
    before(async () => {
      h = await startHarness(engine);
      base = await listen(h);
    });
    after(async () => h?.close());

    const activeDevices = async (licenseId: string) =>
      (await h.lk.store.db.selectFrom("devices").select("id").where("license_id", "=", licenseId).where("status", "=", "active").execute()).length;

    it("20 concurrent activations of distinct fingerprints with max_activations 5: exactly 5 succeed", async () => {
      const lic = await issueLicense(h, { max_activations: 5 });
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => post(base, "/api/v1/license/activate", lic.key, { fingerprint: `machine-${i}` }, `act-${i}`)),
      );
      const ok = results.filter((r) => r.status === 200);
      const denied = results.filter((r) => r.status === 409);
      assert.equal(ok.length, 5);
      assert.equal(denied.length, 15);
      for (const r of denied) assert.equal(r.json.error?.code, "ACTIVATION_LIMIT_EXCEEDED");
      assert.equal(new Set(ok.map((r) => r.json.data!.device_id)).size, 5);
      const got = await h.request({ url: `/api/v1/licenses/${lic.licenseId}` });
      assert.equal(got.json.data.active_device_count, 5);
      assert.equal(got.json.data.times_activated, 5);
      assert.equal(await activeDevices(lic.licenseId), 5);
      const exceeded = await h.lk.store.db
        .selectFrom("audit_events")
        .select("sequence")
        .where("event_type", "=", "license.activation_limit_exceeded")
        .where("resource_id", "=", lic.licenseId)
        .execute();
      assert.equal(exceeded.length, 15);
    });

    it("20 concurrent validations (implicit binding) with max_activations 5: exactly 5 succeed", async () => {
      const lic = await issueLicense(h, { max_activations: 5 });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => post(base, "/api/v1/license/validate", lic.key, { fingerprint: `vm-${i}` })));
      assert.equal(results.filter((r) => r.status === 200).length, 5);
      assert.equal(results.filter((r) => r.json.error?.code === "ACTIVATION_LIMIT_EXCEEDED").length, 15);
      assert.equal(await activeDevices(lic.licenseId), 5);
    });

    it("one fingerprint activated 10 times at once binds one device", async () => {
      const lic = await issueLicense(h, { max_activations: 3 });
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => post(base, "/api/v1/license/activate", lic.key, { fingerprint: "same" }, `same-${i}`)));
      assert.deepEqual(
        results.map((r) => r.status),
        Array(10).fill(200),
      );
      assert.equal(new Set(results.map((r) => r.json.data!.device_id)).size, 1);
      const got = await h.request({ url: `/api/v1/licenses/${lic.licenseId}` });
      assert.equal(got.json.data.active_device_count, 1);
    });

    if (engine === "postgres") {
      it("two servers on one PostgreSQL still give exactly 5 of 20", async () => {
        const { services } = await createServices(loadConfig(h.env), { clock: h.clock });
        const second = await buildApp(services, { logger: false });
        try {
          await second.listen({ host: "127.0.0.1", port: 0 });
          const addr = second.server.address();
          const base2 = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
          const lic = await issueLicense(h, { max_activations: 5 });
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) => post(i % 2 ? base : base2, "/api/v1/license/activate", lic.key, { fingerprint: `pm-${i}` }, `pm-${i}`)),
          );
          assert.equal(results.filter((r) => r.status === 200).length, 5);
          assert.equal(results.filter((r) => r.json.error?.code === "ACTIVATION_LIMIT_EXCEEDED").length, 15);
          assert.equal(await activeDevices(lic.licenseId), 5);
        } finally {
          await second.close();
        }
      });
    }
  });
}
