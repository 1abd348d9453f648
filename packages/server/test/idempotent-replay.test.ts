// D3 as a client sees it: identical replays, conflicts, in-progress claims, what is never stored,
// retention, and management creates that accept an optional key.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { IN_PROGRESS_TTL_MS } from "../src/http/idempotency.js";
import { purgeExpiredIdempotencyRecords } from "../src/jobs/idempotency-purge.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";

for (const engine of ENGINES) {
  describe(`idempotency [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => {
      // Every keyed request of the suite settled: none still holds its key in this process.
      assert.equal(h?.lk.inFlightKeys.size, 0);
      await h?.close();
    });

    const activate = (key: string, idem: string | undefined, body: unknown) => h.request({ url: "/api/v1/license/activate", licenseKey: key, idempotencyKey: idem, body });
    const count = async (table: "devices" | "audit_events" | "licenses", licenseId?: string) => {
      let q = h.lk.store.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as("n"));
      if (licenseId && table === "devices") q = q.where("license_id" as never, "=", licenseId as never);
      return Number((await q.executeTakeFirstOrThrow()).n);
    };

    it("replays the identical answer (body, signature, request id) with Idempotent-Replayed: true", async () => {
      const lic = await issueLicense(h, { max_activations: 2 });
      const first = await activate(lic.key, "same-key", { fingerprint: "fp-1" });
      assert.equal(first.status, 200);
      const events = await count("audit_events");
      const again = await activate(lic.key, "same-key", { fingerprint: "fp-1" });
      assert.equal(again.status, 200);
      assert.equal(again.text, first.text);
      assert.equal(again.headers["idempotent-replayed"], "true");
      assert.equal(first.headers["idempotent-replayed"], undefined);
      assert.notEqual(again.headers["x-request-id"], first.headers["x-request-id"]);
      assert.equal(await count("audit_events"), events, "a replay writes nothing");
      assert.equal(await count("devices", lic.licenseId), 1);
    });

    it("same key with another body → 409 IDEMPOTENCY_CONFLICT; no key → 400 IDEMPOTENCY_KEY_REQUIRED", async () => {
      const lic = await issueLicense(h, { max_activations: 2 });
      assert.equal((await activate(lic.key, "k", { fingerprint: "a" })).status, 200);
      const conflict = await activate(lic.key, "k", { fingerprint: "b" });
      assert.equal(conflict.status, 409);
      assert.equal(conflict.json.error.code, "IDEMPOTENCY_CONFLICT");
      assert.equal(await count("devices", lic.licenseId), 1);
      const missing = await activate(lic.key, undefined, { fingerprint: "b" });
      assert.equal(missing.status, 400);
      assert.equal(missing.json.error.code, "IDEMPOTENCY_KEY_REQUIRED");
      const long = await activate(lic.key, "x".repeat(256), { fingerprint: "b" });
      assert.equal(long.status, 400);
      assert.equal(long.json.error.code, "BAD_REQUEST");
    });

    it("keys are scoped to the credential: the same key on another license is a separate operation", async () => {
      const a = await issueLicense(h, { max_activations: 1 });
      const b = await issueLicense(h, { max_activations: 1 });
      const ra = await activate(a.key, "shared", { fingerprint: "one" });
      const rb = await activate(b.key, "shared", { fingerprint: "one" });
      assert.equal(ra.status, 200);
      assert.equal(rb.status, 200);
      assert.notEqual(ra.json.data.license_id, rb.json.data.license_id);
    });

    it("a stored denial is replayed as it was, even after the limit would allow it", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      await activate(lic.key, "d1", { fingerprint: "first" });
      const denied = await activate(lic.key, "d2", { fingerprint: "second" });
      assert.equal(denied.json.error.code, "ACTIVATION_LIMIT_EXCEEDED");
      await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/revoke` });
      const replay = await activate(lic.key, "d2", { fingerprint: "second" });
      assert.equal(replay.text, denied.text);
      assert.equal(replay.headers["idempotent-replayed"], "true");
    });

    it("401 answers are never stored", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      const bad = await activate("lsk_00000000000000000000000000000000", "u1", { fingerprint: "z" });
      assert.equal(bad.status, 401);
      const good = await activate(lic.key, "u1", { fingerprint: "z" });
      assert.equal(good.status, 200);
      assert.equal(good.headers["idempotent-replayed"], undefined);
    });

    it("a request still in progress → 409 IDEMPOTENCY_IN_PROGRESS; an abandoned claim is taken over after its TTL", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      const path = "/api/v1/license/activate";
      const id = createHash("sha256").update(`${lic.licenseId}\nPOST\n${path}\nbusy`).digest("hex");
      const reqHash = createHash("sha256").update(JSON.stringify(["POST", path, "", { fingerprint: "p" }])).digest("hex");
      const now = h.clock.now();
      await h.lk.store.db
        .insertInto("idempotency_records")
        .values({ id, credential_id: lic.licenseId, request_hash: reqHash, state: "in_progress", response_status: null, response_body: null, created_at: now, expires_at: now + IN_PROGRESS_TTL_MS })
        .execute();
      const busy = await activate(lic.key, "busy", { fingerprint: "p" });
      assert.equal(busy.status, 409);
      assert.equal(busy.json.error.code, "IDEMPOTENCY_IN_PROGRESS");
      h.clock.advance(IN_PROGRESS_TTL_MS + 1);
      const taken = await activate(lic.key, "busy", { fingerprint: "p" });
      assert.equal(taken.status, 200, taken.text);
      // the taken-over key now holds this answer: the record is completed and a retry replays it
      const record = await h.lk.store.db.selectFrom("idempotency_records").select(["state"]).where("id", "=", id).executeTakeFirstOrThrow();
      assert.equal(record.state, "completed");
      const replay = await activate(lic.key, "busy", { fingerprint: "p" });
      assert.equal(replay.text, taken.text);
      assert.equal(replay.headers["idempotent-replayed"], "true");
    });

    it("answers are kept for the retention window, then the key is free and the record purged", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      const first = await activate(lic.key, "ret", { fingerprint: "r" });
      h.clock.advance(23 * 3_600_000);
      assert.equal((await activate(lic.key, "ret", { fingerprint: "r" })).text, first.text);
      h.clock.advance(2 * 3_600_000);
      assert.ok((await purgeExpiredIdempotencyRecords(h.lk.store, h.clock)) >= 1);
      const fresh = await activate(lic.key, "ret", { fingerprint: "r" });
      assert.equal(fresh.status, 200);
      assert.notEqual(fresh.json.data.issued_at, first.json.data.issued_at);
      assert.equal(fresh.headers["idempotent-replayed"], undefined);
    });

    it("a record past retention that no purge has removed yet frees its key: the request runs again and its answer replaces the record", async () => {
      const lic = await issueLicense(h, { max_activations: 2 });
      const first = await activate(lic.key, "lapsed", { fingerprint: "l1" });
      assert.equal(first.status, 200, first.text);
      h.clock.advance(25 * 3_600_000);
      const again = await activate(lic.key, "lapsed", { fingerprint: "l2" });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.headers["idempotent-replayed"], undefined);
      assert.notEqual(again.json.data.device_id, first.json.data.device_id, "the second request ran: a second device");
      const replay = await activate(lic.key, "lapsed", { fingerprint: "l2" });
      assert.equal(replay.text, again.text, "the key now replays the new answer");
      const rows = await h.lk.store.db.selectFrom("idempotency_records").select(["state", "expires_at"]).where("credential_id", "=", lic.licenseId).execute();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.state, "completed");
      assert.ok(Number(rows[0]!.expires_at) > h.clock.now());
    });

    it("validate accepts an optional key and replays its read-only answer", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      await activate(lic.key, "v0", { fingerprint: "v" });
      const a = await h.request({ url: "/api/v1/license/validate", licenseKey: lic.key, idempotencyKey: "v1", body: { fingerprint: "v" } });
      const b = await h.request({ url: "/api/v1/license/validate", licenseKey: lic.key, idempotencyKey: "v1", body: { fingerprint: "v" } });
      assert.equal(b.text, a.text);
      assert.equal(b.headers["idempotent-replayed"], "true");
    });

    it("a read-only answer under a key: the same request replays it, another body under the key → 409 IDEMPOTENCY_CONFLICT", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      await activate(lic.key, "ro-0", { fingerprint: "ro" });
      const validate = (body: unknown) => h.request({ url: "/api/v1/license/validate", licenseKey: lic.key, idempotencyKey: "ro-1", body });
      const a = await validate({ fingerprint: "ro" });
      assert.equal(a.status, 200, a.text);
      const conflict = await validate({ fingerprint: "ro", app_version: "9.9.9" });
      assert.equal(conflict.status, 409, conflict.text);
      assert.equal(conflict.json.error.code, "IDEMPOTENCY_CONFLICT");
      assert.ok(conflict.json.signature, "a runtime refusal is signed");
      const b = await validate({ fingerprint: "ro" });
      assert.equal(b.text, a.text);
      assert.equal(b.headers["idempotent-replayed"], "true");
    });

    it("an error thrown inside the transaction rolls the key back with the change; a 4xx is then stored and replayed, a 5xx is not", async () => {
      const lic = await issueLicense(h, { max_activations: 2 });
      const records = () => h.lk.store.db.selectFrom("idempotency_records").select(["state", "response_status"]).where("credential_id", "=", lic.licenseId).execute();
      // The answer's signature fails once, inside the transaction that bound the device: a 500.
      const keyring = h.lk.keyring;
      const sign = keyring.sign.bind(keyring);
      let failures = 1;
      keyring.sign = (bytes) => {
        if (failures-- > 0) throw new Error("signing failed (test)");
        return sign(bytes);
      };
      try {
        const failed = await activate(lic.key, "tx-5xx", { fingerprint: "t" });
        assert.equal(failed.status, 500, failed.text);
      } finally {
        keyring.sign = sign;
      }
      assert.deepEqual(await records(), [], "no record: the key went back with the rolled-back binding");
      assert.equal(await count("devices", lic.licenseId), 0);
      const retried = await activate(lic.key, "tx-5xx", { fingerprint: "t" });
      assert.equal(retried.status, 200, retried.text);
      assert.equal(retried.headers["idempotent-replayed"], undefined);
      assert.equal(await count("devices", lic.licenseId), 1);

      // A 4xx thrown inside the transaction (a consume whose counter would pass 2^53 - 1).
      const feature = await h.request({ url: `/api/v1/products/${lic.productId}/features`, body: { name: "n", code: "n-big" } });
      assert.equal(feature.status, 201, feature.text);
      assert.equal((await h.request({ url: `/api/v1/licenses/${lic.licenseId}/features`, body: { feature_id: feature.json.data.id } })).status, 200);
      const consume = (event: string, amount: number) =>
        h.request({ url: "/api/v1/license/consume", licenseKey: lic.key, idempotencyKey: `big-${event}`, body: { fingerprint: "t", feature_code: "n-big", amount, event_id: event } });
      assert.equal((await consume("e1", 1)).status, 200);
      const refused = await consume("e2", Number.MAX_SAFE_INTEGER);
      assert.equal(refused.status, 422, refused.text);
      assert.equal(refused.json.error.code, "VALIDATION_ERROR");
      const replay = await consume("e2", Number.MAX_SAFE_INTEGER);
      assert.equal(replay.text, refused.text);
      assert.equal(replay.headers["idempotent-replayed"], "true");
      assert.deepEqual(
        (await records()).map((r) => `${r.state} ${r.response_status}`).sort(),
        ["completed 200", "completed 200", "completed 422"],
      );
    });

    it("management creates accept a key: one license, the same key replayed, and no key stored in clear", async () => {
      const lic = await issueLicense(h);
      const body = { product_id: lic.productId, policy_id: lic.policyId };
      const before = await count("licenses");
      const a = await h.request({ url: "/api/v1/licenses", body, idempotencyKey: "create-1" });
      const b = await h.request({ url: "/api/v1/licenses", body, idempotencyKey: "create-1" });
      assert.equal(a.status, 201);
      assert.equal(b.text, a.text);
      assert.equal(await count("licenses"), before + 1);
      const rows = await h.lk.store.db.selectFrom("idempotency_records").select("response_body").execute();
      for (const r of rows) assert.equal((r.response_body ?? "").includes(a.json.data.license_key), false);
      const other = await h.request({ url: "/api/v1/products", body: { name: "x", code: "x-idem" }, idempotencyKey: "create-1" });
      assert.equal(other.status, 201, "keys are scoped by path too");
    });
  });
}
