// Activation limits hold under real concurrency over real HTTP (global fetch against a listening
// server): explicit activate, implicit binding by validate, one fingerprint racing itself, and — on
// PostgreSQL — two server processes' worth of apps (separate pools) sharing one database.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createServices } from "../src/services.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, listen, startHarness, type HttpAnswer, postRuntime } from "./helpers/harness.js";
import { type PublicKeyEntry, sdkVerify } from "./helpers/verify.js";

const statuses = (rs: HttpAnswer[]) => rs.map((r) => r.status).sort((a, b) => a - b);
const codes = (rs: HttpAnswer[]) => [...new Set(rs.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.json?.error?.code}`))];

for (const engine of ENGINES) {
  describe(`activation limits under concurrency over HTTP [${engine}]`, () => {
    let h: Harness;
    let base: string;
    before(async () => {
      h = await startHarness(engine);
      base = await listen(h);
    });
    after(async () => h?.close());

    const keys = async (): Promise<PublicKeyEntry[]> => ((await (await fetch(`${base}/api/v1/system/public-keys`)).json()) as { data: PublicKeyEntry[] }).data;
    const getLicense = async (id: string) => (await h.request({ url: `/api/v1/licenses/${id}` })).json.data;
    const deviceRows = (licenseId: string) => h.lk.store.db.selectFrom("devices").selectAll().where("license_id", "=", licenseId).execute();
    const eventRows = (licenseId: string, type: string) =>
      h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", licenseId).where("event_type", "=", type).execute();

    /** Exactly `limit` of the answers are 200 (distinct devices) and every other one is 409 ACTIVATION_LIMIT_EXCEEDED. */
    async function assertExactlyLimit(results: HttpAnswer[], limit: number, licenseId: string) {
      const ok = results.filter((r) => r.status === 200);
      const denied = results.filter((r) => r.status !== 200);
      assert.equal(ok.length, limit, `statuses ${JSON.stringify(statuses(results))}; denials ${JSON.stringify(codes(results))}`);
      assert.equal(denied.length, results.length - limit);
      for (const r of denied) {
        assert.equal(r.status, 409, r.text);
        assert.equal(r.json.error.code, "ACTIVATION_LIMIT_EXCEEDED", r.text);
      }
      const ks = await keys();
      for (const r of ok) {
        assert.equal(r.json.data.license_id, licenseId);
        assert.equal(await sdkVerify(r.json, ks), true);
      }
      for (const r of denied) assert.equal(await sdkVerify(r.json, ks, "error"), true);
      const okDevices = new Set(ok.map((r) => r.json.data.device_id as string));
      assert.equal(okDevices.size, limit, "each success bound its own device");

      const lic = await getLicense(licenseId);
      assert.equal(lic.active_device_count, limit);
      assert.equal(lic.times_activated, limit);
      const rows = await deviceRows(licenseId);
      const active = rows.filter((d) => d.status === "active");
      assert.equal(active.length, limit);
      assert.equal(rows.length, limit, "refused attempts leave no device rows behind");
      assert.deepEqual(new Set(active.map((d) => d.id)), okDevices);
      assert.equal((await eventRows(licenseId, "license.activated")).length, limit);
      assert.equal((await eventRows(licenseId, "license.activation_limit_exceeded")).length, results.length - limit);
    }

    it("20 concurrent activations with distinct fingerprints and Idempotency-Keys, max_activations 3: exactly 3 × 200 and 17 × 409", async () => {
      const lic = await issueLicense(h, { max_activations: 3 });
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => postRuntime(base, "/api/v1/license/activate", lic.key, { fingerprint: `act-fp-${i}`, hostname: `host-${i}` }, `act-key-${i}`)),
      );
      await assertExactlyLimit(results, 3, lic.licenseId);
      for (const e of await eventRows(lic.licenseId, "license.activated")) assert.equal(JSON.parse(e.metadata).implicit, false);

      // Replaying any of the 20 keys returns its stored answer and changes nothing.
      const replays = await Promise.all(
        Array.from({ length: 20 }, (_, i) => postRuntime(base, "/api/v1/license/activate", lic.key, { fingerprint: `act-fp-${i}`, hostname: `host-${i}` }, `act-key-${i}`)),
      );
      assert.deepEqual(
        replays.map((r) => r.text),
        results.map((r) => r.text),
      );
      const lic2 = await getLicense(lic.licenseId);
      assert.equal(lic2.active_device_count, 3);
      assert.equal(lic2.times_activated, 3);
    });

    it("20 concurrent validations (implicit binding) with distinct fingerprints, max_activations 5: exactly 5 succeed", async () => {
      const lic = await issueLicense(h, { max_activations: 5 });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => postRuntime(base, "/api/v1/license/validate", lic.key, { fingerprint: `val-fp-${i}` })));
      await assertExactlyLimit(results, 5, lic.licenseId);
      for (const e of await eventRows(lic.licenseId, "license.activated")) assert.equal(JSON.parse(e.metadata).implicit, true);
    });

    it("10 activations and 10 validations racing on one license, max_activations 5: exactly 5 succeed", async () => {
      const lic = await issueLicense(h, { max_activations: 5 });
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2
            ? postRuntime(base, "/api/v1/license/activate", lic.key, { fingerprint: `mix-fp-${i}` }, `mix-key-${i}`)
            : postRuntime(base, "/api/v1/license/validate", lic.key, { fingerprint: `mix-fp-${i}` }),
        ),
      );
      await assertExactlyLimit(results, 5, lic.licenseId);
    });

    it("the same fingerprint activated 10 times at once (different keys): all 200, one device row, active_device_count 1", async () => {
      const lic = await issueLicense(h, { max_activations: 5 });
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => postRuntime(base, "/api/v1/license/activate", lic.key, { fingerprint: "same-fp" }, `same-key-${i}`)),
      );
      assert.deepEqual(statuses(results), Array(10).fill(200), JSON.stringify(codes(results)));
      assert.equal(new Set(results.map((r) => r.json.data.device_id)).size, 1);
      const rows = await deviceRows(lic.licenseId);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.status, "active");
      assert.equal(rows[0]!.id, results[0]!.json.data.device_id);
      const got = await getLicense(lic.licenseId);
      assert.equal(got.active_device_count, 1);
      assert.equal(got.times_activated, 1, "re-activating a bound device is not a new activation");
      assert.equal((await eventRows(lic.licenseId, "license.activated")).length, 1);
    });

    it("the same fingerprint on a license with max_activations 1, activated and validated 10 times at once: all 200, one seat", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          i % 2
            ? postRuntime(base, "/api/v1/license/activate", lic.key, { fingerprint: "solo-fp" }, `solo-key-${i}`)
            : postRuntime(base, "/api/v1/license/validate", lic.key, { fingerprint: "solo-fp" }),
        ),
      );
      assert.deepEqual(statuses(results), Array(10).fill(200), JSON.stringify(codes(results)));
      assert.equal(new Set(results.map((r) => r.json.data.device_id)).size, 1);
      assert.equal((await deviceRows(lic.licenseId)).length, 1);
      const got = await getLicense(lic.licenseId);
      assert.equal(got.active_device_count, 1);
      assert.equal(got.times_activated, 1);
      // The seat is taken: another fingerprint is refused.
      const other = await postRuntime(base, "/api/v1/license/validate", lic.key, { fingerprint: "other-fp" });
      assert.equal(other.status, 409, other.text);
      assert.equal(other.json.error.code, "ACTIVATION_LIMIT_EXCEEDED");
    });

    if (engine === "postgres") {
      it("two apps on one PostgreSQL database (separate pools), 20 activations split across them: still exactly 5 succeed", async () => {
        const { services } = await createServices(loadConfig(h.env), { clock: h.clock });
        let second: FastifyInstance | null = null;
        try {
          second = await buildApp(services, { logger: false });
          await second.listen({ host: "127.0.0.1", port: 0 });
          const addr = second.server.address();
          assert.ok(addr && typeof addr === "object");
          const base2 = `http://127.0.0.1:${addr.port}`;
          assert.notEqual(base2, base);

          const lic = await issueLicense(h, { max_activations: 5 });
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              postRuntime(i % 2 ? base : base2, "/api/v1/license/activate", lic.key, { fingerprint: `two-fp-${i}` }, `two-key-${i}`),
            ),
          );
          await assertExactlyLimit(results, 5, lic.licenseId);

          // Implicit binding split across the two apps holds the limit too.
          const lic2 = await issueLicense(h, { max_activations: 5 });
          const validations = await Promise.all(
            Array.from({ length: 20 }, (_, i) => postRuntime(i % 2 ? base2 : base, "/api/v1/license/validate", lic2.key, { fingerprint: `two-val-${i}` })),
          );
          await assertExactlyLimit(validations, 5, lic2.licenseId);

          // Both apps see the same state.
          const seen = await fetch(`${base2}/api/v1/licenses/${lic.licenseId}`, { headers: { authorization: `Bearer ${h.env.LICENSEKIT_BOOTSTRAP_TOKEN}` } });
          assert.equal(seen.status, 200);
          const body = (await seen.json()) as { data: { active_device_count: number } };
          assert.equal(body.data.active_device_count, 5);
        } finally {
          if (second) await second.close();
          else await services.store.close();
        }
      });
    }
  });
}
