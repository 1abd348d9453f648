// The management slice as an operator uses it: create/get/list of products, policies, customers and
// licenses against the contract's schemas, D11 policy defaults, D8 pagination, token checks (expired,
// inactive, CIDR), scopes, and the audit rows each write leaves behind.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { insertApiKey } from "../src/store/api-keys.js";
import { assertContract, assertOperationResponse } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, startHarness } from "./helpers/harness.js";

const EXPIRED = "lkm_ExpiredToken0000000000000000000000000000";
const INACTIVE = "lkm_InactiveToken000000000000000000000000000";
const ELSEWHERE = "lkm_OtherNetworkToken00000000000000000000000";
const LOOPBACK = "lkm_LoopbackOnlyToken00000000000000000000000";
const LICENSE_RW = "lkm_LicenseReadWriteToken00000000000000000000";

for (const engine of ENGINES) {
  describe(`management slice [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
      const now = h.clock.now();
      const db = h.lk.store.db;
      await insertApiKey(db, h.lk.hasher, { name: "expired", token: EXPIRED, scopes: ["admin"], expiresAt: now - 1 }, now);
      await insertApiKey(db, h.lk.hasher, { name: "inactive", token: INACTIVE, scopes: ["admin"], isActive: false }, now);
      await insertApiKey(db, h.lk.hasher, { name: "other net", token: ELSEWHERE, scopes: ["admin"], allowedCidrs: ["10.0.0.0/8"] }, now);
      await insertApiKey(db, h.lk.hasher, { name: "loopback", token: LOOPBACK, scopes: ["admin"], allowedCidrs: ["127.0.0.0/8", "::1/128"] }, now);
      await insertApiKey(db, h.lk.hasher, { name: "licenses", token: LICENSE_RW, scopes: ["license:read", "license:write"] }, now);
    });
    after(async () => h?.close());

    const events = async (type: string, resourceId: string) =>
      h.lk.store.db.selectFrom("audit_events").selectAll().where("event_type", "=", type).where("resource_id", "=", resourceId).execute();

    it("product create → get → list, each matching the contract", async () => {
      const created = await h.request({ url: "/api/v1/products", body: { name: "Acme Studio", code: "acme-studio", metadata: { tier: "pro" } } });
      assert.equal(created.status, 201, created.text);
      assertContract("Product", created.json.data);
      assert.deepEqual(created.json.data.metadata, { tier: "pro" });
      assert.match(created.json.meta.request_id, /^req_/);
      const id = created.json.data.id;
      const got = await h.request({ url: `/api/v1/products/${id}` });
      assert.equal(got.status, 200);
      assert.deepEqual(got.json.data, created.json.data);
      const list = await h.request({ url: "/api/v1/products" });
      assert.equal(list.status, 200);
      assertOperationResponse("/api/v1/products", "get", "200", list.json);
      assert.ok(list.json.data.some((p: { id: string }) => p.id === id));
      const ev = await events("product.created", id);
      assert.equal(ev.length, 1);
      assert.equal(ev[0]!.actor_type, "api_key");
      assert.equal(ev[0]!.request_id, created.json.meta.request_id);
    });

    it("a policy created with only the v1 fields gets every D11 default", async () => {
      const product = await h.request({ url: "/api/v1/products", body: { name: "Defaults", code: "defaults" } });
      const pol = await h.request({ url: `/api/v1/products/${product.json.data.id}/policies`, body: { name: "Basic", code: "basic", license_type: "perpetual" } });
      assert.equal(pol.status, 201, pol.text);
      assertContract("Policy", pol.json.data);
      const d = pol.json.data;
      assert.equal(d.product_id, product.json.data.id);
      assert.deepEqual(
        {
          max_activations: d.max_activations,
          max_floating_users: d.max_floating_users,
          max_container_instances: d.max_container_instances,
          floating_timeout_minutes: d.floating_timeout_minutes,
          grace_period_days: d.grace_period_days,
          validation_interval_minutes: d.validation_interval_minutes,
          require_heartbeat: d.require_heartbeat,
          allow_offline_activation: d.allow_offline_activation,
          offline_grace_days: d.offline_grace_days,
          allow_vm: d.allow_vm,
          allow_container: d.allow_container,
          max_transfers: d.max_transfers,
        },
        {
          max_activations: 1,
          max_floating_users: 0,
          max_container_instances: 0,
          floating_timeout_minutes: 30,
          grace_period_days: 0,
          validation_interval_minutes: 1440,
          require_heartbeat: false,
          allow_offline_activation: false,
          offline_grace_days: 7,
          allow_vm: true,
          allow_container: true,
          max_transfers: 0,
        },
      );
      assert.equal(d.duration_days, undefined);
      const full = await h.request({
        url: `/api/v1/products/${product.json.data.id}/policies`,
        body: { name: "Full", code: "full", license_type: "subscription", max_activations: 3, grace_period_days: 5, allow_vm: false, duration_days: 30 },
      });
      assert.equal(full.status, 201, full.text);
      assert.equal(full.json.data.max_activations, 3);
      assert.equal(full.json.data.allow_vm, false);
      assert.equal(full.json.data.duration_days, 30);
      const got = await h.request({ url: `/api/v1/policies/${full.json.data.id}` });
      assert.deepEqual(got.json.data, full.json.data);
      const list = await h.request({ url: `/api/v1/products/${product.json.data.id}/policies` });
      assertOperationResponse("/api/v1/products/{id}/policies", "get", "200", list.json);
      assert.deepEqual(list.json.data.map((p: { code: string }) => p.code), ["full", "basic"], "newest first");
      const missing = await h.request({ url: "/api/v1/products/prod_01AAAAAAAAAAAAAAAAAAAAAAAA/policies", body: { name: "X", code: "x", license_type: "trial" } });
      assert.equal(missing.status, 404);
      assert.equal(missing.json.error.code, "NOT_FOUND");
    });

    it("customers: create, get, list, duplicate code → 409 CONFLICT naming the field", async () => {
      const c = await h.request({ url: "/api/v1/customers", body: { name: "Globex", code: "globex", email: "ops@globex.test" } });
      assert.equal(c.status, 201, c.text);
      assertContract("Customer", c.json.data);
      const got = await h.request({ url: `/api/v1/customers/${c.json.data.id}` });
      assert.deepEqual(got.json.data, c.json.data);
      const list = await h.request({ url: "/api/v1/customers" });
      assertOperationResponse("/api/v1/customers", "get", "200", list.json);
      const dup = await h.request({ url: "/api/v1/customers", body: { name: "Globex 2", code: "globex" } });
      assert.equal(dup.status, 409);
      assert.equal(dup.json.error.code, "CONFLICT");
      assert.match(dup.json.error.detail, /code/);
      const bad = await h.request({ url: "/api/v1/customers", body: { name: "Bad", code: "bad-mail", email: "not-an-email" } });
      assert.equal(bad.status, 422);
      assert.equal(bad.json.error.code, "VALIDATION_ERROR");
      assert.match(bad.json.error.detail, /email/);
    });

    it("license create shows the key once, stores only its keyed hash, and lists with filters", async () => {
      const product = await h.request({ url: "/api/v1/products", body: { name: "Keys", code: "keys" } });
      const pid = product.json.data.id;
      const pol = await h.request({ url: `/api/v1/products/${pid}/policies`, body: { name: "Sub", code: "sub", license_type: "subscription", duration_days: 365 } });
      const customer = await h.request({ url: "/api/v1/customers", body: { name: "Initech", code: "initech" } });
      const created = await h.request({
        url: "/api/v1/licenses",
        body: { product_id: pid, policy_id: pol.json.data.id, customer_id: customer.json.data.id, customer_email: "bob@initech.test" },
      });
      assert.equal(created.status, 201, created.text);
      assertContract("License", created.json.data.license);
      const key: string = created.json.data.license_key;
      const lic = created.json.data.license;
      assert.match(key, /^lsk_/);
      assert.equal(lic.license_key_prefix, key.slice(0, lic.license_key_prefix.length));
      assert.equal(lic.license_key_last4, key.slice(-4));
      assert.equal(lic.status, "active");
      assert.equal(lic.expires_at, new Date(h.clock.now() + 365 * 86_400_000).toISOString(), "duration_days gives the expiry (D13)");
      const row = await h.lk.store.db.selectFrom("licenses").selectAll().where("id", "=", lic.id).executeTakeFirstOrThrow();
      assert.ok(!JSON.stringify(row).includes(key), "the plaintext key is nowhere in the row");
      assert.ok(!JSON.stringify(row).includes(key.slice(4)), "nor its body");
      const got = await h.request({ url: `/api/v1/licenses/${lic.id}` });
      assert.equal(got.status, 200);
      assert.equal(got.json.data.license_key, undefined);
      assert.ok(!got.text.includes(key), "get never shows the key again");
      assert.deepEqual(got.json.data, lic);

      const other = await h.request({ url: "/api/v1/licenses", body: { product_id: pid, policy_id: pol.json.data.id } });
      assert.equal(other.status, 201);
      const byCustomer = await h.request({ url: `/api/v1/licenses?customer_id=${customer.json.data.id}` });
      assertOperationResponse("/api/v1/licenses", "get", "200", byCustomer.json);
      assert.deepEqual(byCustomer.json.data.map((l: { id: string }) => l.id), [lic.id]);
      const byProduct = await h.request({ url: `/api/v1/licenses?product_id=${pid}` });
      assert.deepEqual(byProduct.json.data.map((l: { id: string }) => l.id), [other.json.data.license.id, lic.id]);
      await h.request({ method: "POST", url: `/api/v1/licenses/${lic.id}/suspend` });
      const suspended = await h.request({ url: `/api/v1/licenses?product_id=${pid}&status=suspended` });
      assert.deepEqual(suspended.json.data.map((l: { id: string }) => l.id), [lic.id]);

      const wrongPolicy = await h.request({ url: "/api/v1/licenses", body: { product_id: pid, policy_id: "pol_01AAAAAAAAAAAAAAAAAAAAAAAA" } });
      assert.equal(wrongPolicy.status, 404);
      assert.equal(wrongPolicy.json.error.code, "NOT_FOUND");
      assert.equal((await events("license.created", lic.id)).length, 1);
    });

    it("pagination walks every row once, newest first, and rejects cursors it did not issue", async () => {
      const codes: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await h.request({ url: "/api/v1/customers", body: { name: `Page ${i}`, code: `page-${i}` } });
        assert.equal(r.status, 201);
        codes.push(r.json.data.code);
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const url: string = `/api/v1/customers?limit=2${cursor ? `&cursor=${cursor}` : ""}`;
        const r = await h.request({ url });
        assert.equal(r.status, 200, r.text);
        assert.ok(r.json.data.length <= 2);
        seen.push(...r.json.data.map((c: { code: string }) => c.code));
        cursor = r.json.page_info.next_cursor;
        pages++;
      } while (cursor && pages < 20);
      assert.equal(new Set(seen).size, seen.length, "no row twice");
      const pageRows = seen.filter((c) => c.startsWith("page-"));
      assert.deepEqual(pageRows, [...codes].reverse());
      const big = await h.request({ url: "/api/v1/customers?limit=5000" });
      assert.equal(big.status, 200, "limit is clamped to 200, not refused (D8)");
      const zero = await h.request({ url: "/api/v1/customers?limit=0" });
      assert.equal(zero.status, 400);
      assert.equal(zero.json.error.code, "INVALID_QUERY");
      const forged = Buffer.from(JSON.stringify({ id: "../../etc" })).toString("base64url");
      const r = await h.request({ url: `/api/v1/customers?cursor=${forged}` });
      assert.equal(r.status, 400);
      assert.equal(r.json.error.code, "INVALID_QUERY");
    });

    it("expired, inactive and off-network tokens → 401 UNAUTHORIZED with a detail saying why", async () => {
      const cases: [string, RegExp][] = [
        [EXPIRED, /expired/],
        [INACTIVE, /inactive/],
        [ELSEWHERE, /address/],
      ];
      for (const [token, detail] of cases) {
        const r = await h.request({ url: "/api/v1/products", token });
        assert.equal(r.status, 401, token);
        assert.equal(r.json.error.code, "UNAUTHORIZED");
        assert.match(r.json.error.detail, detail);
        assert.equal(r.headers["x-request-id"], r.json.meta.request_id);
      }
      const ok = await h.request({ url: "/api/v1/products", token: LOOPBACK });
      assert.equal(ok.status, 200, "a token limited to loopback works from loopback");
    });

    it("scopes: a license-only token manages licenses but not products or customers (admin-only)", async () => {
      const products = await h.request({ url: "/api/v1/products", token: LICENSE_RW });
      assert.equal(products.status, 403);
      assert.equal(products.json.error.code, "TOKEN_SCOPE_DENIED");
      assert.equal(products.json.error.detail, "requires product:read");
      const customers = await h.request({ url: "/api/v1/customers", token: LICENSE_RW });
      assert.equal(customers.status, 403);
      assert.equal(customers.json.error.detail, "requires admin");
      const licenses = await h.request({ url: "/api/v1/licenses", token: LICENSE_RW });
      assert.equal(licenses.status, 200);
    });

    it("last_used_at is recorded for a token that was used", async () => {
      await h.request({ url: "/api/v1/products", token: LOOPBACK });
      await h.lk.sideEffects.flush();
      const row = await h.lk.store.db.selectFrom("api_keys").select("last_used_at").where("name", "=", "loopback").executeTakeFirstOrThrow();
      assert.equal(Number(row.last_used_at), h.clock.now());
    });
  });
}
