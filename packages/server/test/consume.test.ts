// POST /api/v1/license/consume (metering, NOTES §7) and the entitlement's features[] (issue 5 item 7):
// every declared status, the quota under 50 concurrent consumes over real HTTP, a repeated event_id
// counted once (also 10 at once), and features[] showing quota / consumed / remaining. Every signed
// answer, success or error, is verified the way the official SDK verifies it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DAY_MS } from "../src/clock.js";
import { assertContract, assertOperationResponse } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, listen, type Reply, startHarness, postRuntime } from "./helpers/harness.js";
import { type PublicKeyEntry, sdkVerify } from "./helpers/verify.js";

const CONSUME = "/api/v1/license/consume";

for (const engine of ENGINES) {
  describe(`consume and features[] [${engine}]`, () => {
    let h: Harness;
    let base: string;
    let keys: PublicKeyEntry[];
    let n = 0;
    before(async () => {
      h = await startHarness(engine);
      base = await listen(h);
      keys = (await h.request({ url: "/api/v1/system/public-keys", token: null })).json.data;
    });
    after(async () => h?.close());

    const idem = () => `consume-${engine}-${++n}`;
    const consume = (key: string, body: Record<string, unknown>, idempotencyKey: string | undefined = idem()) =>
      h.request({ url: CONSUME, licenseKey: key, body, ...(idempotencyKey ? { idempotencyKey } : {}) });
    const validate = (key: string, body: Record<string, unknown>) => h.request({ url: "/api/v1/license/validate", licenseKey: key, body });
    const ok = (r: Reply, what: string) => {
      assert.ok(r.status >= 200 && r.status < 300, `${what} → ${r.status} ${r.text}`);
      return r.json;
    };
    const licenseRow = (id: string) => h.lk.store.db.selectFrom("licenses").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    const assignmentRow = (licenseId: string, featureId: string) =>
      h.lk.store.db.selectFrom("license_features").selectAll().where("license_id", "=", licenseId).where("feature_id", "=", featureId).executeTakeFirstOrThrow();
    const events = (licenseId: string, type: string) =>
      h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", licenseId).where("event_type", "=", type).orderBy("sequence").execute();

    /** A 200 consume answer: contract shape, SDK signature. */
    // biome-ignore lint/suspicious/noExplicitAny: parsed response bodies
    const assertGranted = async (r: { status: number; json: any; text: string }) => {
      assert.equal(r.status, 200, r.text);
      assertContract("SignedRuntimeEntitlementEnvelope", r.json);
      assertOperationResponse(CONSUME, "post", "200", r.json);
      assert.equal(await sdkVerify(r.json, keys), true, "the 200 answer verifies");
    };
    /** An error answer with this status and code, in the contract's error envelope, signed over `error`. */
    // biome-ignore lint/suspicious/noExplicitAny: parsed response bodies
    const assertRefused = async (r: { status: number; json: any; text: string }, status: number, code: string) => {
      assert.equal(r.status, status, r.text);
      assert.equal(r.json.error.code, code, r.text);
      assertContract("ErrorEnvelope", r.json);
      assert.equal(await sdkVerify(r.json, keys, "error"), true, "the error answer verifies");
    };

    /** A license with features `f-quota` (quota), `f-free` (no quota) and an unassigned `f-other`; the device is bound unless told. */
    async function metered(quota = 10, opts: { policy?: Record<string, unknown>; bind?: boolean } = {}) {
      const lic = await issueLicense(h, { max_activations: 2, ...opts.policy });
      const feature = async (code: string) => ok(await h.request({ url: `/api/v1/products/${lic.productId}/features`, body: { name: code, code } }), code).data.id as string;
      const quotaId = await feature("f-quota");
      const freeId = await feature("f-free");
      const otherId = await feature("f-other");
      ok(await h.request({ url: `/api/v1/licenses/${lic.licenseId}/features`, body: { feature_id: quotaId, max_consumptions: quota } }), "assign quota");
      ok(await h.request({ url: `/api/v1/licenses/${lic.licenseId}/features`, body: { feature_id: freeId } }), "assign free");
      if (opts.bind !== false) ok(await h.request({ url: "/api/v1/license/activate", licenseKey: lic.key, idempotencyKey: idem(), body: { fingerprint: "m-1" } }), "activate");
      return { ...lic, quotaId, freeId, otherId };
    }

    describe("200", () => {
      it("counts the amount on the feature and the license, answers the signed entitlement with the new balance, and records usage.consumed", async () => {
        const lic = await metered(10);
        const r = await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 3, event_id: "job-1" });
        await assertGranted(r);
        assert.equal(r.json.data.license_id, lic.licenseId);
        assert.equal(r.json.data.status, "active");
        assert.deepEqual(r.json.data.features, [
          { code: "f-free", enabled: true, consumed: 0 },
          { code: "f-quota", enabled: true, quota: 10, consumed: 3, remaining: 7 },
        ]);
        assert.equal((await assignmentRow(lic.licenseId, lic.quotaId)).total_consumptions, 3);
        assert.equal((await licenseRow(lic.licenseId)).total_consumptions, 3);
        assert.equal((await h.request({ url: `/api/v1/licenses/${lic.licenseId}` })).json.data.total_consumptions, 3);

        const ev = await events(lic.licenseId, "usage.consumed");
        assert.equal(ev.length, 1);
        assert.equal(ev[0]!.actor_type, "license");
        assert.equal(ev[0]!.resource_type, "license");
        const meta = JSON.parse(ev[0]!.metadata);
        assert.equal(meta.feature_code, "f-quota");
        assert.equal(meta.feature_id, lic.quotaId);
        assert.equal(meta.amount, 3);
        assert.equal(meta.event_id, "job-1");
        assert.equal(meta.total_consumptions, 3);
        assert.equal(meta.remaining, 7);
        assert.equal(meta.device_id, r.json.data.device_id);
        assert.equal(JSON.stringify(meta).includes("m-1"), false, "the fingerprint is not in the event");

        // amount defaults to 1; a feature without quota counts without limit.
        const one = await consume(lic.key, { fingerprint: "m-1", feature_code: "f-free", event_id: "job-2" });
        await assertGranted(one);
        assert.deepEqual(one.json.data.features[0], { code: "f-free", enabled: true, consumed: 1 });
        const big = await consume(lic.key, { fingerprint: "m-1", feature_code: "f-free", amount: 1_000_000, event_id: "job-3" });
        await assertGranted(big);
        assert.equal((await licenseRow(lic.licenseId)).total_consumptions, 3 + 1 + 1_000_000);
      });

      it("binds an unbound machine implicitly (D2), when a slot is free", async () => {
        const lic = await metered(5, { bind: false });
        const r = await consume(lic.key, { fingerprint: "fresh", feature_code: "f-quota", event_id: "e-1" });
        await assertGranted(r);
        const activated = await events(lic.licenseId, "license.activated");
        assert.equal(activated.length, 1);
        assert.equal(JSON.parse(activated[0]!.metadata).implicit, true);
        assert.equal((await licenseRow(lic.licenseId)).active_device_count, 1);
      });

      it("a repeated event_id answers exactly as the first did, with any Idempotency-Key, and counts once", async () => {
        const lic = await metered(10);
        const first = await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 2, event_id: "dup" }, "k-first");
        await assertGranted(first);
        h.clock.advance(1000);
        const again = await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 2, event_id: "dup" }, "k-second");
        assert.equal(again.status, 200);
        assert.equal(again.text, first.text, "the stored answer, byte for byte");
        assert.equal(again.headers["idempotent-replayed"], undefined, "not an idempotency replay: another key");
        await assertGranted(again);
        // The same Idempotency-Key replays as D3 says.
        const replay = await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 2, event_id: "dup" }, "k-first");
        assert.equal(replay.text, first.text);
        assert.equal(replay.headers["idempotent-replayed"], "true");
        assert.equal((await assignmentRow(lic.licenseId, lic.quotaId)).total_consumptions, 2);
        assert.equal((await licenseRow(lic.licenseId)).total_consumptions, 2);
        assert.equal((await events(lic.licenseId, "usage.consumed")).length, 1);
        // Another event counts.
        await assertGranted(await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 2, event_id: "dup-2" }));
        assert.equal((await assignmentRow(lic.licenseId, lic.quotaId)).total_consumptions, 4);
        // Event ids are per license: another license may use the same one.
        const other = await metered(10);
        await assertGranted(await consume(other.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 2, event_id: "dup" }));
        assert.equal((await assignmentRow(other.licenseId, other.quotaId)).total_consumptions, 2);
      });

      it("features[] on validate shows quota / consumed / remaining after consumes; disabled and expired assignments show enabled false", async () => {
        const lic = await metered(5);
        await assertGranted(await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 2, event_id: "v-1" }));
        await assertGranted(await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 3, event_id: "v-2" }));
        await assertGranted(await consume(lic.key, { fingerprint: "m-1", feature_code: "f-free", amount: 4, event_id: "v-3" }));
        const v = await validate(lic.key, { fingerprint: "m-1" });
        assert.equal(v.status, 200, v.text);
        assert.equal(await sdkVerify(v.json, keys), true);
        assertContract("SignedRuntimeEntitlementEnvelope", v.json);
        assert.deepEqual(v.json.data.features, [
          { code: "f-free", enabled: true, consumed: 4 },
          { code: "f-quota", enabled: true, quota: 5, consumed: 5, remaining: 0 },
        ]);
        // check and activate carry the same features[].
        const c = await h.request({ url: "/api/v1/license/check", licenseKey: lic.key, body: { fingerprint: "m-1" } });
        assert.deepEqual(c.json.data.features, v.json.data.features);
        assert.equal(await sdkVerify(c.json, keys), true);

        // Disabled, and an assignment that expires.
        ok(await h.request({ url: `/api/v1/licenses/${lic.licenseId}/features`, body: { feature_id: lic.freeId, enabled: false } }), "disable");
        const expiresAt = h.clock.now() + DAY_MS;
        ok(
          await h.request({ url: `/api/v1/licenses/${lic.licenseId}/features`, body: { feature_id: lic.otherId, expires_at: new Date(expiresAt).toISOString() } }),
          "assign expiring",
        );
        const before = await validate(lic.key, { fingerprint: "m-1" });
        assert.deepEqual(before.json.data.features, [
          { code: "f-free", enabled: false, consumed: 4 },
          { code: "f-other", enabled: true, consumed: 0 },
          { code: "f-quota", enabled: true, quota: 5, consumed: 5, remaining: 0 },
        ]);
        h.clock.set(expiresAt);
        const afterExpiry = await validate(lic.key, { fingerprint: "m-1" });
        assert.equal(await sdkVerify(afterExpiry.json, keys), true);
        assert.deepEqual(afterExpiry.json.data.features[1], { code: "f-other", enabled: false, consumed: 0 });

        // A top-up through the management usage reset shows at once.
        ok(await h.request({ url: `/api/v1/licenses/${lic.licenseId}/usage/reset`, body: { feature_code: "f-quota", add_credits: 3 } }), "top up");
        const topped = await validate(lic.key, { fingerprint: "m-1" });
        assert.deepEqual(topped.json.data.features[2], { code: "f-quota", enabled: true, quota: 8, consumed: 5, remaining: 3 });
      });
    });

    describe("400, 401, 422", () => {
      it("400 IDEMPOTENCY_KEY_REQUIRED without the header; 400 INVALID_JSON for unknown fields and wrong types; nothing is counted", async () => {
        const lic = await metered(10);
        const body = { fingerprint: "m-1", feature_code: "f-quota", event_id: "bad" };
        const noKey = await h.request({ url: CONSUME, licenseKey: lic.key, body });
        await assertRefused(noKey, 400, "IDEMPOTENCY_KEY_REQUIRED");
        await assertRefused(await consume(lic.key, { ...body, quantity: 1 }), 400, "INVALID_JSON");
        await assertRefused(await consume(lic.key, { ...body, amount: "2" }), 400, "INVALID_JSON");
        await assertRefused(await consume(lic.key, { ...body, amount: 1.5 }), 400, "INVALID_JSON");
        const malformed = await h.request({ url: CONSUME, licenseKey: lic.key, rawBody: "{", headers: { "content-type": "application/json" }, idempotencyKey: idem() });
        await assertRefused(malformed, 400, "INVALID_JSON");
        assert.equal((await licenseRow(lic.licenseId)).total_consumptions, 0);
      });

      it("401 UNAUTHORIZED for an unknown license key", async () => {
        const r = await consume("lsk_00000000000000000000000000000000", { fingerprint: "m-1", feature_code: "f-quota", event_id: "x" });
        await assertRefused(r, 401, "UNAUTHORIZED");
      });

      it("422 VALIDATION_ERROR: missing feature_code or event_id, amount below 1, empty values, no binding identity", async () => {
        const lic = await metered(10);
        const cases: [Record<string, unknown>, RegExp][] = [
          [{ fingerprint: "m-1", event_id: "e" }, /feature_code/],
          [{ fingerprint: "m-1", feature_code: "f-quota" }, /event_id/],
          [{ fingerprint: "m-1", feature_code: "f-quota", event_id: "e", amount: 0 }, /amount/],
          [{ fingerprint: "m-1", feature_code: "", event_id: "e" }, /feature_code/],
          [{ fingerprint: "m-1", feature_code: "f-quota", event_id: "" }, /event_id/],
          [{ feature_code: "f-quota", event_id: "e" }, /fingerprint/],
          [{ is_container: true, feature_code: "f-quota", event_id: "e" }, /container/],
        ];
        for (const [body, detail] of cases) {
          const r = await consume(lic.key, body);
          await assertRefused(r, 422, "VALIDATION_ERROR");
          assert.match(r.json.error.detail, detail);
        }
        assert.equal((await licenseRow(lic.licenseId)).total_consumptions, 0);
      });
    });

    describe("403", () => {
      it("FEATURE_NOT_ENTITLED: a code the product lacks, a feature not assigned, a disabled one, an expired assignment; the denial is recorded", async () => {
        const lic = await metered(10);
        const unknown = await consume(lic.key, { fingerprint: "m-1", feature_code: "no-such-feature", event_id: "n-1" });
        await assertRefused(unknown, 403, "FEATURE_NOT_ENTITLED");
        assert.match(unknown.json.error.detail, /not assigned/);
        const unassigned = await consume(lic.key, { fingerprint: "m-1", feature_code: "f-other", event_id: "n-2" });
        await assertRefused(unassigned, 403, "FEATURE_NOT_ENTITLED");

        ok(await h.request({ url: `/api/v1/licenses/${lic.licenseId}/features`, body: { feature_id: lic.freeId, enabled: false } }), "disable");
        const disabled = await consume(lic.key, { fingerprint: "m-1", feature_code: "f-free", event_id: "n-3" });
        await assertRefused(disabled, 403, "FEATURE_NOT_ENTITLED");
        assert.match(disabled.json.error.detail, /disabled/);

        const expiresAt = h.clock.now() + DAY_MS;
        ok(await h.request({ url: `/api/v1/licenses/${lic.licenseId}/features`, body: { feature_id: lic.otherId, expires_at: new Date(expiresAt).toISOString() } }), "assign");
        await assertGranted(await consume(lic.key, { fingerprint: "m-1", feature_code: "f-other", event_id: "n-4" }));
        h.clock.set(expiresAt);
        const expired = await consume(lic.key, { fingerprint: "m-1", feature_code: "f-other", event_id: "n-5" });
        await assertRefused(expired, 403, "FEATURE_NOT_ENTITLED");
        assert.match(expired.json.error.detail, /expired/);

        assert.equal((await licenseRow(lic.licenseId)).total_consumptions, 1);
        const denials = (await events(lic.licenseId, "license.validation_denied")).map((e) => JSON.parse(e.metadata));
        assert.deepEqual(
          denials.map((m) => [m.operation, m.code, m.feature_code]),
          [
            ["consume", "FEATURE_NOT_ENTITLED", "no-such-feature"],
            ["consume", "FEATURE_NOT_ENTITLED", "f-other"],
            ["consume", "FEATURE_NOT_ENTITLED", "f-free"],
            ["consume", "FEATURE_NOT_ENTITLED", "f-other"],
          ],
        );
      });

      it("the D2 checks come first: a suspended license is LICENSE_INACTIVE and counts nothing", async () => {
        const lic = await metered(10);
        ok(await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/suspend` }), "suspend");
        await assertRefused(await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", event_id: "s-1" }), 403, "LICENSE_INACTIVE");
        await assertRefused(await consume(lic.key, { fingerprint: "m-1", feature_code: "no-such", event_id: "s-2" }), 403, "LICENSE_INACTIVE");
        assert.equal((await assignmentRow(lic.licenseId, lic.quotaId)).total_consumptions, 0);
      });
    });

    describe("409", () => {
      it("FEATURE_QUOTA_EXCEEDED when the amount would pass the quota, with a usage.quota_exceeded event; the event_id may be sent again after a top-up", async () => {
        const lic = await metered(5);
        await assertGranted(await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 4, event_id: "q-1" }));
        const over = await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 2, event_id: "q-2" });
        await assertRefused(over, 409, "FEATURE_QUOTA_EXCEEDED");
        assert.match(over.json.error.detail, /1 of 5 left/);
        assert.equal((await assignmentRow(lic.licenseId, lic.quotaId)).total_consumptions, 4);
        assert.equal((await licenseRow(lic.licenseId)).total_consumptions, 4);
        const exceeded = await events(lic.licenseId, "usage.quota_exceeded");
        assert.equal(exceeded.length, 1);
        const meta = JSON.parse(exceeded[0]!.metadata);
        assert.deepEqual([meta.feature_code, meta.amount, meta.event_id, meta.total_consumptions, meta.max_consumptions], ["f-quota", 2, "q-2", 4, 5]);
        // Exactly up to the quota is fine.
        await assertGranted(await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 1, event_id: "q-3" }));
        await assertRefused(await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 1, event_id: "q-4" }), 409, "FEATURE_QUOTA_EXCEEDED");
        // A refused event was not recorded: after a top-up the same event_id counts.
        ok(await h.request({ url: `/api/v1/licenses/${lic.licenseId}/usage/reset`, body: { feature_code: "f-quota", add_credits: 10 } }), "top up");
        const retried = await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 2, event_id: "q-2" });
        await assertGranted(retried);
        assert.deepEqual(retried.json.data.features[1], { code: "f-quota", enabled: true, quota: 15, consumed: 7, remaining: 8 });
      });

      it("ACTIVATION_LIMIT_EXCEEDED when an unbound machine meets a full license", async () => {
        const lic = await metered(10, { policy: { max_activations: 1 } });
        const r = await consume(lic.key, { fingerprint: "m-2", feature_code: "f-quota", event_id: "a-1" });
        await assertRefused(r, 409, "ACTIVATION_LIMIT_EXCEEDED");
        assert.equal((await events(lic.licenseId, "license.activation_limit_exceeded")).length, 1);
        assert.equal((await assignmentRow(lic.licenseId, lic.quotaId)).total_consumptions, 0);
      });

      it("IDEMPOTENCY_CONFLICT when an Idempotency-Key is reused with another request", async () => {
        const lic = await metered(10);
        await assertGranted(await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", event_id: "i-1" }, "reused-key"));
        const r = await consume(lic.key, { fingerprint: "m-1", feature_code: "f-quota", event_id: "i-2" }, "reused-key");
        await assertRefused(r, 409, "IDEMPOTENCY_CONFLICT");
        assert.equal((await assignmentRow(lic.licenseId, lic.quotaId)).total_consumptions, 1);
      });
    });

    describe("under concurrency, over real HTTP", () => {
      it("50 concurrent consumes of 1 against a quota of 20: exactly 20 succeed, 30 are FEATURE_QUOTA_EXCEEDED, stored totals are 20", async () => {
        const lic = await metered(20);
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => postRuntime(base, CONSUME, lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 1, event_id: `race-${i}` }, `race-key-${i}`)),
        );
        const granted = results.filter((r) => r.status === 200);
        const refused = results.filter((r) => r.status !== 200);
        assert.equal(granted.length, 20, JSON.stringify(results.map((r) => r.status)));
        assert.equal(refused.length, 30);
        for (const r of refused) await assertRefused(r, 409, "FEATURE_QUOTA_EXCEEDED");
        for (const r of granted) await assertGranted(r);
        // Each success saw its own count: the consumed values are 1..20 exactly once each.
        const consumed = granted.map((r) => r.json.data.features.find((f: { code: string }) => f.code === "f-quota").consumed).sort((a, b) => a - b);
        assert.deepEqual(
          consumed,
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
        assert.equal((await assignmentRow(lic.licenseId, lic.quotaId)).total_consumptions, 20);
        assert.equal((await licenseRow(lic.licenseId)).total_consumptions, 20);
        assert.equal((await events(lic.licenseId, "usage.consumed")).length, 20);
        assert.equal((await events(lic.licenseId, "usage.quota_exceeded")).length, 30);
      });

      it("the same event_id sent 10 times at once (different Idempotency-Keys) is counted once, and every answer is identical", async () => {
        const lic = await metered(100);
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => postRuntime(base, CONSUME, lic.key, { fingerprint: "m-1", feature_code: "f-quota", amount: 5, event_id: "same-event" }, `same-${i}`)),
        );
        for (const r of results) await assertGranted(r);
        assert.equal(new Set(results.map((r) => r.text)).size, 1, "every answer is the first one's");
        assert.equal((await assignmentRow(lic.licenseId, lic.quotaId)).total_consumptions, 5);
        assert.equal((await licenseRow(lic.licenseId)).total_consumptions, 5);
        assert.equal((await events(lic.licenseId, "usage.consumed")).length, 1);
        const rows = await h.lk.store.db.selectFrom("consumption_events").selectAll().where("license_id", "=", lic.licenseId).execute();
        assert.equal(rows.length, 1);
        assert.equal(rows[0]!.amount, 5);
        assert.equal(rows[0]!.response_body, results[0]!.text);
      });
    });
  });
}
