// Signed runtime answers verify exactly as the official SDK verifies them, before and after key
// rotation (done by the real `licensekit keys rotate` CLI) and across a restart.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { assertContract } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";
import { sdkVerify } from "./helpers/verify.js";

const serverDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function rotateWithCli(h: Harness): string {
  const res = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "keys", "rotate"], {
    cwd: serverDir,
    env: { ...process.env, ...h.env },
    encoding: "utf8",
  });
  assert.equal(res.status, 0, `keys rotate failed: ${res.stderr}`);
  const m = /active kid: (k_[A-Za-z0-9_-]{16})/.exec(res.stdout);
  assert.ok(m, `unexpected output: ${res.stdout}`);
  return m[1]!;
}

for (const engine of ENGINES) {
  describe(`signed runtime answers [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => h?.close());

    const keys = async () => (await h.request({ url: "/api/v1/system/public-keys", token: null })).json.data;

    it("publishes one active Ed25519 key whose kid is derived from the public key", async () => {
      const res = await h.request({ url: "/api/v1/system/public-keys", token: null });
      assert.equal(res.status, 200);
      assert.equal(res.json.data.length, 1);
      const k = res.json.data[0];
      assert.equal(k.algorithm, "Ed25519");
      assert.equal(k.status, "active");
      assert.equal(Buffer.from(k.public_key, "base64").length, 32);
      const { kidFor } = await import("../src/crypto/signing-keys.js");
      assert.equal(k.kid, kidFor(Buffer.from(k.public_key, "base64")));
      assertContract("PublicKey", k);
    });

    it("activate and validate answers verify with the SDK algorithm and match the contract", async () => {
      const lic = await issueLicense(h, { max_activations: 2 });
      const act = await h.request({ url: "/api/v1/license/activate", licenseKey: lic.key, idempotencyKey: "act-1", body: { fingerprint: "fp-a", hostname: "host-a" } });
      assert.equal(act.status, 200, act.text);
      assertContract("SignedRuntimeEntitlementEnvelope", act.json);
      assert.equal(await sdkVerify(act.json, await keys()), true);
      assert.equal(act.json.data.license_id, lic.licenseId);
      assert.equal(act.json.data.status, "active");
      assert.equal(act.json.data.license_type, "subscription");
      assert.deepEqual(act.json.data.features, []);

      const val = await h.request({ url: "/api/v1/license/validate", licenseKey: lic.key, body: { fingerprint: "fp-a", app_version: "2.1.0" } });
      assert.equal(val.status, 200, val.text);
      assertContract("SignedRuntimeEntitlementEnvelope", val.json);
      assert.equal(await sdkVerify(val.json, await keys()), true);
      assert.equal(val.json.data.device_id, act.json.data.device_id);
      assert.deepEqual(val.json.data.version_eligibility, { app_version: "2.1.0", is_entitled: true, enforced: false });
      // next_check_at = issued_at + validation_interval_minutes (default 1440)
      assert.equal(Date.parse(val.json.data.next_check_at) - Date.parse(val.json.data.issued_at), 1440 * 60_000);

      // A tampered answer fails the same verification.
      const forged = structuredClone(val.json);
      forged.data.status = "grace_period";
      assert.equal(await sdkVerify(forged, await keys()), false);
    });

    it("signs runtime error envelopes over JSON.stringify(error)", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      await h.request({ url: "/api/v1/license/activate", licenseKey: lic.key, idempotencyKey: "e-1", body: { fingerprint: "one" } });
      const denied = await h.request({ url: "/api/v1/license/activate", licenseKey: lic.key, idempotencyKey: "e-2", body: { fingerprint: "two" } });
      assert.equal(denied.status, 409);
      assert.equal(denied.json.error.code, "ACTIVATION_LIMIT_EXCEEDED");
      assertContract("ErrorEnvelope", denied.json);
      assert.equal(await sdkVerify(denied.json, await keys(), "error"), true);
      const unauth = await h.request({ url: "/api/v1/license/validate", licenseKey: "lsk_00000000000000000000000000000000", body: { fingerprint: "x" } });
      assert.equal(unauth.status, 401);
      assert.equal(await sdkVerify(unauth.json, await keys(), "error"), true);
    });

    it("after `licensekit keys rotate`, old answers verify with the retired key and new answers carry the new kid", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      const before = await h.request({ url: "/api/v1/license/activate", licenseKey: lic.key, idempotencyKey: "rot-1", body: { fingerprint: "fp-r" } });
      assert.equal(before.status, 200);
      const oldKid = before.json.signature.kid;

      const newKid = rotateWithCli(h);
      assert.notEqual(newKid, oldKid);
      await h.lk.keyring.refresh(); // what the periodic refresh does in a serving process

      const list = await keys();
      assert.equal(list.find((k: { kid: string }) => k.kid === oldKid)?.status, "retired");
      assert.equal(list.find((k: { kid: string }) => k.kid === newKid)?.status, "active");
      assert.equal(await sdkVerify(before.json, list), true, "answer signed before rotation still verifies");

      const afterRot = await h.request({ url: "/api/v1/license/validate", licenseKey: lic.key, body: { fingerprint: "fp-r" } });
      assert.equal(afterRot.status, 200);
      assert.equal(afterRot.json.signature.kid, newKid);
      assert.equal(await sdkVerify(afterRot.json, list), true);

      // The rotation is in the audit feed.
      const ev = await h.lk.store.db.selectFrom("audit_events").selectAll().where("event_type", "=", "signing_key.rotated").execute();
      assert.equal(ev.length, 1);
      assert.equal(ev[0]!.resource_id, newKid);
    });

    it("keeps licenses and keys across a restart; earlier answers still verify", async () => {
      const lic = await issueLicense(h, { max_activations: 1 });
      const first = await h.request({ url: "/api/v1/license/activate", licenseKey: lic.key, idempotencyKey: "rs-1", body: { fingerprint: "fp-s" } });
      assert.equal(first.status, 200);
      await h.restart();
      const got = await h.request({ url: `/api/v1/licenses/${lic.licenseId}` });
      assert.equal(got.status, 200);
      assert.equal(got.json.data.active_device_count, 1);
      const again = await h.request({ url: "/api/v1/license/validate", licenseKey: lic.key, body: { fingerprint: "fp-s" } });
      assert.equal(again.status, 200);
      assert.equal(again.json.data.device_id, first.json.data.device_id);
      const list = await keys();
      assert.equal(await sdkVerify(first.json, list), true);
      assert.equal(await sdkVerify(again.json, list), true);
      // The idempotent replay survives the restart byte for byte.
      const replay = await h.request({ url: "/api/v1/license/activate", licenseKey: lic.key, idempotencyKey: "rs-1", body: { fingerprint: "fp-s" } });
      assert.equal(replay.text, first.text);
      assert.equal(replay.headers["idempotent-replayed"], "true");
    });
  });
}
