// The catalogue: product update/delete, product versions, policy update/delete and features, against
// the contract's schemas, with every operation-specific error status (400/404/409/422) and the one
// audit event each successful write leaves (none for a no-op PATCH).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { newId } from "../src/ids.js";
import { assertContract, assertOperationResponse } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, type Reply, startHarness } from "./helpers/harness.js";

let seq = 0;
const unique = (prefix: string) => `${prefix}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;

function assertError(r: Reply, status: number, code: string, detail?: RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error?.code, code, r.text);
  if (detail) assert.match(r.json.error.detail ?? "", detail);
}

for (const engine of ENGINES) {
  describe(`catalogue: products, versions, policies, features [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => h?.close());

    /** Every audit event a request left (matched by its request id). */
    const eventsOf = async (r: Reply) => {
      const requestId = r.headers["x-request-id"];
      assert.ok(typeof requestId === "string" && requestId.startsWith("req_"), "every answer carries x-request-id");
      return h.lk.store.db.selectFrom("audit_events").selectAll().where("request_id", "=", requestId).execute();
    };
    const assertOneEvent = async (r: Reply, type: string, resourceType: string, resourceId: string) => {
      const ev = await eventsOf(r);
      assert.equal(ev.length, 1, `exactly one event, got ${ev.map((e) => e.event_type).join(", ")}`);
      assert.equal(ev[0]!.event_type, type);
      assert.equal(ev[0]!.resource_type, resourceType);
      assert.equal(ev[0]!.resource_id, resourceId);
      assert.equal(ev[0]!.actor_type, "api_key");
      return JSON.parse(ev[0]!.metadata) as Record<string, unknown>;
    };
    const assertNoEvent = async (r: Reply) => assert.deepEqual(await eventsOf(r), []);

    const createProduct = async (extra: Record<string, unknown> = {}) => {
      const code = unique("prod");
      const r = await h.request({ url: "/api/v1/products", body: { name: `Product ${code}`, code, ...extra } });
      assert.equal(r.status, 201, r.text);
      return r.json.data as { id: string; code: string; name: string; updated_at: string };
    };
    const createPolicy = async (productId: string, extra: Record<string, unknown> = {}) => {
      const r = await h.request({ url: `/api/v1/products/${productId}/policies`, body: { name: "Policy", code: unique("pol"), license_type: "subscription", ...extra } });
      assert.equal(r.status, 201, r.text);
      return r.json.data as { id: string; code: string };
    };
    const createLicense = async (productId: string, policyId: string) => {
      const r = await h.request({ url: "/api/v1/licenses", body: { product_id: productId, policy_id: policyId } });
      assert.equal(r.status, 201, r.text);
      return r.json.data.license as { id: string; entitlement_version: number };
    };

    /** Walks a list with limit=2 and returns every id, asserting the contract's list shape on each page. */
    const walk = async (url: string, contractPath: string) => {
      const ids: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r: Reply = await h.request({ url: `${url}?limit=2${cursor ? `&cursor=${cursor}` : ""}` });
        assert.equal(r.status, 200, r.text);
        assertOperationResponse(contractPath, "get", "200", r.json);
        assert.ok(r.json.data.length <= 2);
        ids.push(...r.json.data.map((x: { id: string }) => x.id));
        cursor = r.json.page_info.next_cursor;
        pages++;
      } while (cursor && pages < 20);
      return ids;
    };

    // ---------- products ----------

    describe("updateProduct", () => {
      it("changes name, code and metadata (replaced), bumps updated_at and records product.updated", async () => {
        const p = await createProduct({ metadata: { tier: "pro", old: true } });
        h.clock.advance(60_000);
        const code = unique("renamed");
        const r = await h.request({ method: "PATCH", url: `/api/v1/products/${p.id}`, body: { name: "Renamed", code, metadata: { tier: "team" } } });
        assert.equal(r.status, 200, r.text);
        assertOperationResponse("/api/v1/products/{id}", "patch", "200", r.json);
        assertContract("Product", r.json.data);
        assert.equal(r.json.data.name, "Renamed");
        assert.equal(r.json.data.code, code);
        assert.deepEqual(r.json.data.metadata, { tier: "team" });
        assert.equal(r.json.data.updated_at, new Date(h.clock.now()).toISOString());
        assert.notEqual(r.json.data.updated_at, p.updated_at);
        const meta = await assertOneEvent(r, "product.updated", "product", p.id);
        assert.deepEqual(new Set(meta.changed as string[]), new Set(["name", "code", "metadata"]));
        const got = await h.request({ url: `/api/v1/products/${p.id}` });
        assert.deepEqual(got.json.data, r.json.data);
      });

      it("an empty body, or values equal to the current ones, is a no-op: 200, unchanged, no event", async () => {
        const p = await createProduct();
        h.clock.advance(1000);
        const empty = await h.request({ method: "PATCH", url: `/api/v1/products/${p.id}`, body: {} });
        assert.equal(empty.status, 200, empty.text);
        assert.deepEqual(empty.json.data, p);
        await assertNoEvent(empty);
        const same = await h.request({ method: "PATCH", url: `/api/v1/products/${p.id}`, body: { name: p.name, code: p.code } });
        assert.equal(same.status, 200, same.text);
        assert.deepEqual(same.json.data, p);
        await assertNoEvent(same);
      });

      it("409 CONFLICT when the new code belongs to another product", async () => {
        const a = await createProduct();
        const b = await createProduct();
        const r = await h.request({ method: "PATCH", url: `/api/v1/products/${b.id}`, body: { code: a.code } });
        assertError(r, 409, "CONFLICT", /field code/);
        await assertNoEvent(r);
        assert.equal((await h.request({ url: `/api/v1/products/${b.id}` })).json.data.code, b.code);
      });

      it("404 for an unknown product", async () => {
        const r = await h.request({ method: "PATCH", url: `/api/v1/products/${newId("prod")}`, body: { name: "x" } });
        assertError(r, 404, "NOT_FOUND");
      });

      it("400 INVALID_JSON for an unknown field or a wrong type; 422 VALIDATION_ERROR for a rule broken", async () => {
        const p = await createProduct();
        assertError(await h.request({ method: "PATCH", url: `/api/v1/products/${p.id}`, body: { id: "prod_x" } }), 400, "INVALID_JSON", /field id: unknown field/);
        assertError(await h.request({ method: "PATCH", url: `/api/v1/products/${p.id}`, body: { name: 5 } }), 400, "INVALID_JSON", /field name/);
        assertError(await h.request({ method: "PATCH", url: `/api/v1/products/${p.id}`, body: { name: "" } }), 422, "VALIDATION_ERROR", /field name/);
        assertError(await h.request({ method: "PATCH", url: `/api/v1/products/${p.id}`, body: { code: "has space" } }), 422, "VALIDATION_ERROR", /field code/);
      });
    });

    describe("deleteProduct", () => {
      it("204 with an empty body; the product is gone; one product.deleted event", async () => {
        const p = await createProduct();
        const r = await h.request({ method: "DELETE", url: `/api/v1/products/${p.id}` });
        assert.equal(r.status, 204, r.text);
        assert.equal(r.text, "");
        await assertOneEvent(r, "product.deleted", "product", p.id);
        assertError(await h.request({ url: `/api/v1/products/${p.id}` }), 404, "NOT_FOUND");
        assertError(await h.request({ method: "DELETE", url: `/api/v1/products/${p.id}` }), 404, "NOT_FOUND");
      });

      it("an idempotent retry replays the 204", async () => {
        const p = await createProduct();
        const first = await h.request({ method: "DELETE", url: `/api/v1/products/${p.id}`, idempotencyKey: `del-${p.id}` });
        assert.equal(first.status, 204);
        const again = await h.request({ method: "DELETE", url: `/api/v1/products/${p.id}`, idempotencyKey: `del-${p.id}` });
        assert.equal(again.status, 204);
        assert.equal(again.text, "");
        assert.equal(again.headers["idempotent-replayed"], "true");
      });

      it("409 CONFLICT while policies, licenses, versions or features reference it; the detail says which", async () => {
        const p = await createProduct();
        const pol = await createPolicy(p.id);
        await createLicense(p.id, pol.id);
        await h.request({ url: `/api/v1/products/${p.id}/versions`, body: { version: "1.0.0" } });
        await h.request({ url: `/api/v1/products/${p.id}/features`, body: { name: "Export", code: "export" } });
        const r = await h.request({ method: "DELETE", url: `/api/v1/products/${p.id}` });
        assertError(r, 409, "CONFLICT", /1 policy, 1 license, 1 version, 1 feature/);
        await assertNoEvent(r);
        assert.equal((await h.request({ url: `/api/v1/products/${p.id}` })).status, 200);
      });

      it("409 CONFLICT for orders, subscriptions and custom-field definitions too", async () => {
        const db = h.lk.store.db;
        const now = h.clock.now();
        const base = { metadata: "{}", created_at: now, updated_at: now };
        const withSub = await createProduct();
        await db
          .insertInto("subscriptions")
          .values({
            id: newId("sub", now),
            product_id: withSub.id,
            customer_id: null,
            external_system: "stripe",
            external_id: "sub_1",
            status: "active",
            current_period_start: now,
            current_period_end: now + 86_400_000,
            cancel_at_period_end: 0,
            canceled_at: null,
            ...base,
          })
          .execute();
        assertError(await h.request({ method: "DELETE", url: `/api/v1/products/${withSub.id}` }), 409, "CONFLICT", /1 subscription/);
        const withOrder = await createProduct();
        await db
          .insertInto("orders")
          .values({
            id: newId("ord", now),
            product_id: withOrder.id,
            customer_id: null,
            subscription_id: null,
            external_system: "stripe",
            external_id: "in_1",
            status: "paid",
            period_start: null,
            period_end: null,
            ...base,
          })
          .execute();
        assertError(await h.request({ method: "DELETE", url: `/api/v1/products/${withOrder.id}` }), 409, "CONFLICT", /1 order/);
        const withField = await createProduct();
        for (const code of ["seats", "region"]) {
          await db
            .insertInto("custom_field_definitions")
            .values({
              id: newId("fld", now),
              product_id: withField.id,
              resource_type: "license",
              code,
              name: code,
              value_type: "string",
              is_required: 0,
              enum_options: "[]",
              ...base,
            })
            .execute();
        }
        assertError(await h.request({ method: "DELETE", url: `/api/v1/products/${withField.id}` }), 409, "CONFLICT", /2 custom-field definitions/);
      });

      it("404 for an unknown product", async () => {
        assertError(await h.request({ method: "DELETE", url: `/api/v1/products/${newId("prod")}` }), 404, "NOT_FOUND");
      });
    });

    // ---------- versions ----------

    describe("createProductVersion / listProductVersions", () => {
      it("creates a version; released_at defaults to server time; one product_version.created event", async () => {
        const p = await createProduct();
        const r = await h.request({ url: `/api/v1/products/${p.id}/versions`, body: { version: "1.0.0", metadata: { channel: "stable" } } });
        assert.equal(r.status, 201, r.text);
        assertOperationResponse("/api/v1/products/{id}/versions", "post", "201", r.json);
        assertContract("ProductVersion", r.json.data);
        assert.equal(r.json.data.product_id, p.id);
        assert.equal(r.json.data.version, "1.0.0");
        assert.equal(r.json.data.released_at, new Date(h.clock.now()).toISOString());
        assert.deepEqual(r.json.data.metadata, { channel: "stable" });
        assert.match(r.json.data.id, /^ver_/);
        const meta = await assertOneEvent(r, "product_version.created", "product_version", r.json.data.id);
        assert.equal(meta.version, "1.0.0");

        const explicit = await h.request({ url: `/api/v1/products/${p.id}/versions`, body: { version: "0.9.0", released_at: "2025-06-01T08:30:00+02:00" } });
        assert.equal(explicit.status, 201, explicit.text);
        assert.equal(explicit.json.data.released_at, "2025-06-01T06:30:00.000Z");
        assert.deepEqual(explicit.json.data.metadata, {});
      });

      it("409 CONFLICT for a version the product already has; another product may reuse it", async () => {
        const p = await createProduct();
        const q = await createProduct();
        assert.equal((await h.request({ url: `/api/v1/products/${p.id}/versions`, body: { version: "2.0" } })).status, 201);
        const dup = await h.request({ url: `/api/v1/products/${p.id}/versions`, body: { version: "2.0" } });
        assertError(dup, 409, "CONFLICT", /field version/);
        await assertNoEvent(dup);
        assert.equal((await h.request({ url: `/api/v1/products/${q.id}/versions`, body: { version: "2.0" } })).status, 201);
      });

      it("404 for an unknown product, on create and on list", async () => {
        const id = newId("prod");
        assertError(await h.request({ url: `/api/v1/products/${id}/versions`, body: { version: "1" } }), 404, "NOT_FOUND");
        assertError(await h.request({ url: `/api/v1/products/${id}/versions` }), 404, "NOT_FOUND");
      });

      it("400 INVALID_JSON for an unknown field or wrong type; 422 for a missing/blank version or a bad released_at", async () => {
        const p = await createProduct();
        const url = `/api/v1/products/${p.id}/versions`;
        assertError(await h.request({ url, body: { version: "1", eligible: true } }), 400, "INVALID_JSON", /field eligible/);
        assertError(await h.request({ url, body: { version: 1 } }), 400, "INVALID_JSON", /field version/);
        assertError(await h.request({ url, body: {} }), 422, "VALIDATION_ERROR", /field version: is required/);
        assertError(await h.request({ url, body: { version: "" } }), 422, "VALIDATION_ERROR", /field version/);
        assertError(await h.request({ url, body: { version: " 1.0" } }), 422, "VALIDATION_ERROR", /field version/);
        assertError(await h.request({ url, body: { version: "1.0", released_at: "yesterday" } }), 422, "VALIDATION_ERROR", /field released_at/);
      });

      it("lists newest first with a cursor, every version once", async () => {
        const p = await createProduct();
        const created: string[] = [];
        for (const v of ["1.0", "1.1", "1.2", "2.0", "2.1"]) {
          const r = await h.request({ url: `/api/v1/products/${p.id}/versions`, body: { version: v } });
          created.push(r.json.data.id);
        }
        const ids = await walk(`/api/v1/products/${p.id}/versions`, "/api/v1/products/{id}/versions");
        assert.deepEqual(ids, [...created].reverse());
        const other = await createProduct();
        const empty = await h.request({ url: `/api/v1/products/${other.id}/versions` });
        assert.deepEqual(empty.json.data, []);
        assert.equal(empty.json.page_info.next_cursor, null);
      });
    });

    // ---------- policies ----------

    describe("createPolicy", () => {
      it("409 CONFLICT for a code another policy of the product uses; another product may reuse it", async () => {
        const p = await createProduct();
        const a = await createPolicy(p.id);
        const dup = await h.request({ url: `/api/v1/products/${p.id}/policies`, body: { name: "Again", code: a.code, license_type: "perpetual" } });
        assertError(dup, 409, "CONFLICT", new RegExp(`field code: "${a.code}" is already used by policy ${a.id}`));
        await assertNoEvent(dup);
        await createPolicy((await createProduct()).id, { code: a.code });
      });
    });

    describe("updatePolicy", () => {
      it("changes v1 and D11 fields, records policy.updated with the changed names, and bumps nothing on licenses", async () => {
        const p = await createProduct();
        const pol = await createPolicy(p.id, { duration_days: 30 });
        const lic = await createLicense(p.id, pol.id);
        h.clock.advance(5000);
        const body = {
          name: "Team",
          max_floating_users: 5,
          floating_timeout_minutes: 15,
          require_heartbeat: true,
          max_activations: 3,
          allow_vm: false,
          grace_period_days: 7,
          metadata: { plan: "team" },
        };
        const r = await h.request({ method: "PATCH", url: `/api/v1/policies/${pol.id}`, body });
        assert.equal(r.status, 200, r.text);
        assertOperationResponse("/api/v1/policies/{id}", "patch", "200", r.json);
        assertContract("Policy", r.json.data);
        for (const [k, v] of Object.entries(body)) assert.deepEqual(r.json.data[k], v, k);
        assert.equal(r.json.data.code, pol.code);
        assert.equal(r.json.data.duration_days, 30);
        assert.equal(r.json.data.updated_at, new Date(h.clock.now()).toISOString());
        const meta = await assertOneEvent(r, "policy.updated", "policy", pol.id);
        assert.deepEqual(new Set(meta.changed as string[]), new Set(Object.keys(body)));
        assert.deepEqual((await h.request({ url: `/api/v1/policies/${pol.id}` })).json.data, r.json.data);
        const after = await h.request({ url: `/api/v1/licenses/${lic.id}` });
        assert.equal(after.json.data.entitlement_version, lic.entitlement_version);
      });

      it("duration_days: null unsets it; only the fields that differ count as changed", async () => {
        const p = await createProduct();
        const pol = await createPolicy(p.id, { duration_days: 30, max_activations: 2 });
        const r = await h.request({ method: "PATCH", url: `/api/v1/policies/${pol.id}`, body: { duration_days: null, max_activations: 2 } });
        assert.equal(r.status, 200, r.text);
        assert.equal("duration_days" in r.json.data, false);
        const meta = await assertOneEvent(r, "policy.updated", "policy", pol.id);
        assert.deepEqual(meta.changed, ["duration_days"]);
      });

      it("an empty body is a no-op: 200, unchanged, no event", async () => {
        const p = await createProduct();
        const pol = await createPolicy(p.id);
        const before = (await h.request({ url: `/api/v1/policies/${pol.id}` })).json.data;
        h.clock.advance(1000);
        const r = await h.request({ method: "PATCH", url: `/api/v1/policies/${pol.id}`, body: {} });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json.data, before);
        await assertNoEvent(r);
      });

      it("license_type may change while no license uses the policy", async () => {
        const p = await createProduct();
        const pol = await createPolicy(p.id);
        const r = await h.request({ method: "PATCH", url: `/api/v1/policies/${pol.id}`, body: { license_type: "perpetual" } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.data.license_type, "perpetual");
        await assertOneEvent(r, "policy.updated", "policy", pol.id);
      });

      it("409 CONFLICT for a code another policy of the product uses, or a license_type change while licenses use it", async () => {
        const p = await createProduct();
        const a = await createPolicy(p.id);
        const b = await createPolicy(p.id);
        const dup = await h.request({ method: "PATCH", url: `/api/v1/policies/${b.id}`, body: { code: a.code } });
        assertError(dup, 409, "CONFLICT", /field code/);
        await assertNoEvent(dup);
        // the same code on another product's policy is fine
        const other = await createPolicy((await createProduct()).id);
        assert.equal((await h.request({ method: "PATCH", url: `/api/v1/policies/${other.id}`, body: { code: a.code } })).status, 200);

        await createLicense(p.id, a.id);
        const typeChange = await h.request({ method: "PATCH", url: `/api/v1/policies/${a.id}`, body: { license_type: "perpetual", name: "x" } });
        assertError(typeChange, 409, "CONFLICT", /field license_type: .*1 license uses/);
        await assertNoEvent(typeChange);
        const unchanged = (await h.request({ url: `/api/v1/policies/${a.id}` })).json.data;
        assert.equal(unchanged.license_type, "subscription");
        assert.equal(unchanged.name, "Policy");
        // naming the current type is not a change
        assert.equal((await h.request({ method: "PATCH", url: `/api/v1/policies/${a.id}`, body: { license_type: "subscription" } })).status, 200);
      });

      it("404 for an unknown policy", async () => {
        assertError(await h.request({ method: "PATCH", url: `/api/v1/policies/${newId("pol")}`, body: { name: "x" } }), 404, "NOT_FOUND");
      });

      it("400 INVALID_JSON for unknown fields and wrong types; 422 for values outside the create limits", async () => {
        const p = await createProduct();
        const pol = await createPolicy(p.id);
        const url = `/api/v1/policies/${pol.id}`;
        const patch = (body: unknown) => h.request({ method: "PATCH", url, body });
        assertError(await patch({ product_id: p.id }), 400, "INVALID_JSON", /field product_id: unknown field/);
        assertError(await patch({ require_heartbeat: "yes" }), 400, "INVALID_JSON", /field require_heartbeat/);
        assertError(await patch({ max_activations: 1.5 }), 400, "INVALID_JSON", /field max_activations/);
        assertError(await patch({ license_type: "lifetime" }), 422, "VALIDATION_ERROR", /field license_type/);
        assertError(await patch({ max_floating_users: -1 }), 422, "VALIDATION_ERROR", /field max_floating_users: must be >= 0/);
        assertError(await patch({ floating_timeout_minutes: 0 }), 422, "VALIDATION_ERROR", /field floating_timeout_minutes/);
        assertError(await patch({ max_activations: 0 }), 422, "VALIDATION_ERROR", /field max_activations/);
        assertError(await patch({ duration_days: 0 }), 422, "VALIDATION_ERROR", /field duration_days/);
        assertError(await patch({ duration_days: "30" }), 400, "INVALID_JSON", /field duration_days/);
        assertError(await patch({ name: "" }), 422, "VALIDATION_ERROR", /field name/);
      });
    });

    describe("deletePolicy", () => {
      it("204 with an empty body; the policy is gone; one policy.deleted event", async () => {
        const p = await createProduct();
        const pol = await createPolicy(p.id);
        const r = await h.request({ method: "DELETE", url: `/api/v1/policies/${pol.id}` });
        assert.equal(r.status, 204, r.text);
        assert.equal(r.text, "");
        const meta = await assertOneEvent(r, "policy.deleted", "policy", pol.id);
        assert.equal(meta.product_id, p.id);
        assertError(await h.request({ url: `/api/v1/policies/${pol.id}` }), 404, "NOT_FOUND");
        // the product is free again once its only policy is gone
        assert.equal((await h.request({ method: "DELETE", url: `/api/v1/products/${p.id}` })).status, 204);
      });

      it("409 CONFLICT while licenses use it", async () => {
        const p = await createProduct();
        const pol = await createPolicy(p.id);
        await createLicense(p.id, pol.id);
        await createLicense(p.id, pol.id);
        const r = await h.request({ method: "DELETE", url: `/api/v1/policies/${pol.id}` });
        assertError(r, 409, "CONFLICT", /2 licenses/);
        await assertNoEvent(r);
        assert.equal((await h.request({ url: `/api/v1/policies/${pol.id}` })).status, 200);
      });

      it("404 for an unknown policy", async () => {
        assertError(await h.request({ method: "DELETE", url: `/api/v1/policies/${newId("pol")}` }), 404, "NOT_FOUND");
      });
    });

    // ---------- races ----------

    describe("concurrent writes", () => {
      it("parallel creates of one feature code or version: one 201, the rest 409 CONFLICT, never 500", async () => {
        const p = await createProduct();
        for (const [url, body] of [
          [`/api/v1/products/${p.id}/features`, { name: "Race", code: "race" }],
          [`/api/v1/products/${p.id}/versions`, { version: "9.9.9" }],
        ] as const) {
          const answers = await Promise.all(Array.from({ length: 6 }, () => h.request({ url, body })));
          const statuses = answers.map((a) => a.status).sort();
          assert.deepEqual(statuses, [201, 409, 409, 409, 409, 409], answers.map((a) => a.text).join("\n"));
        }
      });

      it("deleting a product while a policy is created on it: one wins cleanly, never 500", async () => {
        for (let i = 0; i < 3; i++) {
          const p = await createProduct();
          const [del, pol] = await Promise.all([
            h.request({ method: "DELETE", url: `/api/v1/products/${p.id}` }),
            h.request({ url: `/api/v1/products/${p.id}/policies`, body: { name: "P", code: "p", license_type: "perpetual" } }),
          ]);
          if (del.status === 204) assert.ok([404, 409].includes(pol.status), pol.text);
          else {
            assertError(del, 409, "CONFLICT");
            assert.equal(pol.status, 201, pol.text);
          }
        }
      });
    });

    // ---------- features ----------

    describe("createFeature / getFeature / listFeaturesByProduct", () => {
      it("creates a feature, reads it back by id, one feature.created event", async () => {
        const p = await createProduct();
        const r = await h.request({ url: `/api/v1/products/${p.id}/features`, body: { name: "PDF export", code: "pdf.export", metadata: { unit: "page" } } });
        assert.equal(r.status, 201, r.text);
        assertOperationResponse("/api/v1/products/{id}/features", "post", "201", r.json);
        assertContract("Feature", r.json.data);
        assert.match(r.json.data.id, /^feat_/);
        assert.deepEqual(
          { product_id: r.json.data.product_id, code: r.json.data.code, name: r.json.data.name, metadata: r.json.data.metadata },
          { product_id: p.id, code: "pdf.export", name: "PDF export", metadata: { unit: "page" } },
        );
        const meta = await assertOneEvent(r, "feature.created", "feature", r.json.data.id);
        assert.equal(meta.code, "pdf.export");
        const got = await h.request({ url: `/api/v1/features/${r.json.data.id}` });
        assert.equal(got.status, 200, got.text);
        assertOperationResponse("/api/v1/features/{id}", "get", "200", got.json);
        assert.deepEqual(got.json.data, r.json.data);
      });

      it("409 CONFLICT for a code the product already has; another product may reuse it", async () => {
        const p = await createProduct();
        const url = `/api/v1/products/${p.id}/features`;
        assert.equal((await h.request({ url, body: { name: "Seats", code: "seats" } })).status, 201);
        const dup = await h.request({ url, body: { name: "Seats again", code: "seats" } });
        assertError(dup, 409, "CONFLICT", /field code/);
        await assertNoEvent(dup);
        const q = await createProduct();
        assert.equal((await h.request({ url: `/api/v1/products/${q.id}/features`, body: { name: "Seats", code: "seats" } })).status, 201);
      });

      it("404 for an unknown product (create, list) and an unknown feature (get)", async () => {
        const id = newId("prod");
        assertError(await h.request({ url: `/api/v1/products/${id}/features`, body: { name: "x", code: "x" } }), 404, "NOT_FOUND");
        assertError(await h.request({ url: `/api/v1/products/${id}/features` }), 404, "NOT_FOUND");
        assertError(await h.request({ url: `/api/v1/features/${newId("feat")}` }), 404, "NOT_FOUND");
      });

      it("400 INVALID_JSON for an unknown field or wrong type; 422 for a missing name or a bad code", async () => {
        const p = await createProduct();
        const url = `/api/v1/products/${p.id}/features`;
        assertError(await h.request({ url, body: { name: "x", code: "x", quota: 5 } }), 400, "INVALID_JSON", /field quota: unknown field/);
        assertError(await h.request({ url, body: { name: "x", code: "x", metadata: [] } }), 400, "INVALID_JSON", /field metadata/);
        assertError(await h.request({ url, body: { code: "x" } }), 422, "VALIDATION_ERROR", /field name: is required/);
        assertError(await h.request({ url, body: { name: "x", code: "no spaces" } }), 422, "VALIDATION_ERROR", /field code/);
      });

      it("lists newest first with a cursor, only this product's features", async () => {
        const p = await createProduct();
        const other = await createProduct();
        await h.request({ url: `/api/v1/products/${other.id}/features`, body: { name: "Other", code: "other" } });
        const created: string[] = [];
        for (const code of ["a", "b", "c", "d", "e"]) {
          const r = await h.request({ url: `/api/v1/products/${p.id}/features`, body: { name: code.toUpperCase(), code } });
          created.push(r.json.data.id);
        }
        const ids = await walk(`/api/v1/products/${p.id}/features`, "/api/v1/products/{id}/features");
        assert.deepEqual(ids, [...created].reverse());
        assertError(await h.request({ url: `/api/v1/products/${p.id}/features?limit=0` }), 400, "INVALID_QUERY");
      });
    });
  });
}
