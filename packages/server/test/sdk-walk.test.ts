// The official SDK's example flow, over real HTTP with plain fetch and the bodies the SDK sends (the
// contract's request schemas): an admin creates a scoped API key; with it, a product, a policy and a
// license; the admin creates the customer (customers are admin-only); the license is renewed with an
// Idempotency-Key and the renew is replayed; a device is activated at runtime (answer verified the
// SDK's way) and then reset. Every answer is checked against the contract's schemas.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { assertContract, assertOperationResponse } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { ADMIN_TOKEN, type Harness, listen, startHarness } from "./helpers/harness.js";
import { type PublicKeyEntry, sdkVerify } from "./helpers/verify.js";

const DAY = 86_400_000;

for (const engine of ENGINES) {
  describe(`the SDK example flow over HTTP [${engine}]`, () => {
    let h: Harness;
    let base: string;
    before(async () => {
      h = await startHarness(engine);
      base = await listen(h);
    });
    after(async () => h?.close());

    async function call(method: string, path: string, opts: { token?: string; license?: string; body?: unknown; idem?: string } = {}) {
      const headers: Record<string, string> = { accept: "application/json", "user-agent": "licensekit-sdk-walk-test" };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      if (opts.license) headers.authorization = `License ${opts.license}`;
      if (opts.idem) headers["idempotency-key"] = opts.idem;
      if (opts.body !== undefined) headers["content-type"] = "application/json";
      const res = await fetch(`${base}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
      const text = await res.text();
      return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : null };
    }

    it("scoped key → product → policy → customer → license → renew (+ replay) → activate → reset device", async () => {
      // 1. A scoped API key, created with the bootstrap admin token.
      const key = await call("POST", "/api/v1/api-keys", {
        token: ADMIN_TOKEN,
        body: { name: "integration", scopes: ["product:read", "product:write", "license:read", "license:write", "device:write"] },
      });
      assert.equal(key.status, 201, key.text);
      assertContract("APIKeyCreateResponse", key.json.data);
      const token: string = key.json.data.token;
      assert.deepEqual(key.json.data.api_key.scopes, ["product:read", "product:write", "license:read", "license:write", "device:write"]);

      // 2. Catalogue with the scoped key.
      const product = await call("POST", "/api/v1/products", { token, body: { name: "Acme Desktop", code: "acme-desktop", metadata: { team: "desktop" } } });
      assert.equal(product.status, 201, product.text);
      assertContract("Product", product.json.data);
      const policy = await call("POST", `/api/v1/products/${product.json.data.id}/policies`, {
        token,
        body: { name: "Annual", code: "annual", license_type: "subscription", max_floating_users: 0, require_heartbeat: false },
      });
      assert.equal(policy.status, 201, policy.text);
      assertContract("Policy", policy.json.data);

      // 3. Customers are admin-only: the scoped key is refused, the admin token works.
      const denied = await call("POST", "/api/v1/customers", { token, body: { name: "Globex", code: "globex" } });
      assert.equal(denied.status, 403);
      assert.equal(denied.json.error.detail, "requires admin");
      const customer = await call("POST", "/api/v1/customers", { token: ADMIN_TOKEN, body: { name: "Globex", code: "globex", email: "it@globex.test" } });
      assert.equal(customer.status, 201, customer.text);

      // 4. A subscription license without expires_at (the SDK example's shape, D13).
      const created = await call("POST", "/api/v1/licenses", {
        token,
        body: { product_id: product.json.data.id, policy_id: policy.json.data.id, customer_id: customer.json.data.id, customer_email: "it@globex.test" },
      });
      assert.equal(created.status, 201, created.text);
      assertContract("LicenseCreateResponse", created.json.data);
      const licenseId: string = created.json.data.license.id;
      const licenseKey: string = created.json.data.license_key;
      assert.equal(created.json.data.license.expires_at, undefined);

      // 5. Renew with an Idempotency-Key, then replay it: identical answer, extended once.
      const renew = await call("POST", `/api/v1/licenses/${licenseId}/renew`, { token, idem: "renew-2026-03", body: { extend_by_days: 30 } });
      assert.equal(renew.status, 200, renew.text);
      assertContract("License", renew.json.data);
      const expected = new Date(h.clock.now() + 30 * DAY).toISOString();
      assert.equal(renew.json.data.expires_at, expected, "no stored expiry: extended from now");
      const replay = await call("POST", `/api/v1/licenses/${licenseId}/renew`, { token, idem: "renew-2026-03", body: { extend_by_days: 30 } });
      assert.equal(replay.status, 200);
      assert.equal(replay.text, renew.text);
      assert.equal(replay.headers.get("idempotent-replayed"), "true");
      const after = await call("GET", `/api/v1/licenses/${licenseId}`, { token });
      assert.equal(after.json.data.expires_at, expected, "the replay did not extend again");
      const noKey = await call("POST", `/api/v1/licenses/${licenseId}/renew`, { token, body: { extend_by_days: 30 } });
      assert.equal(noKey.status, 400);
      assert.equal(noKey.json.error.code, "IDEMPOTENCY_KEY_REQUIRED");

      // 6. Runtime activation on a customer machine, verified as the SDK verifies it.
      const activation = await call("POST", "/api/v1/license/activate", {
        license: licenseKey,
        idem: "activate-host-1",
        body: { fingerprint: "host-1-fingerprint", hostname: "host-1", os: "linux", app_version: "1.0.0" },
      });
      assert.equal(activation.status, 200, activation.text);
      const keys: PublicKeyEntry[] = (await call("GET", "/api/v1/system/public-keys")).json.data;
      assert.equal(await sdkVerify(activation.json, keys), true);
      const deviceId: string = activation.json.data.device_id;

      // 7. Devices: list, then reset the one that was activated.
      const devices = await call("GET", `/api/v1/licenses/${licenseId}/devices`, { token });
      assert.equal(devices.status, 200, devices.text);
      assertOperationResponse("/api/v1/licenses/{id}/devices", "get", "200", devices.json);
      assert.deepEqual(
        devices.json.data.map((d: { id: string }) => d.id),
        [deviceId],
      );
      const reset = await call("POST", `/api/v1/licenses/${licenseId}/devices/${deviceId}/reset`, { token });
      assert.equal(reset.status, 200, reset.text);
      assertContract("Device", reset.json.data);
      assert.equal(reset.json.data.status, "reset");
      const license = await call("GET", `/api/v1/licenses/${licenseId}`, { token });
      assert.equal(license.json.data.active_device_count, 0);

      // 8. The audit feed shows each step once.
      const events = await call("GET", `/api/v1/events?resource_id=${licenseId}`, { token: ADMIN_TOKEN });
      assert.equal(events.status, 200, events.text);
      const types = events.json.data.map((e: { event_type: string }) => e.event_type).sort();
      assert.deepEqual(types, ["license.activated", "license.created", "license.renewed"].sort());
      const deviceEvents = await call("GET", `/api/v1/events?resource_id=${deviceId}`, { token: ADMIN_TOKEN });
      assert.deepEqual(
        deviceEvents.json.data.map((e: { event_type: string }) => e.event_type),
        ["device.reset"],
      );
    });
  });
}
