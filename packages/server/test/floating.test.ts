// Floating leases (issue 5 item 4): checkout / heartbeat / checkin with every declared status, signed
// answers that verify as the SDK verifies, seats that hold under 30 concurrent checkouts over real
// HTTP, leases that free their seat when not heartbeated (injected clock), the expiry job (one
// `floating.expired` event per lease), and the management list / release of leases.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { expireFloatingLeases } from "../src/jobs/lease-expiry.js";
import { assertContract } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, listen, type Reply, startHarness, type HttpAnswer, postRuntime } from "./helpers/harness.js";
import { type PublicKeyEntry, sdkVerify } from "./helpers/verify.js";

const MINUTE = 60_000;
const UNKNOWN_TOKEN = "llt_0000000000000000000000";

for (const engine of ENGINES) {
  describe(`floating leases [${engine}]`, () => {
    let h: Harness;
    let keys: PublicKeyEntry[];
    before(async () => {
      h = await startHarness(engine);
      keys = (await h.request({ url: "/api/v1/system/public-keys", token: null })).json.data;
    });
    after(async () => h?.close());

    let n = 0;
    const idem = () => `fl-${engine}-${++n}`;
    const checkout = (key: string, body: Record<string, unknown>, idempotencyKey: string | null = idem()) =>
      h.request({ url: "/api/v1/license/floating/checkout", licenseKey: key, body, ...(idempotencyKey ? { idempotencyKey } : {}) });
    const heartbeat = (key: string, body: Record<string, unknown>) => h.request({ url: "/api/v1/license/floating/heartbeat", licenseKey: key, body });
    const checkin = (key: string, body: Record<string, unknown>, idempotencyKey: string | null = idem()) =>
      h.request({ url: "/api/v1/license/floating/checkin", licenseKey: key, body, ...(idempotencyKey ? { idempotencyKey } : {}) });
    const events = (licenseId: string, type: string) =>
      h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", licenseId).where("event_type", "=", type).orderBy("sequence").execute();
    const leaseRows = (licenseId: string) => h.lk.store.db.selectFrom("floating_leases").selectAll().where("license_id", "=", licenseId).orderBy("id").execute();
    const deviceRows = (licenseId: string) => h.lk.store.db.selectFrom("devices").selectAll().where("license_id", "=", licenseId).execute();
    const floating = (policy: Record<string, unknown> = {}) => issueLicense(h, { max_activations: 10, max_floating_users: 2, floating_timeout_minutes: 15, ...policy });

    /** A signed error envelope with that status and code, verifying over JSON.stringify(error). */
    async function assertSignedError(res: Reply | HttpAnswer, status: number, code: string) {
      assert.equal(res.status, status, res.text);
      assert.equal(res.json.error.code, code, res.text);
      assertContract("ErrorEnvelope", res.json);
      assert.equal(await sdkVerify(res.json, keys, "error"), true, `error signature of ${code}`);
    }
    async function assertSigned(res: Reply | HttpAnswer, schema: string) {
      assert.equal(res.status, 200, res.text);
      assertContract(schema, res.json);
      assert.equal(await sdkVerify(res.json, keys), true);
    }

    describe("checkout (checkoutFloatingLicense)", () => {
      it("200: binds the device implicitly, takes a seat and returns a signed llt_ token valid for floating_timeout_minutes", async () => {
        const lic = await floating();
        const res = await checkout(lic.key, { fingerprint: "fp-1", hostname: "desk-1", app_version: "1.0.0" });
        await assertSigned(res, "SignedRuntimeFloatingCheckoutEnvelope");
        const d = res.json.data;
        assert.deepEqual(Object.keys(d), [
          "license_id",
          "status",
          "license_type",
          "entitlement_version",
          "issued_at",
          "device_id",
          "lease_token",
          "lease_expires_at",
          "features",
          "version_eligibility",
        ]);
        assert.equal(d.license_id, lic.licenseId);
        assert.equal(d.status, "active");
        assert.match(d.lease_token, /^llt_[0-9A-Za-z]{22}$/);
        assert.equal(Date.parse(d.lease_expires_at), h.clock.now() + 15 * MINUTE);
        assert.deepEqual(d.features, []);

        const [lease, ...more] = await leaseRows(lic.licenseId);
        assert.equal(more.length, 0);
        assert.equal(lease!.status, "active");
        assert.equal(lease!.device_id, d.device_id);
        assert.equal(lease!.token_hash, h.lk.hasher.hash(d.lease_token), "the token is stored only as its keyed hash");
        assert.ok(!JSON.stringify(lease).includes(d.lease_token));

        const activated = await events(lic.licenseId, "license.activated");
        assert.equal(activated.length, 1);
        assert.equal(JSON.parse(activated[0]!.metadata).implicit, true);
        const out = await events(lic.licenseId, "floating.checked_out");
        assert.equal(out.length, 1);
        assert.equal(out[0]!.actor_type, "license");
        const meta = JSON.parse(out[0]!.metadata);
        assert.equal(meta.lease_id, lease!.id);
        assert.equal(meta.device_id, d.device_id);
        assert.equal(meta.reissued, false);
        assert.ok(!out[0]!.metadata.includes("fp-1") && !out[0]!.metadata.includes(d.lease_token), "no fingerprint or token in the event");
      });

      it("a device that already holds a live lease gets the same lease re-issued (new token, extended), not a second seat", async () => {
        const lic = await floating({ max_floating_users: 1 });
        const first = await checkout(lic.key, { fingerprint: "fp-same" });
        await assertSigned(first, "SignedRuntimeFloatingCheckoutEnvelope");
        h.clock.advance(5 * MINUTE);
        const second = await checkout(lic.key, { fingerprint: "fp-same" });
        await assertSigned(second, "SignedRuntimeFloatingCheckoutEnvelope");
        assert.notEqual(second.json.data.lease_token, first.json.data.lease_token);
        assert.equal(Date.parse(second.json.data.lease_expires_at), h.clock.now() + 15 * MINUTE);
        const rows = await leaseRows(lic.licenseId);
        assert.equal(rows.length, 1, "one seat per device");
        assert.equal(JSON.parse((await events(lic.licenseId, "floating.checked_out"))[1]!.metadata).reissued, true);
        await assertSignedError(await heartbeat(lic.key, { lease_token: first.json.data.lease_token }), 404, "LEASE_NOT_FOUND");
        await assertSigned(await heartbeat(lic.key, { lease_token: second.json.data.lease_token }), "SignedRuntimeFloatingLeaseEnvelope");
      });

      it("the same Idempotency-Key replays the first answer byte for byte (same token, one lease)", async () => {
        const lic = await floating();
        const key = idem();
        const a = await checkout(lic.key, { fingerprint: "fp-replay" }, key);
        const b = await checkout(lic.key, { fingerprint: "fp-replay" }, key);
        assert.equal(a.status, 200, a.text);
        assert.equal(b.text, a.text);
        assert.equal(b.headers["idempotent-replayed"], "true");
        assert.equal((await leaseRows(lic.licenseId)).length, 1);
      });

      it("400: IDEMPOTENCY_KEY_REQUIRED without a key, INVALID_JSON for an unknown field", async () => {
        const lic = await floating();
        await assertSignedError(await checkout(lic.key, { fingerprint: "fp" }, null), 400, "IDEMPOTENCY_KEY_REQUIRED");
        const bad = await checkout(lic.key, { fingerprint: "fp", seats: 2 });
        await assertSignedError(bad, 400, "INVALID_JSON");
        assert.match(bad.json.error.detail, /seats/);
      });

      it("401: no license key, or one this server never issued", async () => {
        const none = await h.request({ url: "/api/v1/license/floating/checkout", body: { fingerprint: "fp" }, idempotencyKey: idem() });
        assert.equal(none.status, 401);
        assert.equal(none.json.error.code, "UNAUTHORIZED");
        const unknown = await checkout("lsk_00000000000000000000000000000000", { fingerprint: "fp" });
        assert.equal(unknown.status, 401);
        assert.equal(unknown.json.error.code, "UNAUTHORIZED");
      });

      it("403 FLOATING_NOT_ENABLED when the policy has max_floating_users 0, and no binding is left behind", async () => {
        const lic = await issueLicense(h, { max_activations: 5 });
        await assertSignedError(await checkout(lic.key, { fingerprint: "fp" }), 403, "FLOATING_NOT_ENABLED");
        assert.equal((await deviceRows(lic.licenseId)).length, 0);
        assert.equal((await leaseRows(lic.licenseId)).length, 0);
      });

      it("403 by the D2 order: LICENSE_INACTIVE, LICENSE_EXPIRED, DEVICE_BLACKLISTED, VM_NOT_ALLOWED, CONTAINER_NOT_ALLOWED", async () => {
        const suspended = await floating();
        assert.equal((await h.request({ url: `/api/v1/licenses/${suspended.licenseId}/suspend`, method: "POST" })).status, 200);
        await assertSignedError(await checkout(suspended.key, { fingerprint: "fp" }), 403, "LICENSE_INACTIVE");

        const expired = await floating();
        await h.lk.store.db.updateTable("licenses").set({ expires_at: h.clock.now() - 1 }).where("id", "=", expired.licenseId).execute();
        await assertSignedError(await checkout(expired.key, { fingerprint: "fp" }), 403, "LICENSE_EXPIRED");

        const black = await floating();
        const ok = await checkout(black.key, { fingerprint: "fp-black" });
        assert.equal(ok.status, 200, ok.text);
        const bl = await h.request({ method: "POST", url: `/api/v1/licenses/${black.licenseId}/devices/${ok.json.data.device_id}/blacklist` });
        assert.equal(bl.status, 200, bl.text);
        await assertSignedError(await checkout(black.key, { fingerprint: "fp-black" }), 403, "DEVICE_BLACKLISTED");

        const noVm = await floating({ allow_vm: false, allow_container: false });
        await assertSignedError(await checkout(noVm.key, { fingerprint: "fp-vm", is_vm: true }), 403, "VM_NOT_ALLOWED");
        await assertSignedError(await checkout(noVm.key, { is_container: true, pod_name: "p" }), 403, "CONTAINER_NOT_ALLOWED");
      });

      it("409 FLOATING_LIMIT_EXCEEDED when every seat is leased: audited, and the refused device is not bound", async () => {
        const lic = await floating({ max_floating_users: 1 });
        assert.equal((await checkout(lic.key, { fingerprint: "fp-a" })).status, 200);
        const denied = await checkout(lic.key, { fingerprint: "fp-b" });
        await assertSignedError(denied, 409, "FLOATING_LIMIT_EXCEEDED");
        const ev = await events(lic.licenseId, "floating.limit_exceeded");
        assert.equal(ev.length, 1);
        assert.equal(JSON.parse(ev[0]!.metadata).max_floating_users, 1);
        assert.equal((await deviceRows(lic.licenseId)).length, 1, "only the device holding the seat is bound");
        assert.equal((await events(lic.licenseId, "license.activated")).length, 1);
      });

      it("409 ACTIVATION_LIMIT_EXCEEDED when a new device finds no free activation slot", async () => {
        const lic = await floating({ max_activations: 1 });
        assert.equal((await checkout(lic.key, { fingerprint: "fp-a" })).status, 200);
        await assertSignedError(await checkout(lic.key, { fingerprint: "fp-b" }), 409, "ACTIVATION_LIMIT_EXCEEDED");
      });

      it("422 VALIDATION_ERROR for a container binding without any container identity", async () => {
        const lic = await floating();
        await assertSignedError(await checkout(lic.key, { is_container: true }), 422, "VALIDATION_ERROR");
        await assertSignedError(await checkout(lic.key, { hostname: "no-fingerprint" }), 422, "VALIDATION_ERROR");
      });
    });

    describe("heartbeat (heartbeatFloatingLicense)", () => {
      it("200: extends the lease to now + timeout, answers the signed lease data, writes no event", async () => {
        const lic = await floating();
        const out = await checkout(lic.key, { fingerprint: "fp-hb" });
        const token = out.json.data.lease_token;
        const before = (await h.lk.store.db.selectFrom("audit_events").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow()).n;
        h.clock.advance(10 * MINUTE);
        const res = await heartbeat(lic.key, { lease_token: token });
        await assertSigned(res, "SignedRuntimeFloatingLeaseEnvelope");
        assert.equal(res.json.data.license_id, lic.licenseId);
        assert.equal(res.json.data.device_id, out.json.data.device_id);
        assert.equal(res.json.data.status, "active");
        assert.equal(Date.parse(res.json.data.lease_expires_at), h.clock.now() + 15 * MINUTE);
        assert.equal(res.json.data.lease_token, undefined, "the token is never repeated");
        const [row] = await leaseRows(lic.licenseId);
        assert.equal(row!.expires_at, h.clock.now() + 15 * MINUTE);
        assert.equal(row!.last_heartbeat_at, h.clock.now());
        const afterCount = (await h.lk.store.db.selectFrom("audit_events").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow()).n;
        assert.equal(Number(afterCount), Number(before), "heartbeats are not audit events");
        // Heartbeats keep it alive well past the first timeout.
        h.clock.advance(10 * MINUTE);
        await assertSigned(await heartbeat(lic.key, { lease_token: token }), "SignedRuntimeFloatingLeaseEnvelope");
      });

      it("400 INVALID_JSON for an unknown field or a lease_token that is not a string", async () => {
        const lic = await floating();
        await assertSignedError(await heartbeat(lic.key, { lease_token: UNKNOWN_TOKEN, extra: 1 }), 400, "INVALID_JSON");
        await assertSignedError(await heartbeat(lic.key, { lease_token: 5 }), 400, "INVALID_JSON");
      });

      it("401 without a license key", async () => {
        const res = await h.request({ url: "/api/v1/license/floating/heartbeat", body: { lease_token: UNKNOWN_TOKEN } });
        assert.equal(res.status, 401);
        assert.equal(res.json.error.code, "UNAUTHORIZED");
      });

      it("403 after the license is suspended (LICENSE_INACTIVE), the device blacklisted (DEVICE_BLACKLISTED) or reset (DEVICE_NOT_ACTIVATED)", async () => {
        const lic = await floating({ max_floating_users: 3 });
        const a = await checkout(lic.key, { fingerprint: "fp-a" });
        const b = await checkout(lic.key, { fingerprint: "fp-b" });
        const c = await checkout(lic.key, { fingerprint: "fp-c" });
        const bl = await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/devices/${b.json.data.device_id}/blacklist` });
        assert.equal(bl.status, 200, bl.text);
        await assertSignedError(await heartbeat(lic.key, { lease_token: b.json.data.lease_token }), 403, "DEVICE_BLACKLISTED");
        const reset = await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/devices/${c.json.data.device_id}/reset` });
        assert.equal(reset.status, 200, reset.text);
        await assertSignedError(await heartbeat(lic.key, { lease_token: c.json.data.lease_token }), 403, "DEVICE_NOT_ACTIVATED");
        assert.equal((await h.request({ url: `/api/v1/licenses/${lic.licenseId}/suspend`, method: "POST" })).status, 200);
        await assertSignedError(await heartbeat(lic.key, { lease_token: a.json.data.lease_token }), 403, "LICENSE_INACTIVE");
      });

      it("404 LEASE_NOT_FOUND for an unknown token, another license's token, or a checked-in lease", async () => {
        const lic = await floating();
        const other = await floating();
        await assertSignedError(await heartbeat(lic.key, { lease_token: UNKNOWN_TOKEN }), 404, "LEASE_NOT_FOUND");
        const theirs = await checkout(other.key, { fingerprint: "fp" });
        await assertSignedError(await heartbeat(lic.key, { lease_token: theirs.json.data.lease_token }), 404, "LEASE_NOT_FOUND");
        assert.equal((await checkin(other.key, { lease_token: theirs.json.data.lease_token })).status, 200);
        await assertSignedError(await heartbeat(other.key, { lease_token: theirs.json.data.lease_token }), 404, "LEASE_NOT_FOUND");
      });

      it("409 LEASE_EXPIRED after the timeout; the lease is marked expired and audited once", async () => {
        const lic = await floating();
        const out = await checkout(lic.key, { fingerprint: "fp-late" });
        h.clock.advance(15 * MINUTE); // expires_at <= now: expired
        await assertSignedError(await heartbeat(lic.key, { lease_token: out.json.data.lease_token }), 409, "LEASE_EXPIRED");
        await assertSignedError(await heartbeat(lic.key, { lease_token: out.json.data.lease_token }), 409, "LEASE_EXPIRED");
        assert.equal((await leaseRows(lic.licenseId))[0]!.status, "expired");
        assert.equal((await events(lic.licenseId, "floating.expired")).length, 1);
        await expireFloatingLeases(h.lk.store, h.clock);
        assert.equal((await events(lic.licenseId, "floating.expired")).length, 1, "the job does not audit it again");
      });

      it("422 VALIDATION_ERROR for something that cannot be a lease token, or none at all", async () => {
        const lic = await floating();
        const res = await heartbeat(lic.key, { lease_token: "not-a-token" });
        await assertSignedError(res, 422, "VALIDATION_ERROR");
        assert.match(res.json.error.detail, /field lease_token/);
        await assertSignedError(await heartbeat(lic.key, {}), 422, "VALIDATION_ERROR");
      });
    });

    describe("checkin (checkinFloatingLicense)", () => {
      it("200: ends the lease (seat free at once), signed lease data, one floating.checked_in event", async () => {
        const lic = await floating({ max_floating_users: 1 });
        const out = await checkout(lic.key, { fingerprint: "fp-in" });
        h.clock.advance(MINUTE);
        const res = await checkin(lic.key, { lease_token: out.json.data.lease_token });
        await assertSigned(res, "SignedRuntimeFloatingLeaseEnvelope");
        assert.equal(res.json.data.device_id, out.json.data.device_id);
        assert.equal(res.json.data.lease_expires_at, new Date(h.clock.now()).toISOString(), "the lease ended now");
        const [row] = await leaseRows(lic.licenseId);
        assert.equal(row!.status, "checked_in");
        assert.equal(row!.ended_at, h.clock.now());
        const ev = await events(lic.licenseId, "floating.checked_in");
        assert.equal(ev.length, 1);
        assert.equal(JSON.parse(ev[0]!.metadata).lease_id, row!.id);
        // The seat is free for another device at once.
        await assertSigned(await checkout(lic.key, { fingerprint: "fp-next" }), "SignedRuntimeFloatingCheckoutEnvelope");
      });

      it("a retry with the same key replays; a repeat with a new key is 404 LEASE_NOT_FOUND (the lease is gone)", async () => {
        const lic = await floating();
        const out = await checkout(lic.key, { fingerprint: "fp-twice" });
        const key = idem();
        const first = await checkin(lic.key, { lease_token: out.json.data.lease_token }, key);
        const replay = await checkin(lic.key, { lease_token: out.json.data.lease_token }, key);
        assert.equal(replay.text, first.text);
        assert.equal(replay.headers["idempotent-replayed"], "true");
        await assertSignedError(await checkin(lic.key, { lease_token: out.json.data.lease_token }), 404, "LEASE_NOT_FOUND");
        assert.equal((await events(lic.licenseId, "floating.checked_in")).length, 1);
      });

      it("a suspended license can still give its seat back (checkin has no 403)", async () => {
        const lic = await floating();
        const out = await checkout(lic.key, { fingerprint: "fp-susp" });
        assert.equal((await h.request({ url: `/api/v1/licenses/${lic.licenseId}/suspend`, method: "POST" })).status, 200);
        const res = await checkin(lic.key, { lease_token: out.json.data.lease_token });
        await assertSigned(res, "SignedRuntimeFloatingLeaseEnvelope");
        assert.equal(res.json.data.status, "suspended");
      });

      it("400: IDEMPOTENCY_KEY_REQUIRED without a key, INVALID_JSON for an unknown field", async () => {
        const lic = await floating();
        await assertSignedError(await checkin(lic.key, { lease_token: UNKNOWN_TOKEN }, null), 400, "IDEMPOTENCY_KEY_REQUIRED");
        await assertSignedError(await checkin(lic.key, { lease_token: UNKNOWN_TOKEN, force: true }), 400, "INVALID_JSON");
      });

      it("401 with a license key this server never issued", async () => {
        const res = await checkin("lsk_00000000000000000000000000000000", { lease_token: UNKNOWN_TOKEN });
        assert.equal(res.status, 401);
        assert.equal(res.json.error.code, "UNAUTHORIZED");
      });

      it("404 LEASE_NOT_FOUND for an unknown token", async () => {
        const lic = await floating();
        await assertSignedError(await checkin(lic.key, { lease_token: UNKNOWN_TOKEN }), 404, "LEASE_NOT_FOUND");
      });

      it("409 LEASE_EXPIRED for a lease past its timeout; 409 IDEMPOTENCY_CONFLICT for a key reused with another body", async () => {
        const lic = await floating();
        const out = await checkout(lic.key, { fingerprint: "fp-exp" });
        h.clock.advance(16 * MINUTE);
        await assertSignedError(await checkin(lic.key, { lease_token: out.json.data.lease_token }), 409, "LEASE_EXPIRED");
        assert.equal((await events(lic.licenseId, "floating.checked_in")).length, 0);
        assert.equal((await events(lic.licenseId, "floating.expired")).length, 1);

        const key = idem();
        await checkin(lic.key, { lease_token: UNKNOWN_TOKEN }, key);
        await assertSignedError(await checkin(lic.key, { lease_token: out.json.data.lease_token }, key), 409, "IDEMPOTENCY_CONFLICT");
      });

      it("422 VALIDATION_ERROR for something that cannot be a lease token", async () => {
        const lic = await floating();
        await assertSignedError(await checkin(lic.key, { lease_token: "" }), 422, "VALIDATION_ERROR");
      });
    });

    describe("expiry", () => {
      it("a lease not heartbeated past its timeout frees its seat for the next checkout; its heartbeat then answers LEASE_EXPIRED", async () => {
        const lic = await floating({ max_floating_users: 1, floating_timeout_minutes: 5 });
        const a = await checkout(lic.key, { fingerprint: "fp-a" });
        assert.equal(a.status, 200, a.text);
        await assertSignedError(await checkout(lic.key, { fingerprint: "fp-b" }), 409, "FLOATING_LIMIT_EXCEEDED");
        h.clock.advance(4 * MINUTE);
        await assertSignedError(await checkout(lic.key, { fingerprint: "fp-b" }), 409, "FLOATING_LIMIT_EXCEEDED");
        h.clock.advance(MINUTE + 1);
        // No job has run: the stored row still says active, but an expired lease never counts.
        assert.equal((await leaseRows(lic.licenseId))[0]!.status, "active");
        const b = await checkout(lic.key, { fingerprint: "fp-b" });
        await assertSigned(b, "SignedRuntimeFloatingCheckoutEnvelope");
        await assertSignedError(await heartbeat(lic.key, { lease_token: a.json.data.lease_token }), 409, "LEASE_EXPIRED");
        await assertSigned(await heartbeat(lic.key, { lease_token: b.json.data.lease_token }), "SignedRuntimeFloatingLeaseEnvelope");
      });

      it("the job marks every lease past expires_at as expired with exactly one floating.expired event (actor system), and only once", async () => {
        const lic = await floating({ max_floating_users: 3, floating_timeout_minutes: 5 });
        const outs = [];
        for (const fp of ["j-1", "j-2", "j-3"]) outs.push(await checkout(lic.key, { fingerprint: fp }));
        h.clock.advance(3 * MINUTE);
        await heartbeat(lic.key, { lease_token: outs[2]!.json.data.lease_token }); // lives until +8 min
        h.clock.advance(3 * MINUTE);
        const marked = await expireFloatingLeases(h.lk.store, h.clock);
        assert.ok(marked >= 2);
        const rows = await leaseRows(lic.licenseId);
        assert.deepEqual(
          rows.map((r) => r.status),
          ["expired", "expired", "active"],
        );
        const ev = await events(lic.licenseId, "floating.expired");
        assert.equal(ev.length, 2);
        for (const e of ev) assert.equal(e.actor_type, "system");
        assert.deepEqual(ev.map((e) => JSON.parse(e.metadata).lease_id).sort(), [rows[0]!.id, rows[1]!.id].sort());
        assert.equal(await expireFloatingLeases(h.lk.store, h.clock), 0);
        assert.equal((await events(lic.licenseId, "floating.expired")).length, 2);
        await assertSignedError(await heartbeat(lic.key, { lease_token: outs[0]!.json.data.lease_token }), 409, "LEASE_EXPIRED");
        await assertSignedError(await checkin(lic.key, { lease_token: outs[1]!.json.data.lease_token }), 409, "LEASE_EXPIRED");
        assert.equal((await events(lic.licenseId, "floating.expired")).length, 2);
      });
    });

    it("30 concurrent checkouts from 30 devices over real HTTP against 4 seats → exactly 4 leases", async () => {
      const base = await listen(h);
      const lic = await floating({ max_activations: 30, max_floating_users: 4 });
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => postRuntime(base, "/api/v1/license/floating/checkout", lic.key, { fingerprint: `race-${i}` }, `race-${engine}-${i}`)),
      );
      const ok = results.filter((r) => r.status === 200);
      const denied = results.filter((r) => r.status !== 200);
      assert.equal(ok.length, 4, JSON.stringify(results.map((r) => `${r.status} ${r.json?.error?.code ?? ""}`)));
      assert.equal(denied.length, 26);
      for (const r of ok) assert.equal(await sdkVerify(r.json, keys), true);
      for (const r of denied) {
        assert.equal(r.status, 409, r.text);
        assert.equal(r.json.error.code, "FLOATING_LIMIT_EXCEEDED");
        assert.equal(await sdkVerify(r.json, keys, "error"), true);
      }
      const live = (await leaseRows(lic.licenseId)).filter((l) => l.status === "active" && l.expires_at > h.clock.now());
      assert.equal(live.length, 4);
      assert.equal(new Set(live.map((l) => l.device_id)).size, 4);
      assert.equal((await events(lic.licenseId, "floating.checked_out")).length, 4);
      assert.equal((await events(lic.licenseId, "floating.limit_exceeded")).length, 26);
      assert.equal((await deviceRows(lic.licenseId)).length, 4, "refused checkouts leave no binding");
    });

    describe("management: list and release (listLicenseLeases, releaseLicenseLease)", () => {
      it("lists a license's leases newest first with computed status, a status filter and a cursor; never the token", async () => {
        const lic = await floating({ max_floating_users: 3, floating_timeout_minutes: 5 });
        const a = await checkout(lic.key, { fingerprint: "m-a" });
        const b = await checkout(lic.key, { fingerprint: "m-b" });
        await checkin(lic.key, { lease_token: b.json.data.lease_token });
        h.clock.advance(6 * MINUTE);
        const c = await checkout(lic.key, { fingerprint: "m-c" });
        const list = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/leases` });
        assert.equal(list.status, 200, list.text);
        assert.deepEqual(
          list.json.data.map((l: { status: string }) => l.status),
          ["active", "checked_in", "expired"],
        );
        assert.equal(list.json.page_info.next_cursor, null);
        const first = list.json.data[0];
        assert.deepEqual(Object.keys(first).sort(), ["created_at", "device_id", "expires_at", "id", "license_id", "status", "updated_at"]);
        assert.equal(first.device_id, c.json.data.device_id);
        for (const t of [a, b, c]) assert.ok(!list.text.includes(t.json.data.lease_token));
        assert.ok(!list.text.includes("token"), "neither the token nor its hash");
        assert.ok(list.json.data[2].ended_at, "an expired lease shows when it ended");

        const expired = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/leases?status=expired` });
        assert.deepEqual(
          expired.json.data.map((l: { device_id: string }) => l.device_id),
          [a.json.data.device_id],
        );
        const active = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/leases?status=active` });
        assert.equal(active.json.data.length, 1);

        const page1 = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/leases?limit=2` });
        assert.equal(page1.json.data.length, 2);
        const page2 = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/leases?limit=2&cursor=${page1.json.page_info.next_cursor}` });
        assert.equal(page2.json.data.length, 1);
        assert.equal(page2.json.page_info.next_cursor, null);
      });

      it("list: 404 for an unknown license, 400 INVALID_QUERY for an unknown status", async () => {
        const unknown = await h.request({ url: "/api/v1/licenses/lic_01AAAAAAAAAAAAAAAAAAAAAAAA/leases" });
        assert.equal(unknown.status, 404);
        assert.equal(unknown.json.error.code, "NOT_FOUND");
        const lic = await floating();
        const bad = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/leases?status=gone` });
        assert.equal(bad.status, 400);
        assert.equal(bad.json.error.code, "INVALID_QUERY");
      });

      it("release: 200 frees the seat at once (one floating.released event); the token then answers LEASE_NOT_FOUND; 409 when not active; 404 unknown", async () => {
        const lic = await floating({ max_floating_users: 1 });
        const out = await checkout(lic.key, { fingerprint: "r-a" });
        const [lease] = await leaseRows(lic.licenseId);
        const res = await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/leases/${lease!.id}/release` });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.data.id, lease!.id);
        assert.equal(res.json.data.status, "released");
        assert.equal(res.json.data.ended_at, new Date(h.clock.now()).toISOString());
        assert.ok(!res.text.includes("token"));
        const ev = await events(lic.licenseId, "floating.released");
        assert.equal(ev.length, 1);
        assert.equal(ev[0]!.actor_type, "api_key");
        assert.equal(JSON.parse(ev[0]!.metadata).lease_id, lease!.id);
        await assertSignedError(await heartbeat(lic.key, { lease_token: out.json.data.lease_token }), 404, "LEASE_NOT_FOUND");
        assert.equal((await checkout(lic.key, { fingerprint: "r-b" })).status, 200, "the seat is free");

        const again = await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/leases/${lease!.id}/release` });
        assert.equal(again.status, 409);
        assert.equal(again.json.error.code, "CONFLICT");
        assert.match(again.json.error.detail, /released/);
        assert.equal((await events(lic.licenseId, "floating.released")).length, 1);

        const unknown = await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/leases/lse_01AAAAAAAAAAAAAAAAAAAAAAAA/release` });
        assert.equal(unknown.status, 404);
        assert.equal(unknown.json.error.code, "NOT_FOUND");
        const other = await floating();
        const wrong = await h.request({ method: "POST", url: `/api/v1/licenses/${other.licenseId}/leases/${lease!.id}/release` });
        assert.equal(wrong.status, 404, "a lease of another license is not found");
      });
    });

    it("a lease never outlives its binding: device reset, blacklist, deactivate, transfer with reset_devices and revoke end it and free the seat", async () => {
      const actions: [string, (lic: { licenseId: string; key: string }, deviceId: string) => Promise<Reply>][] = [
        ["reset", (lic, d) => h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/devices/${d}/reset` })],
        ["blacklist", (lic, d) => h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/devices/${d}/blacklist` })],
        ["deactivate", (lic) => h.request({ url: "/api/v1/license/deactivate", licenseKey: lic.key, body: { fingerprint: "holder" }, idempotencyKey: idem() })],
        ["transfer", (lic) => h.request({ url: `/api/v1/licenses/${lic.licenseId}/transfer`, body: { reset_devices: true }, idempotencyKey: idem() })],
        ["revoke", (lic) => h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/revoke` })],
      ];
      for (const [name, act] of actions) {
        const lic = await floating({ max_floating_users: 1 });
        const co = await checkout(lic.key, { fingerprint: "holder" });
        assert.equal(co.status, 200, co.text);
        const deviceId = co.json.data.device_id;
        const res = await act(lic, deviceId);
        assert.equal(res.status, 200, `${name}: ${res.text}`);
        const rows = await leaseRows(lic.licenseId);
        assert.deepEqual(
          rows.map((r) => r.status),
          ["released"],
          `${name} ends the lease`,
        );
        if (name !== "revoke" && name !== "blacklist") {
          const next = await checkout(lic.key, { fingerprint: "other" });
          assert.equal(next.status, 200, `${name}: the seat is free for another device: ${next.text}`);
        }
        const hb = await heartbeat(lic.key, { lease_token: co.json.data.lease_token });
        assert.notEqual(hb.status, 200, `${name}: the old token no longer extends anything`);
      }
    });
  });
}
