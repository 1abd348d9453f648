// D2 (runtime decision order), D7 (runtime events and batched stamps), D11 and D13 (license dates) as a
// client sees them: the HTTP status, error.code and body fields of each answer, and what is (or is not)
// in the database afterwards. Time moves only through the injected ManualClock; nothing sleeps.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DAY_MS, MINUTE_MS } from "../src/clock.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";
import { type PublicKeyEntry, sdkVerify } from "./helpers/verify.js";

const iso = (ms: number) => new Date(ms).toISOString();

for (const engine of ENGINES) {
  describe(`runtime decisions as a client sees them [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => h?.close());

    // The clock is shared by every test in this block and only ever moves forward; each test
    // computes its dates from h.clock.now() so the order of tests does not matter.
    const runtime = (op: "activate" | "validate" | "check", key: string, body: Record<string, unknown>, idempotencyKey?: string) =>
      h.request({ url: `/api/v1/license/${op}`, licenseKey: key, body, ...(idempotencyKey ? { idempotencyKey } : {}) });
    let idem = 0;
    const activate = (key: string, body: Record<string, unknown>) => runtime("activate", key, body, `rd-${engine}-${++idem}`);
    const validate = (key: string, body: Record<string, unknown>) => runtime("validate", key, body);
    const check = (key: string, body: Record<string, unknown>) => runtime("check", key, body);
    const lifecycle = (id: string, action: "suspend" | "reinstate" | "revoke") => h.request({ method: "POST", url: `/api/v1/licenses/${id}/${action}` });
    const getLicense = (id: string) => h.request({ url: `/api/v1/licenses/${id}` });
    const keys = async (): Promise<PublicKeyEntry[]> => (await h.request({ url: "/api/v1/system/public-keys", token: null })).json.data;
    const devices = (licenseId: string) => h.lk.store.db.selectFrom("devices").selectAll().where("license_id", "=", licenseId).orderBy("id").execute();
    const licenseRow = (licenseId: string) => h.lk.store.db.selectFrom("licenses").selectAll().where("id", "=", licenseId).executeTakeFirstOrThrow();
    const events = (licenseId: string, type?: string) => {
      let q = h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", licenseId);
      if (type) q = q.where("event_type", "=", type);
      return q.orderBy("sequence").execute();
    };
    const createLicense = (body: Record<string, unknown>) => h.request({ url: "/api/v1/licenses", body });
    const licenseIdsOf = async (productId: string) =>
      (await h.lk.store.db.selectFrom("licenses").select("id").where("product_id", "=", productId).execute()).map((r) => r.id);

    /** A 403/409 runtime denial with this code, whose signed error envelope verifies. */
    // biome-ignore lint/suspicious/noExplicitAny: parsed response bodies
    const assertDenied = async (res: { status: number; json: any; text: string }, status: number, code: string) => {
      assert.equal(res.status, status, res.text);
      assert.equal(res.json.error.code, code, res.text);
      assert.equal(typeof res.json.error.message, "string");
      assert.equal(res.json.data, undefined);
      assert.equal(await sdkVerify(res.json, await keys(), "error"), true, "a runtime denial carries a verifiable signature");
    };

    describe("step 2: suspended, revoked, not yet started → LICENSE_INACTIVE", () => {
      it("a suspended license is refused on validate, check and activate; reinstating it makes it work again", async () => {
        const lic = await issueLicense(h, { max_activations: 3 });
        const first = await activate(lic.key, { fingerprint: "susp-a" });
        assert.equal(first.status, 200, first.text);

        const s = await lifecycle(lic.licenseId, "suspend");
        assert.equal(s.status, 200, s.text);
        assert.equal(s.json.data.status, "suspended");
        assert.equal((await getLicense(lic.licenseId)).json.data.status, "suspended");

        await assertDenied(await validate(lic.key, { fingerprint: "susp-a" }), 403, "LICENSE_INACTIVE");
        await assertDenied(await check(lic.key, { fingerprint: "susp-a" }), 403, "LICENSE_INACTIVE");
        await assertDenied(await activate(lic.key, { fingerprint: "susp-b" }), 403, "LICENSE_INACTIVE");
        await assertDenied(await validate(lic.key, { fingerprint: "susp-c" }), 403, "LICENSE_INACTIVE");
        // Nothing was bound while suspended; the seat of the existing device is kept.
        const rows = await devices(lic.licenseId);
        assert.deepEqual(
          rows.map((d) => [d.fingerprint, d.status]),
          [["susp-a", "active"]],
        );
        assert.equal((await getLicense(lic.licenseId)).json.data.active_device_count, 1);

        const r = await lifecycle(lic.licenseId, "reinstate");
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.data.status, "active");
        const again = await validate(lic.key, { fingerprint: "susp-a" });
        assert.equal(again.status, 200, again.text);
        assert.equal(again.json.data.status, "active");
        assert.equal(again.json.data.device_id, first.json.data.device_id);
        assert.equal(await sdkVerify(again.json, await keys()), true);
        assert.equal((await activate(lic.key, { fingerprint: "susp-b" })).status, 200);
        assert.equal((await getLicense(lic.licenseId)).json.data.active_device_count, 2);
      });

      it("a revoked license is LICENSE_INACTIVE and revoking released its seats", async () => {
        const lic = await issueLicense(h, { max_activations: 3 });
        assert.equal((await activate(lic.key, { fingerprint: "rev-a" })).status, 200);
        assert.equal((await validate(lic.key, { fingerprint: "rev-b" })).status, 200);
        assert.equal((await getLicense(lic.licenseId)).json.data.active_device_count, 2);

        const r = await lifecycle(lic.licenseId, "revoke");
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.data.status, "revoked");
        assert.equal(r.json.data.active_device_count, 0);
        const got = (await getLicense(lic.licenseId)).json.data;
        assert.equal(got.status, "revoked");
        assert.equal(got.active_device_count, 0);
        assert.equal(got.times_activated, 2, "history is kept");
        assert.equal((await licenseRow(lic.licenseId)).active_device_count, 0);
        const rows = await devices(lic.licenseId);
        assert.equal(rows.length, 2);
        for (const d of rows) assert.equal(d.status, "deactivated");
        const revoked = await events(lic.licenseId, "license.revoked");
        assert.equal(revoked.length, 1);
        assert.equal(JSON.parse(revoked[0]!.metadata).released_devices, 2);

        await assertDenied(await validate(lic.key, { fingerprint: "rev-a" }), 403, "LICENSE_INACTIVE");
        await assertDenied(await check(lic.key, { fingerprint: "rev-a" }), 403, "LICENSE_INACTIVE");
        await assertDenied(await activate(lic.key, { fingerprint: "rev-c" }), 403, "LICENSE_INACTIVE");
        // No runtime call brought a seat back.
        assert.equal((await devices(lic.licenseId)).filter((d) => d.status === "active").length, 0);
        assert.equal((await getLicense(lic.licenseId)).json.data.active_device_count, 0);
        // Revocation is permanent.
        const back = await lifecycle(lic.licenseId, "reinstate");
        assert.equal(back.status, 409);
        assert.equal(back.json.error.code, "CONFLICT");
      });

      it("a license whose starts_at is in the future is LICENSE_INACTIVE until the clock reaches it", async () => {
        const startsAt = h.clock.now() + 2 * DAY_MS;
        const lic = await issueLicense(h, { max_activations: 2 }, { starts_at: iso(startsAt) });
        assert.equal((await getLicense(lic.licenseId)).json.data.starts_at, iso(startsAt));

        const early = await validate(lic.key, { fingerprint: "nys-a" });
        await assertDenied(early, 403, "LICENSE_INACTIVE");
        assert.match(early.json.error.detail, /start/);
        await assertDenied(await activate(lic.key, { fingerprint: "nys-a" }), 403, "LICENSE_INACTIVE");
        await assertDenied(await check(lic.key, { fingerprint: "nys-a" }), 403, "LICENSE_INACTIVE");

        h.clock.set(startsAt - 1);
        await assertDenied(await validate(lic.key, { fingerprint: "nys-a" }), 403, "LICENSE_INACTIVE");
        assert.equal((await devices(lic.licenseId)).length, 0, "nothing is bound before the start");
        assert.equal((await getLicense(lic.licenseId)).json.data.active_device_count, 0);

        h.clock.set(startsAt);
        const ok = await validate(lic.key, { fingerprint: "nys-a" });
        assert.equal(ok.status, 200, ok.text);
        assert.equal(ok.json.data.status, "active");
        assert.equal(await sdkVerify(ok.json, await keys()), true);
        h.clock.advance(MINUTE_MS);
        assert.equal((await activate(lic.key, { fingerprint: "nys-b" })).status, 200);
        assert.equal((await getLicense(lic.licenseId)).json.data.active_device_count, 2);
      });
    });

    describe("step 3: expiry and grace", () => {
      it("past expires_at without grace days → 403 LICENSE_EXPIRED, and the license shows status expired", async () => {
        const expiresAt = h.clock.now() + 5 * DAY_MS;
        const lic = await issueLicense(h, { max_activations: 2 }, { expires_at: iso(expiresAt) });
        const bound = await validate(lic.key, { fingerprint: "exp-a" });
        assert.equal(bound.status, 200, bound.text);
        assert.equal(bound.json.data.status, "active");
        assert.equal(bound.json.data.expires_at, iso(expiresAt));

        h.clock.set(expiresAt - 1);
        assert.equal((await validate(lic.key, { fingerprint: "exp-a" })).status, 200);
        assert.equal((await getLicense(lic.licenseId)).json.data.status, "active");

        h.clock.set(expiresAt + 60 * MINUTE_MS);
        const denied = await validate(lic.key, { fingerprint: "exp-a" });
        await assertDenied(denied, 403, "LICENSE_EXPIRED");
        assert.match(denied.json.error.detail, /expired/);
        await assertDenied(await check(lic.key, { fingerprint: "exp-a" }), 403, "LICENSE_EXPIRED");
        await assertDenied(await activate(lic.key, { fingerprint: "exp-b" }), 403, "LICENSE_EXPIRED");
        await assertDenied(await validate(lic.key, { fingerprint: "exp-c" }), 403, "LICENSE_EXPIRED");
        const got = (await getLicense(lic.licenseId)).json.data;
        assert.equal(got.status, "expired");
        assert.equal(got.expires_at, iso(expiresAt));
        assert.equal(got.active_device_count, 1, "an expired license binds nothing new");
        assert.equal((await devices(lic.licenseId)).length, 1);
        // The stored state is unchanged; "expired" is computed from the clock.
        assert.equal((await licenseRow(lic.licenseId)).state, "active");
        const listed = await h.request({ url: `/api/v1/licenses?status=expired&product_id=${lic.productId}` });
        assert.deepEqual(
          listed.json.data.map((l: { id: string }) => l.id),
          [lic.licenseId],
        );
      });

      it("with grace_period_days 3: one day past expiry succeeds as grace_period; four days past is LICENSE_EXPIRED", async () => {
        const expiresAt = h.clock.now() + 10 * DAY_MS;
        const lic = await issueLicense(h, { grace_period_days: 3, max_activations: 2 }, { expires_at: iso(expiresAt) });
        const bound = await activate(lic.key, { fingerprint: "gr-a" });
        assert.equal(bound.status, 200, bound.text);
        assert.equal(bound.json.data.status, "active");

        h.clock.set(expiresAt + DAY_MS);
        const inGrace = await validate(lic.key, { fingerprint: "gr-a" });
        assert.equal(inGrace.status, 200, inGrace.text);
        assert.equal(inGrace.json.data.status, "grace_period");
        assert.equal(inGrace.json.data.license_id, lic.licenseId);
        assert.equal(inGrace.json.data.device_id, bound.json.data.device_id);
        assert.equal(inGrace.json.data.expires_at, iso(expiresAt));
        assert.equal(await sdkVerify(inGrace.json, await keys()), true);
        const checked = await check(lic.key, { fingerprint: "gr-a" });
        assert.equal(checked.status, 200, checked.text);
        assert.equal(checked.json.data.status, "grace_period");
        assert.equal(await sdkVerify(checked.json, await keys()), true);
        // A new device may still bind during grace (validate binds implicitly).
        const second = await validate(lic.key, { fingerprint: "gr-b" });
        assert.equal(second.status, 200, second.text);
        assert.equal(second.json.data.status, "grace_period");

        const got = await getLicense(lic.licenseId);
        assert.equal(got.json.data.status, "grace_period");
        const grace = await h.request({ url: `/api/v1/licenses?status=grace_period&product_id=${lic.productId}` });
        assert.equal(grace.status, 200, grace.text);
        assert.deepEqual(
          grace.json.data.map((l: { id: string; status: string }) => [l.id, l.status]),
          [[lic.licenseId, "grace_period"]],
        );
        const active = await h.request({ url: `/api/v1/licenses?status=active&product_id=${lic.productId}` });
        assert.equal(active.status, 200, active.text);
        assert.deepEqual(active.json.data, []);
        const unfiltered = await h.request({ url: `/api/v1/licenses?product_id=${lic.productId}` });
        assert.equal(unfiltered.json.data[0].status, "grace_period");

        h.clock.set(expiresAt + 4 * DAY_MS);
        await assertDenied(await validate(lic.key, { fingerprint: "gr-a" }), 403, "LICENSE_EXPIRED");
        await assertDenied(await check(lic.key, { fingerprint: "gr-a" }), 403, "LICENSE_EXPIRED");
        assert.equal((await getLicense(lic.licenseId)).json.data.status, "expired");
        assert.deepEqual((await h.request({ url: `/api/v1/licenses?status=grace_period&product_id=${lic.productId}` })).json.data, []);
        assert.equal((await h.request({ url: `/api/v1/licenses?status=expired&product_id=${lic.productId}` })).json.data.length, 1);
      });

      it("step 2 comes before step 3: a suspended (or revoked) license that has also expired is LICENSE_INACTIVE", async () => {
        const expiresAt = h.clock.now() + DAY_MS;
        const suspended = await issueLicense(h, { max_activations: 1 }, { expires_at: iso(expiresAt) });
        const revoked = await issueLicense(h, { max_activations: 1 }, { expires_at: iso(expiresAt) });
        assert.equal((await activate(suspended.key, { fingerprint: "ord-a" })).status, 200);
        assert.equal((await activate(revoked.key, { fingerprint: "ord-a" })).status, 200);
        assert.equal((await lifecycle(suspended.licenseId, "suspend")).status, 200);
        assert.equal((await lifecycle(revoked.licenseId, "revoke")).status, 200);
        h.clock.set(expiresAt + 2 * DAY_MS);
        await assertDenied(await validate(suspended.key, { fingerprint: "ord-a" }), 403, "LICENSE_INACTIVE");
        await assertDenied(await check(suspended.key, { fingerprint: "ord-a" }), 403, "LICENSE_INACTIVE");
        await assertDenied(await validate(revoked.key, { fingerprint: "ord-a" }), 403, "LICENSE_INACTIVE");
        // Shown status follows the stored state first.
        assert.equal((await getLicense(suspended.licenseId)).json.data.status, "suspended");
        assert.equal((await getLicense(revoked.licenseId)).json.data.status, "revoked");
        // Once reinstated, the expiry decides.
        assert.equal((await lifecycle(suspended.licenseId, "reinstate")).status, 200);
        await assertDenied(await validate(suspended.key, { fingerprint: "ord-a" }), 403, "LICENSE_EXPIRED");
      });

      it("step 3 comes before step 5: an expired license refuses a VM with LICENSE_EXPIRED, an inactive one with LICENSE_INACTIVE", async () => {
        const expiresAt = h.clock.now() + DAY_MS;
        const lic = await issueLicense(h, { allow_vm: false, allow_container: false, max_activations: 1 }, { expires_at: iso(expiresAt) });
        await assertDenied(await validate(lic.key, { fingerprint: "vm-order", is_vm: true }), 403, "VM_NOT_ALLOWED");
        h.clock.set(expiresAt + MINUTE_MS);
        await assertDenied(await validate(lic.key, { fingerprint: "vm-order", is_vm: true }), 403, "LICENSE_EXPIRED");
        await assertDenied(await validate(lic.key, { is_container: true, pod_name: "p" }), 403, "LICENSE_EXPIRED");
        assert.equal((await lifecycle(lic.licenseId, "suspend")).status, 200);
        await assertDenied(await validate(lic.key, { fingerprint: "vm-order", is_vm: true }), 403, "LICENSE_INACTIVE");
      });
    });

    describe("step 5: VM and container rules", () => {
      it("policy allow_vm false: is_vm true → 403 VM_NOT_ALLOWED and nothing is bound; is_vm false binds", async () => {
        const lic = await issueLicense(h, { allow_vm: false, max_activations: 3 });
        const v = await validate(lic.key, { fingerprint: "vm-1", is_vm: true });
        await assertDenied(v, 403, "VM_NOT_ALLOWED");
        await assertDenied(await activate(lic.key, { fingerprint: "vm-2", is_vm: true }), 403, "VM_NOT_ALLOWED");
        assert.equal((await devices(lic.licenseId)).length, 0);
        assert.equal((await getLicense(lic.licenseId)).json.data.active_device_count, 0);
        const phys = await validate(lic.key, { fingerprint: "phys-1", is_vm: false });
        assert.equal(phys.status, 200, phys.text);
        // A bound physical device that later reports is_vm is refused too.
        await assertDenied(await validate(lic.key, { fingerprint: "phys-1", is_vm: true }), 403, "VM_NOT_ALLOWED");
        await assertDenied(await check(lic.key, { fingerprint: "phys-1", is_vm: true }), 403, "VM_NOT_ALLOWED");

        // The default policy allows VMs (D11).
        const dflt = await issueLicense(h, {});
        const ok = await validate(dflt.key, { fingerprint: "vm-ok", is_vm: true });
        assert.equal(ok.status, 200, ok.text);
        assert.equal((await devices(dflt.licenseId))[0]!.is_vm, 1);
      });

      it("policy allow_container false: a container binding → 403 CONTAINER_NOT_ALLOWED and nothing is bound", async () => {
        const lic = await issueLicense(h, { allow_container: false, max_activations: 3 });
        await assertDenied(await validate(lic.key, { is_container: true, pod_name: "web-1" }), 403, "CONTAINER_NOT_ALLOWED");
        await assertDenied(await activate(lic.key, { is_container: true, pod_name: "web-1" }), 403, "CONTAINER_NOT_ALLOWED");
        await assertDenied(
          await activate(lic.key, { is_container: true, cluster_id: "c1", namespace: "prod", container_id: "abc" }),
          403,
          "CONTAINER_NOT_ALLOWED",
        );
        assert.equal((await devices(lic.licenseId)).length, 0);
        // Hardware bindings on the same policy work.
        assert.equal((await validate(lic.key, { fingerprint: "hw-1" })).status, 200);

        const dflt = await issueLicense(h, {});
        const ok = await activate(dflt.key, { is_container: true, namespace: "prod", pod_name: "web-1" });
        assert.equal(ok.status, 200, ok.text);
        const row = (await devices(dflt.licenseId))[0]!;
        assert.equal(row.binding_kind, "container");
        assert.equal(row.is_container, 1);
        assert.equal(row.pod_name, "web-1");
      });

      it("a container binding without any container id → 422 VALIDATION_ERROR naming the field", async () => {
        const lic = await issueLicense(h, { max_activations: 3 });
        for (const body of [{ is_container: true }, { is_container: true, fingerprint: "fp" }, { is_container: true, pod_name: "  ", namespace: "" }]) {
          for (const op of ["activate", "validate", "check"] as const) {
            const res = op === "activate" ? await activate(lic.key, body) : await runtime(op, lic.key, body);
            assert.equal(res.status, 422, `${op} ${JSON.stringify(body)}: ${res.text}`);
            assert.equal(res.json.error.code, "VALIDATION_ERROR");
            assert.match(res.json.error.detail, /container_id|cluster_id|namespace|pod_name/);
          }
        }
        assert.equal((await devices(lic.licenseId)).length, 0);
      });
    });

    describe("step 7 and binding", () => {
      it("validate on a new fingerprint binds it implicitly: seat counted, license.activated event marked implicit, fingerprint not in the event", async () => {
        const lic = await issueLicense(h, { max_activations: 2 });
        const raw = "raw-FP-9f8e7d6c5b4a-secret";
        assert.equal((await getLicense(lic.licenseId)).json.data.active_device_count, 0);
        const res = await validate(lic.key, { fingerprint: raw, hostname: "build-01", app_version: "1.2.3" });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.data.status, "active");
        assert.equal(await sdkVerify(res.json, await keys()), true);

        const got = (await getLicense(lic.licenseId)).json.data;
        assert.equal(got.active_device_count, 1);
        assert.equal(got.times_activated, 1);
        const rows = await devices(lic.licenseId);
        assert.equal(rows.length, 1);
        assert.equal(rows[0]!.id, res.json.data.device_id);
        assert.equal(rows[0]!.status, "active");
        assert.equal(rows[0]!.binding_kind, "hardware");
        assert.equal(rows[0]!.hostname, "build-01");
        assert.equal(rows[0]!.last_validated_at, h.clock.now(), "the binding validate is itself a validation");

        const activated = await events(lic.licenseId, "license.activated");
        assert.equal(activated.length, 1);
        const ev = activated[0]!;
        const meta = JSON.parse(ev.metadata);
        assert.equal(meta.implicit, true);
        assert.equal(meta.device_id, res.json.data.device_id);
        assert.equal(ev.actor_type, "license");
        assert.equal(ev.metadata.includes(raw), false, "the raw fingerprint must not appear in event metadata");
        assert.equal(ev.metadata.toLowerCase().includes("9f8e7d6c5b4a"), false);
        assert.equal(ev.metadata.includes(lic.key.slice(4)), false, "no license key in event metadata");

        // Validating the same fingerprint again uses the existing seat: no new row, no new event.
        const again = await validate(lic.key, { fingerprint: raw });
        assert.equal(again.status, 200);
        assert.equal(again.json.data.device_id, res.json.data.device_id);
        assert.equal((await getLicense(lic.licenseId)).json.data.active_device_count, 1);
        assert.equal((await events(lic.licenseId, "license.activated")).length, 1);

        // Explicit activation is recorded as not implicit.
        const explicit = await activate(lic.key, { fingerprint: "explicit-fp" });
        assert.equal(explicit.status, 200);
        const all = await events(lic.licenseId, "license.activated");
        assert.equal(all.length, 2);
        assert.equal(JSON.parse(all[1]!.metadata).implicit, false);
      });

      it("validate with no free slot → 409 ACTIVATION_LIMIT_EXCEEDED and a license.activation_limit_exceeded event", async () => {
        const lic = await issueLicense(h, { max_activations: 1 });
        assert.equal((await validate(lic.key, { fingerprint: "slot-1" })).status, 200);
        const raw = "slot-2-raw-fingerprint";
        const denied = await validate(lic.key, { fingerprint: raw });
        await assertDenied(denied, 409, "ACTIVATION_LIMIT_EXCEEDED");

        const got = (await getLicense(lic.licenseId)).json.data;
        assert.equal(got.active_device_count, 1);
        assert.equal(got.times_activated, 1);
        const rows = await devices(lic.licenseId);
        assert.deepEqual(
          rows.map((d) => d.fingerprint),
          ["slot-1"],
        );
        const exceeded = await events(lic.licenseId, "license.activation_limit_exceeded");
        assert.equal(exceeded.length, 1);
        const meta = JSON.parse(exceeded[0]!.metadata);
        assert.equal(meta.implicit, true);
        assert.equal(meta.max_activations, 1);
        assert.equal(exceeded[0]!.metadata.includes(raw), false);

        // Explicit activation is refused the same way.
        await assertDenied(await activate(lic.key, { fingerprint: raw }), 409, "ACTIVATION_LIMIT_EXCEEDED");
        assert.equal((await events(lic.licenseId, "license.activation_limit_exceeded")).length, 2);
        // The bound device keeps working.
        assert.equal((await validate(lic.key, { fingerprint: "slot-1" })).status, 200);
      });

      it("check never writes: an unbound fingerprint → 403 DEVICE_NOT_ACTIVATED and no device row", async () => {
        const lic = await issueLicense(h, { max_activations: 2 });
        const before = await licenseRow(lic.licenseId);
        const res = await check(lic.key, { fingerprint: "never-bound" });
        await assertDenied(res, 403, "DEVICE_NOT_ACTIVATED");
        await h.lk.sideEffects.flush();
        assert.equal((await devices(lic.licenseId)).length, 0);
        assert.deepEqual(await licenseRow(lic.licenseId), before);
        assert.equal((await events(lic.licenseId, "license.activated")).length, 0);
        // A later validate on the same fingerprint still has both slots.
        assert.equal((await validate(lic.key, { fingerprint: "never-bound" })).status, 200);
        assert.equal((await validate(lic.key, { fingerprint: "second" })).status, 200);
      });

      it("check on a bound device → 200 and leaves devices.last_validated_at alone, even after the batched flush", async () => {
        const lic = await issueLicense(h, { max_activations: 1 });
        assert.equal((await activate(lic.key, { fingerprint: "chk-bound" })).status, 200);
        h.clock.advance(MINUTE_MS);
        const validatedAt = h.clock.now();
        assert.equal((await validate(lic.key, { fingerprint: "chk-bound" })).status, 200);
        await h.lk.sideEffects.flush();
        const before = (await devices(lic.licenseId))[0]!;
        assert.equal(before.last_validated_at, validatedAt);
        const licBefore = await licenseRow(lic.licenseId);

        h.clock.advance(10 * MINUTE_MS);
        const res = await check(lic.key, { fingerprint: "chk-bound" });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.data.device_id, before.id);
        assert.equal(res.json.data.status, "active");
        assert.equal(res.json.data.issued_at, iso(h.clock.now()), "check returns a fresh entitlement");
        assert.equal(await sdkVerify(res.json, await keys()), true);
        await h.lk.sideEffects.flush();
        const after = (await devices(lic.licenseId))[0]!;
        assert.equal(after.last_validated_at, validatedAt);
        assert.equal(after.status, "active");
        assert.deepEqual(await licenseRow(lic.licenseId), licBefore);
      });

      it("validate on a bound device writes nothing itself: last_validated_at changes only with the batched flush", async () => {
        const lic = await issueLicense(h, { max_activations: 1 });
        const act = await activate(lic.key, { fingerprint: "stamp-fp" });
        assert.equal(act.status, 200);
        const deviceBefore = (await devices(lic.licenseId))[0]!;
        assert.equal(deviceBefore.last_validated_at, null, "an explicit activation is not a validation");
        const licBefore = await licenseRow(lic.licenseId);
        const eventsBefore = (await events(lic.licenseId)).length;

        h.clock.advance(5 * MINUTE_MS);
        const at = h.clock.now();
        const res = await validate(lic.key, { fingerprint: "stamp-fp" });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.data.device_id, deviceBefore.id);
        // The hot path wrote nothing.
        assert.deepEqual((await devices(lic.licenseId))[0], deviceBefore);
        assert.deepEqual(await licenseRow(lic.licenseId), licBefore);
        assert.equal((await events(lic.licenseId)).length, eventsBefore, "a successful validate is not an audit event");

        await h.lk.sideEffects.flush();
        const stamped = (await devices(lic.licenseId))[0]!;
        assert.equal(stamped.last_validated_at, at);
        assert.equal(stamped.last_seen_at, at);
        assert.equal((await events(lic.licenseId)).length, eventsBefore);

        // An older stamp never overwrites a newer one.
        h.clock.advance(MINUTE_MS);
        const later = h.clock.now();
        assert.equal((await validate(lic.key, { fingerprint: "stamp-fp" })).status, 200);
        await h.lk.sideEffects.flush();
        assert.equal((await devices(lic.licenseId))[0]!.last_validated_at, later);
      });
    });

    describe("license dates (D13)", () => {
      it("a subscription license without expires_at on a policy with duration_days 30 expires 30 days after creation", async () => {
        const now = h.clock.now();
        const lic = await issueLicense(h, { license_type: "subscription", duration_days: 30 });
        const got = (await getLicense(lic.licenseId)).json.data;
        assert.equal(got.expires_at, iso(now + 30 * DAY_MS));
        assert.equal(Date.parse(got.expires_at) - Date.parse(got.created_at), 30 * DAY_MS);
        assert.equal((await licenseRow(lic.licenseId)).expires_at, now + 30 * DAY_MS);
        const res = await validate(lic.key, { fingerprint: "d13" });
        assert.equal(res.status, 200);
        assert.equal(res.json.data.expires_at, iso(now + 30 * DAY_MS));

        // With starts_at, the duration counts from the start.
        const startsAt = now + 3 * DAY_MS;
        const policy = await h.request({ url: `/api/v1/policies/${lic.policyId}` });
        assert.equal(policy.json.data.duration_days, 30);
        const later = await createLicense({ product_id: lic.productId, policy_id: lic.policyId, starts_at: iso(startsAt) });
        assert.equal(later.status, 201, later.text);
        assert.equal(later.json.data.license.expires_at, iso(startsAt + 30 * DAY_MS));

        // An explicit expires_at wins over duration_days.
        const explicit = await createLicense({ product_id: lic.productId, policy_id: lic.policyId, expires_at: iso(now + 7 * DAY_MS) });
        assert.equal(explicit.status, 201, explicit.text);
        assert.equal(explicit.json.data.license.expires_at, iso(now + 7 * DAY_MS));

        // And it really expires then.
        h.clock.set(now + 30 * DAY_MS);
        await assertDenied(await validate(lic.key, { fingerprint: "d13" }), 403, "LICENSE_EXPIRED");
      });

      it("without duration_days a subscription license created without expires_at has no expiry", async () => {
        const lic = await issueLicense(h, { license_type: "subscription" });
        const got = (await getLicense(lic.licenseId)).json.data;
        assert.equal(got.status, "active");
        assert.equal("expires_at" in got, false, JSON.stringify(got));
        assert.equal((await licenseRow(lic.licenseId)).expires_at, null);
        const res = await validate(lic.key, { fingerprint: "no-exp" });
        assert.equal(res.status, 200, res.text);
        assert.equal("expires_at" in res.json.data, false);
        h.clock.advance(400 * DAY_MS);
        assert.equal((await validate(lic.key, { fingerprint: "no-exp" })).status, 200);
      });

      it("maintenance_expires_at on a non-perpetual license → 422 VALIDATION_ERROR; accepted on a perpetual one", async () => {
        const sub = await issueLicense(h, { license_type: "subscription" });
        const before = await licenseIdsOf(sub.productId);
        const maint = iso(h.clock.now() + 365 * DAY_MS);
        const res = await createLicense({ product_id: sub.productId, policy_id: sub.policyId, maintenance_expires_at: maint });
        assert.equal(res.status, 422, res.text);
        assert.equal(res.json.error.code, "VALIDATION_ERROR");
        assert.match(res.json.error.detail, /maintenance_expires_at/);
        assert.deepEqual(await licenseIdsOf(sub.productId), before, "no license was created");

        for (const type of ["time_limited", "trial", "consumption"]) {
          const other = await issueLicense(h, { license_type: type });
          const r = await createLicense({ product_id: other.productId, policy_id: other.policyId, maintenance_expires_at: maint });
          assert.equal(r.status, 422, `${type}: ${r.text}`);
          assert.equal(r.json.error.code, "VALIDATION_ERROR");
        }

        const perpetual = await issueLicense(h, { license_type: "perpetual" }, { maintenance_expires_at: maint });
        const got = (await getLicense(perpetual.licenseId)).json.data;
        assert.equal(got.maintenance_expires_at, maint);
        assert.equal("expires_at" in got, false);
      });

      it("expires_at in the past (or now) → 422 VALIDATION_ERROR naming expires_at", async () => {
        const lic = await issueLicense(h, { license_type: "subscription" });
        const before = await licenseIdsOf(lic.productId);
        for (const at of [h.clock.now() - DAY_MS, h.clock.now() - 1, h.clock.now()]) {
          const res = await createLicense({ product_id: lic.productId, policy_id: lic.policyId, expires_at: iso(at) });
          assert.equal(res.status, 422, res.text);
          assert.equal(res.json.error.code, "VALIDATION_ERROR");
          assert.match(res.json.error.detail, /expires_at/);
        }
        assert.deepEqual(await licenseIdsOf(lic.productId), before, "no license was created");
        const ok = await createLicense({ product_id: lic.productId, policy_id: lic.policyId, expires_at: iso(h.clock.now() + 1000) });
        assert.equal(ok.status, 201, ok.text);
      });
    });

    describe("credentials", () => {
      it("a license key typed in lower case with hyphens still authenticates", async () => {
        const lic = await issueLicense(h, { max_activations: 1 });
        const body = lic.key.slice(4).toLowerCase();
        const typed = `lsk_${body.slice(0, 4)}-${body.slice(4, 8)}-${body.slice(8, 16)}-${body.slice(16, 24)}-${body.slice(24)}`;
        const res = await validate(typed, { fingerprint: "typed" });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.data.license_id, lic.licenseId);
        // Upper-case prefix and Crockford look-alikes (O for 0, l for 1) are folded too.
        const lookalike = `LSK_${body.replace(/0/g, "o").replace(/1/g, "l")}`;
        const res2 = await check(lookalike, { fingerprint: "typed" });
        assert.equal(res2.status, 200, res2.text);
        assert.equal(res2.json.data.license_id, lic.licenseId);
        // A different key is still refused.
        const last = lic.key.at(-1) === "0" ? "1" : "0";
        const wrong = await validate(`${lic.key.slice(0, -1)}${last}`, { fingerprint: "typed" });
        assert.equal(wrong.status, 401);
        assert.equal(wrong.json.error.code, "UNAUTHORIZED");
      });
    });
  });
}
