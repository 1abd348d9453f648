// Version eligibility (issue 5 item 6, NOTES §9, D2 step 6): gating is off until the product has a
// version catalogue; then an app_version must be catalogued and released on or before the license's
// eligible_through (maintenance_expires_at for perpetual licenses, expires_at otherwise), else 403
// VERSION_NOT_ELIGIBLE — on activate, validate, check and consume alike. The entitlement's
// version_eligibility says what was judged. Every answer verifies the way the official SDK verifies.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DAY_MS } from "../src/clock.js";
import { decide } from "../src/domain/runtime-engine.js";
import { eligibleThrough, judgeVersion } from "../src/domain/version-eligibility.js";
import { assertContract } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, type Reply, startHarness } from "./helpers/harness.js";
import { type PublicKeyEntry, sdkVerify } from "./helpers/verify.js";

const iso = (ms: number) => new Date(ms).toISOString();
const OPS = ["activate", "validate", "check", "consume"] as const;
type Op = (typeof OPS)[number];

describe("version eligibility rules (pure)", () => {
  const facts = (released_at: number | null) => ({ catalogue: true, release: released_at === null ? null : { version: "1.0.0", released_at } });
  const sub = { expires_at: 1000, maintenance_expires_at: null };

  it("eligible_through is maintenance_expires_at for perpetual licenses and expires_at otherwise", () => {
    assert.equal(eligibleThrough("perpetual", { expires_at: null, maintenance_expires_at: 500 }), 500);
    assert.equal(eligibleThrough("perpetual", { expires_at: null, maintenance_expires_at: null }), null);
    assert.equal(eligibleThrough("subscription", { expires_at: 700, maintenance_expires_at: null }), 700);
    assert.equal(eligibleThrough("time_limited", { expires_at: null, maintenance_expires_at: null }), null);
  });

  it("judges: no catalogue, missing, unknown, released on / after eligible_through, no bound", () => {
    assert.deepEqual(judgeVersion({ appVersion: "1.0.0", licenseType: "subscription", license: sub, facts: { catalogue: false, release: null } }), {
      enforced: false,
      entitled: true,
      appVersion: "1.0.0",
      eligibleThrough: 1000,
    });
    const missing = judgeVersion({ appVersion: undefined, licenseType: "subscription", license: sub, facts: { catalogue: true, release: null } });
    assert.equal(missing.entitled, false);
    assert.match(missing.detail!, /app_version: is required/);
    const unknown = judgeVersion({ appVersion: "9.9.9", licenseType: "subscription", license: sub, facts: facts(null) });
    assert.equal(unknown.entitled, false);
    assert.match(unknown.detail!, /not in the product's version catalogue/);
    assert.equal(judgeVersion({ appVersion: "1.0.0", licenseType: "subscription", license: sub, facts: facts(1000) }).entitled, true, "on the day is eligible");
    const late = judgeVersion({ appVersion: "1.0.0", licenseType: "subscription", license: sub, facts: facts(1001) });
    assert.equal(late.entitled, false);
    assert.match(late.detail!, /after the license expires/);
    const perpetual = judgeVersion({ appVersion: "1.0.0", licenseType: "perpetual", license: { expires_at: null, maintenance_expires_at: 10 }, facts: facts(11) });
    assert.match(perpetual.detail!, /after maintenance ends/);
    assert.equal(judgeVersion({ appVersion: "1.0.0", licenseType: "perpetual", license: { expires_at: null, maintenance_expires_at: null }, facts: facts(1e15) }).entitled, true);
  });

  it("decide() puts the version at step 6: after VM/container, before the binding rule", () => {
    const base = {
      op: "activate" as const,
      now: 0,
      license: { state: "active" as const, starts_at: null, expires_at: null, active_device_count: 1 },
      policy: { grace_period_days: 0, allow_vm: false, allow_container: true, max_activations: 1, max_container_instances: 0 },
      binding: { kind: "hardware" as const, key: "hw:x", request: { fingerprint: "x" } },
      device: null,
      activeContainerCount: 0,
      version: { enforced: true, entitled: false, detail: "field app_version: nope" },
    };
    assert.deepEqual(decide(base), { allow: false, code: "VERSION_NOT_ELIGIBLE", detail: "field app_version: nope" });
    assert.equal((decide({ ...base, binding: { ...base.binding, request: { fingerprint: "x", is_vm: true } } }) as { code: string }).code, "VM_NOT_ALLOWED");
    assert.equal((decide({ ...base, version: { enforced: true, entitled: true } }) as { code: string }).code, "ACTIVATION_LIMIT_EXCEEDED");
    assert.equal((decide({ ...base, version: { enforced: false, entitled: false } }) as { code: string }).code, "ACTIVATION_LIMIT_EXCEEDED", "not enforced: not gated");
  });
});

for (const engine of ENGINES) {
  describe(`version gating on the runtime calls [${engine}]`, () => {
    let h: Harness;
    let keys: PublicKeyEntry[];
    let n = 0;
    before(async () => {
      h = await startHarness(engine);
      keys = (await h.request({ url: "/api/v1/system/public-keys", token: null })).json.data;
    });
    after(async () => h?.close());

    const ok = (r: Reply, what: string) => {
      assert.ok(r.status >= 200 && r.status < 300, `${what} → ${r.status} ${r.text}`);
      return r.json;
    };
    const call = (op: Op, key: string, binding: Record<string, unknown>) => {
      const body = op === "consume" ? { ...binding, feature_code: "f1", event_id: `ev-${++n}` } : binding;
      return h.request({ url: `/api/v1/license/${op}`, licenseKey: key, body, ...(op === "activate" || op === "consume" ? { idempotencyKey: `ve-${engine}-${++n}` } : {}) });
    };

    /**
     * A product (with the given versions), a license of `licenseType` with feature f1, and machine
     * `m-1` bound before the versions are catalogued (no gating yet).
     */
    async function setup(opts: { licenseType?: string; license?: Record<string, unknown>; versions?: [string, number][] }) {
      const tag = `ve-${++n}`;
      const product = ok(await h.request({ url: "/api/v1/products", body: { name: tag, code: tag } }), "product").data;
      const policy = ok(
        await h.request({ url: `/api/v1/products/${product.id}/policies`, body: { name: "P", code: "p", license_type: opts.licenseType ?? "subscription", max_activations: 5 } }),
        "policy",
      ).data;
      const feature = ok(await h.request({ url: `/api/v1/products/${product.id}/features`, body: { name: "F1", code: "f1" } }), "feature").data;
      const created = ok(await h.request({ url: "/api/v1/licenses", body: { product_id: product.id, policy_id: policy.id, ...opts.license } }), "license").data;
      ok(await h.request({ url: `/api/v1/licenses/${created.license.id}/features`, body: { feature_id: feature.id, max_consumptions: 100 } }), "assign");
      const key: string = created.license_key;
      ok(await call("activate", key, { fingerprint: "m-1" }), "bind m-1");
      for (const [version, releasedAt] of opts.versions ?? []) {
        ok(await h.request({ url: `/api/v1/products/${product.id}/versions`, body: { version, released_at: iso(releasedAt) } }), `version ${version}`);
      }
      return { key, licenseId: created.license.id as string, productId: product.id as string };
    }

    const assertGranted = async (r: Reply, op: Op) => {
      assert.equal(r.status, 200, `${op}: ${r.text}`);
      assertContract("SignedRuntimeEntitlementEnvelope", r.json);
      assert.equal(await sdkVerify(r.json, keys), true, `${op}: the 200 answer verifies`);
      return r.json.data.version_eligibility;
    };
    const assertIneligible = async (r: Reply, op: Op, detail: RegExp) => {
      assert.equal(r.status, 403, `${op}: ${r.text}`);
      assert.equal(r.json.error.code, "VERSION_NOT_ELIGIBLE", `${op}: ${r.text}`);
      assert.match(r.json.error.detail, detail, op);
      assertContract("ErrorEnvelope", r.json);
      assert.equal(await sdkVerify(r.json, keys, "error"), true, `${op}: the error verifies`);
    };

    it("no catalogue: not enforced; every app_version (or none) is entitled, and version_eligibility says enforced false", async () => {
      const expiresAt = h.clock.now() + 30 * DAY_MS;
      const s = await setup({ license: { expires_at: iso(expiresAt) } });
      for (const op of OPS) {
        const ve = await assertGranted(await call(op, s.key, { fingerprint: "m-1", app_version: "anything-1" }), op);
        assert.deepEqual(ve, { app_version: "anything-1", is_entitled: true, enforced: false, eligible_through: iso(expiresAt) }, op);
        const none = await assertGranted(await call(op, s.key, { fingerprint: "m-1" }), op);
        assert.equal(none, undefined, `${op}: no app_version, no version_eligibility`);
      }
    });

    it("an eligible version: enforced, entitled, with released_at and eligible_through", async () => {
      const now = h.clock.now();
      const expiresAt = now + 30 * DAY_MS;
      const s = await setup({ license: { expires_at: iso(expiresAt) }, versions: [["1.0.0", now - DAY_MS], ["1.1.0", expiresAt]] });
      for (const op of OPS) {
        for (const [v, released] of [["1.0.0", now - DAY_MS], ["1.1.0", expiresAt]] as const) {
          const ve = await assertGranted(await call(op, s.key, { fingerprint: "m-1", app_version: v }), op);
          assert.deepEqual(ve, { app_version: v, is_entitled: true, enforced: true, released_at: iso(released), eligible_through: iso(expiresAt) }, `${op} ${v}`);
        }
      }
      // An eligible version binds a new machine as usual.
      assert.equal((await call("validate", s.key, { fingerprint: "m-2", app_version: "1.0.0" })).status, 200);
    });

    it("a version released after eligible_through (the license's expires_at) is VERSION_NOT_ELIGIBLE on every call, and binds nothing", async () => {
      const now = h.clock.now();
      const expiresAt = now + 30 * DAY_MS;
      const s = await setup({ license: { expires_at: iso(expiresAt) }, versions: [["1.0.0", now], ["2.0.0", expiresAt + 1]] });
      for (const op of OPS) {
        await assertIneligible(await call(op, s.key, { fingerprint: "m-1", app_version: "2.0.0" }), op, /2\.0\.0 was released .* after the license expires/);
        await assertIneligible(await call(op, s.key, { fingerprint: "m-new", app_version: "2.0.0" }), op, /after the license expires/);
      }
      const devices = await h.lk.store.db.selectFrom("devices").select("fingerprint").where("license_id", "=", s.licenseId).execute();
      assert.deepEqual(
        devices.map((d) => d.fingerprint),
        ["m-1"],
      );
      assert.equal((await h.lk.store.db.selectFrom("licenses").select("total_consumptions").where("id", "=", s.licenseId).executeTakeFirstOrThrow()).total_consumptions, 0);
    });

    it("an unknown version, or no app_version at all, is VERSION_NOT_ELIGIBLE once the catalogue exists", async () => {
      const s = await setup({ versions: [["1.0.0", h.clock.now()]] });
      for (const op of OPS) {
        await assertIneligible(await call(op, s.key, { fingerprint: "m-1", app_version: "1.0.1" }), op, /1\.0\.1 is not in the product's version catalogue/);
        await assertIneligible(await call(op, s.key, { fingerprint: "m-1" }), op, /app_version: is required/);
        // Without an expiry every catalogued version is eligible; no eligible_through is shown.
        const ve = await assertGranted(await call(op, s.key, { fingerprint: "m-1", app_version: "1.0.0" }), op);
        assert.deepEqual(ve, { app_version: "1.0.0", is_entitled: true, enforced: true, released_at: iso(h.clock.now()) });
      }
    });

    it("a perpetual license is judged by maintenance_expires_at (not expiry); without it every catalogued version is eligible", async () => {
      const now = h.clock.now();
      const maintenance = now + 10 * DAY_MS;
      const versions: [string, number][] = [
        ["3.0.0", now - 100 * DAY_MS],
        ["3.1.0", maintenance],
        ["4.0.0", maintenance + DAY_MS],
      ];
      const s = await setup({ licenseType: "perpetual", license: { maintenance_expires_at: iso(maintenance) }, versions });
      for (const op of OPS) {
        for (const v of ["3.0.0", "3.1.0"]) {
          const ve = await assertGranted(await call(op, s.key, { fingerprint: "m-1", app_version: v }), op);
          assert.equal(ve.is_entitled, true);
          assert.equal(ve.eligible_through, iso(maintenance));
        }
        await assertIneligible(await call(op, s.key, { fingerprint: "m-1", app_version: "4.0.0" }), op, /after maintenance ends/);
      }
      // Time passing does not change what a perpetual license may run.
      h.clock.advance(365 * DAY_MS);
      assert.equal((await call("validate", s.key, { fingerprint: "m-1", app_version: "3.1.0" })).status, 200);

      const open = await setup({ licenseType: "perpetual", versions: [["9.0.0", h.clock.now() + 1000 * DAY_MS]] });
      for (const op of OPS) {
        const ve = await assertGranted(await call(op, open.key, { fingerprint: "m-1", app_version: "9.0.0" }), op);
        assert.deepEqual(ve, { app_version: "9.0.0", is_entitled: true, enforced: true, released_at: iso(h.clock.now() + 1000 * DAY_MS) });
      }
    });

    it("the D2 order: a suspended license is LICENSE_INACTIVE before the version is looked at", async () => {
      const s = await setup({ versions: [["1.0.0", h.clock.now()]] });
      ok(await h.request({ method: "POST", url: `/api/v1/licenses/${s.licenseId}/suspend` }), "suspend");
      for (const op of OPS) {
        const r = await call(op, s.key, { fingerprint: "m-1", app_version: "nope" });
        assert.equal(r.json.error.code, "LICENSE_INACTIVE", op);
      }
    });
  });
}
