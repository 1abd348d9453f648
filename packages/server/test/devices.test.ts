// Device management (NOTES §12): list and get a license's devices, reset (releases the seat; the
// device may activate again) and blacklist (releases the seat; the runtime answers
// DEVICE_BLACKLISTED from then on). Each write bumps the license's entitlement_version and leaves
// exactly one device.* event.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { insertApiKey } from "../src/store/api-keys.js";
import { assertContract, assertOperationResponse } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";

const DEVICE_WRITER = "lkm_DeviceWriteOnlyToken000000000000000000000";
const UNKNOWN_DEVICE = "dev_01AAAAAAAAAAAAAAAAAAAAAAAA";

for (const engine of ENGINES) {
  describe(`devices [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
      await insertApiKey(h.lk.store.db, h.lk.hasher, { name: "devices", token: DEVICE_WRITER, scopes: ["device:write"] }, h.clock.now());
    });
    after(async () => h?.close());

    let n = 0;
    const runtime = (op: "activate" | "validate", licenseKey: string, body: Record<string, unknown>) =>
      h.request({ url: `/api/v1/license/${op}`, licenseKey, body, ...(op === "activate" ? { idempotencyKey: `dv-${engine}-${++n}` } : {}) });
    const license = (id: string) => h.lk.store.db.selectFrom("licenses").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    const events = (resourceId: string, type: string) =>
      h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", resourceId).where("event_type", "=", type).execute();
    const action = (licenseId: string, deviceId: string, what: "reset" | "blacklist", token?: string) =>
      h.request({ method: "POST", url: `/api/v1/licenses/${licenseId}/devices/${deviceId}/${what}`, ...(token ? { token } : {}) });
    /** A license with two activated devices; returns their ids newest first. */
    const withDevices = async (policy: Record<string, unknown> = { max_activations: 2 }) => {
      const lic = await issueLicense(h, policy);
      const a = await runtime("activate", lic.key, { fingerprint: "fp-a", hostname: "alpha", os: "linux" });
      assert.equal(a.status, 200, a.text);
      const b = await runtime("activate", lic.key, { is_container: true, cluster_id: "c1", namespace: "ns", pod_name: "p1", is_vm: true });
      assert.equal(b.status, 200, b.text);
      return { ...lic, deviceA: a.json.data.device_id as string, deviceB: b.json.data.device_id as string };
    };
    // biome-ignore lint/suspicious/noExplicitAny: parsed response bodies
    const assertError = (res: { status: number; json: any; text: string }, status: number, code: string, detail?: RegExp) => {
      assert.equal(res.status, status, res.text);
      assert.equal(res.json.error.code, code, res.text);
      if (detail) assert.match(res.json.error.detail, detail);
    };

    it("lists a license's devices newest first with a cursor, matching the contract; 404 for an unknown license", async () => {
      const lic = await withDevices();
      const list = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/devices` });
      assert.equal(list.status, 200, list.text);
      assertOperationResponse("/api/v1/licenses/{id}/devices", "get", "200", list.json);
      assert.deepEqual(
        list.json.data.map((d: { id: string }) => d.id),
        [lic.deviceB, lic.deviceA],
      );
      const [container, hardware] = list.json.data;
      assert.equal(hardware.binding_kind, "hardware");
      assert.equal(hardware.fingerprint, "fp-a");
      assert.equal(hardware.hostname, "alpha");
      assert.equal(hardware.is_vm, false);
      assert.equal(hardware.status, "active");
      assert.equal(hardware.container_id, undefined, "unset fields are omitted, not null");
      assert.equal(container.binding_kind, "container");
      assert.equal(container.is_container, true);
      assert.equal(container.is_vm, true);
      assert.equal(container.pod_name, "p1");
      assert.equal(container.fingerprint, undefined);
      const p1 = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/devices?limit=1` });
      assert.deepEqual(p1.json.data.map((d: { id: string }) => d.id), [lic.deviceB]);
      const p2 = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/devices?limit=1&cursor=${p1.json.page_info.next_cursor}` });
      assert.deepEqual(p2.json.data.map((d: { id: string }) => d.id), [lic.deviceA]);
      assert.equal(p2.json.page_info.next_cursor, null);
      assertError(await h.request({ url: "/api/v1/licenses/lic_01AAAAAAAAAAAAAAAAAAAAAAAA/devices" }), 404, "NOT_FOUND");
      assertError(await h.request({ url: `/api/v1/licenses/${lic.licenseId}/devices?limit=0` }), 400, "INVALID_QUERY");
    });

    it("gets one device; 404 for an unknown device or one that belongs to another license", async () => {
      const lic = await withDevices();
      const other = await withDevices();
      const got = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/devices/${lic.deviceA}` });
      assert.equal(got.status, 200, got.text);
      assertContract("Device", got.json.data);
      assertOperationResponse("/api/v1/licenses/{id}/devices/{device_id}", "get", "200", got.json);
      assert.equal(got.json.data.license_id, lic.licenseId);
      assertError(await h.request({ url: `/api/v1/licenses/${lic.licenseId}/devices/${UNKNOWN_DEVICE}` }), 404, "NOT_FOUND");
      assertError(await h.request({ url: `/api/v1/licenses/${lic.licenseId}/devices/${other.deviceA}` }), 404, "NOT_FOUND");
    });

    it("a known device keeps the details a later call leaves out, takes the ones it sends, and is not rewritten when nothing changes", async () => {
      const lic = await withDevices();
      const device = () => h.lk.store.db.selectFrom("devices").selectAll().where("id", "=", lic.deviceA).executeTakeFirstOrThrow();
      const changesNow = async () => Number((await h.lk.store.db.selectFrom("runtime_changes").select((eb) => eb.fn.max("seq").as("top")).executeTakeFirstOrThrow()).top);
      const first = await device();
      h.clock.advance(60_000);

      // only the fingerprint: hostname and OS stay, the row is not rewritten, no change is fed
      const changes = await changesNow();
      const bare = await runtime("activate", lic.key, { fingerprint: "fp-a" });
      assert.equal(bare.status, 200, bare.text);
      assert.equal(bare.json.data.device_id, lic.deviceA);
      const kept = await device();
      assert.equal(kept.hostname, "alpha");
      assert.equal(kept.os, "linux");
      assert.equal(Number(kept.updated_at), Number(first.updated_at), "an unchanged binding is only stamped as seen, in the batch");
      assert.equal(await changesNow(), changes);

      // a new hostname replaces the stored one; the OS it leaves out stays
      h.clock.advance(60_000);
      const renamed = await runtime("activate", lic.key, { fingerprint: "fp-a", hostname: "beta", is_vm: true });
      assert.equal(renamed.status, 200, renamed.text);
      const moved = await device();
      assert.equal(moved.hostname, "beta");
      assert.equal(moved.os, "linux");
      assert.equal(Number(moved.is_vm), 1);
      assert.equal(Number(moved.updated_at), h.clock.now());

      // after a reset, binding again with only the fingerprint keeps the details too
      assert.equal((await action(lic.licenseId, lic.deviceA, "reset")).status, 200);
      const again = await runtime("activate", lic.key, { fingerprint: "fp-a" });
      assert.equal(again.status, 200, again.text);
      const back = await device();
      assert.equal(back.status, "active");
      assert.deepEqual([back.hostname, back.os, Number(back.is_vm)], ["beta", "linux", 1]);
      const listed = (await h.request({ url: `/api/v1/licenses/${lic.licenseId}/devices/${lic.deviceA}` })).json.data;
      assert.equal(listed.hostname, "beta");
      assert.equal(listed.os, "linux");
    });

    it("reset releases the seat (another device can activate), bumps entitlement_version, records device.reset; the device may activate again", async () => {
      const lic = await withDevices();
      const before = await license(lic.licenseId);
      assert.equal(before.active_device_count, 2);
      assertError(await runtime("activate", lic.key, { fingerprint: "fp-c" }), 409, "ACTIVATION_LIMIT_EXCEEDED");

      const res = await action(lic.licenseId, lic.deviceA, "reset", DEVICE_WRITER);
      assert.equal(res.status, 200, res.text);
      assertContract("Device", res.json.data);
      assertOperationResponse("/api/v1/licenses/{id}/devices/{device_id}/reset", "post", "200", res.json);
      assert.equal(res.json.data.status, "reset");
      const after = await license(lic.licenseId);
      assert.equal(after.active_device_count, 1);
      assert.equal(after.entitlement_version, before.entitlement_version + 1);
      const ev = await events(lic.deviceA, "device.reset");
      assert.equal(ev.length, 1);
      assert.equal(ev[0]!.resource_type, "device");
      assert.deepEqual(JSON.parse(ev[0]!.metadata), { license_id: lic.licenseId, previous_status: "active", released_seat: true });

      assert.equal((await runtime("activate", lic.key, { fingerprint: "fp-c" })).status, 200, "the released seat is free");
      assertError(await runtime("activate", lic.key, { fingerprint: "fp-a" }), 409, "ACTIVATION_LIMIT_EXCEEDED");
      const cDevice = (await h.request({ url: `/api/v1/licenses/${lic.licenseId}/devices?limit=1` })).json.data[0].id;
      assert.equal((await action(lic.licenseId, cDevice, "reset")).status, 200);
      const again = await runtime("activate", lic.key, { fingerprint: "fp-a" });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.json.data.device_id, lic.deviceA, "a reset device binds again as the same record");
      assert.equal((await license(lic.licenseId)).active_device_count, 2);
    });

    it("reset is refused with 409 unless the device is active; 404 for an unknown device", async () => {
      const lic = await withDevices();
      assert.equal((await action(lic.licenseId, lic.deviceA, "reset")).status, 200);
      assertError(await action(lic.licenseId, lic.deviceA, "reset"), 409, "CONFLICT", /device is reset/);
      assert.equal((await action(lic.licenseId, lic.deviceB, "blacklist")).status, 200);
      assertError(await action(lic.licenseId, lic.deviceB, "reset"), 409, "CONFLICT", /blacklisted/);
      assertError(await action(lic.licenseId, UNKNOWN_DEVICE, "reset"), 404, "NOT_FOUND");
      assertError(await action("lic_01AAAAAAAAAAAAAAAAAAAAAAAA", lic.deviceA, "reset"), 404, "NOT_FOUND");
      assert.equal((await events(lic.deviceA, "device.reset")).length, 1);
      assert.equal((await license(lic.licenseId)).active_device_count, 0);
    });

    it("blacklist releases the seat, records device.blacklisted, and the runtime answers DEVICE_BLACKLISTED; 409 when repeated", async () => {
      const lic = await withDevices();
      const before = await license(lic.licenseId);
      const res = await action(lic.licenseId, lic.deviceA, "blacklist", DEVICE_WRITER);
      assert.equal(res.status, 200, res.text);
      assertContract("Device", res.json.data);
      assertOperationResponse("/api/v1/licenses/{id}/devices/{device_id}/blacklist", "post", "200", res.json);
      assert.equal(res.json.data.status, "blacklisted");
      const after = await license(lic.licenseId);
      assert.equal(after.active_device_count, 1);
      assert.equal(after.entitlement_version, before.entitlement_version + 1);
      const ev = await events(lic.deviceA, "device.blacklisted");
      assert.equal(ev.length, 1);
      assert.equal(ev[0]!.resource_type, "device");
      assert.equal(JSON.parse(ev[0]!.metadata).released_seat, true);

      assertError(await runtime("activate", lic.key, { fingerprint: "fp-a" }), 403, "DEVICE_BLACKLISTED");
      assertError(await runtime("validate", lic.key, { fingerprint: "fp-a" }), 403, "DEVICE_BLACKLISTED");
      assert.equal((await license(lic.licenseId)).active_device_count, 1, "a refused activation takes no seat");
      assertError(await action(lic.licenseId, lic.deviceA, "blacklist"), 409, "CONFLICT", /already blacklisted/);
      assertError(await action(lic.licenseId, UNKNOWN_DEVICE, "blacklist"), 404, "NOT_FOUND");
      assert.equal((await events(lic.deviceA, "device.blacklisted")).length, 1);
    });

    it("blacklisting a device that is not active keeps the seat count; it can never bind again", async () => {
      const lic = await withDevices();
      assert.equal((await action(lic.licenseId, lic.deviceA, "reset")).status, 200);
      assert.equal((await license(lic.licenseId)).active_device_count, 1);
      const res = await action(lic.licenseId, lic.deviceA, "blacklist");
      assert.equal(res.status, 200, res.text);
      assert.equal((await license(lic.licenseId)).active_device_count, 1);
      assert.equal(JSON.parse((await events(lic.deviceA, "device.blacklisted"))[0]!.metadata).previous_status, "reset");
      assertError(await runtime("activate", lic.key, { fingerprint: "fp-a" }), 403, "DEVICE_BLACKLISTED");
    });

    it("a replayed reset returns the same answer and changes nothing", async () => {
      const lic = await withDevices();
      const url = `/api/v1/licenses/${lic.licenseId}/devices/${lic.deviceA}/reset`;
      const first = await h.request({ method: "POST", url, idempotencyKey: "reset-once" });
      assert.equal(first.status, 200, first.text);
      const replay = await h.request({ method: "POST", url, idempotencyKey: "reset-once" });
      assert.equal(replay.text, first.text);
      assert.equal(replay.headers["idempotent-replayed"], "true");
      assert.equal((await events(lic.deviceA, "device.reset")).length, 1);
    });
  });
}
