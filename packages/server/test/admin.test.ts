// Admin-side management: customer update/delete, API keys (create, list, revoke, rotate — the token
// shown once and stored only hashed, a revoked or rotated-out token refused at once) and webhook
// endpoints (secret generated or given, sealed at rest, URL and event-type rules, name+url conflicts).
// Every write is checked for its single audit event.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConfigError, loadConfig } from "../src/config.js";
import { open } from "../src/crypto/aead.js";
import { webhookUrlProblem } from "../src/domain/webhook-url.js";
import { insertApiKey } from "../src/store/api-keys.js";
import { openWebhookSecret } from "../src/store/webhook-endpoints.js";
import { assertContract, assertOperationResponse } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { ADMIN_TOKEN, type Harness, issueLicense, startHarness } from "./helpers/harness.js";

const UNKNOWN = "x_01AAAAAAAAAAAAAAAAAAAAAAAA";
const WEBHOOK_ONLY = "lkm_WebhookWriteOnlyToken000000000000000000";

for (const engine of ENGINES) {
  describe(`admin: customers, API keys, webhook endpoints [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
      await insertApiKey(h.lk.store.db, h.lk.hasher, { name: "webhooks", token: WEBHOOK_ONLY, scopes: ["webhook:write"] }, h.clock.now());
    });
    after(async () => h?.close());

    const events = (type: string, resourceId: string) =>
      h.lk.store.db.selectFrom("audit_events").selectAll().where("event_type", "=", type).where("resource_id", "=", resourceId).execute();
    const eventCount = async () => Number((await h.lk.store.db.selectFrom("audit_events").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n);
    const expectError = (res: { status: number; json: { error?: { code: string; detail?: string } } }, status: number, code: string, detail?: RegExp) => {
      assert.equal(res.status, status, JSON.stringify(res.json));
      assert.equal(res.json.error?.code, code);
      if (detail) assert.match(res.json.error?.detail ?? "", detail);
    };
    let n = 0;
    const customer = async (extra: Record<string, unknown> = {}) => {
      n++;
      const r = await h.request({ url: "/api/v1/customers", body: { name: `Customer ${n}`, code: `cust-${n}`, ...extra } });
      assert.equal(r.status, 201, r.text);
      return r.json.data;
    };

    // ---------------------------------------------------------------- customers

    describe("updateCustomer", () => {
      it("changes the given fields, replaces metadata, clears email with \"\", and records customer.updated", async () => {
        const c = await customer({ email: "a@example.test", metadata: { tier: "gold", region: "eu" } });
        h.clock.advance(1000);
        const r = await h.request({ method: "PATCH", url: `/api/v1/customers/${c.id}`, body: { name: "Renamed", metadata: { tier: "silver" } } });
        assert.equal(r.status, 200, r.text);
        assertOperationResponse("/api/v1/customers/{id}", "patch", "200", r.json);
        assert.equal(r.json.data.name, "Renamed");
        assert.equal(r.json.data.code, c.code);
        assert.equal(r.json.data.email, "a@example.test");
        assert.deepEqual(r.json.data.metadata, { tier: "silver" });
        assert.equal(r.json.data.created_at, c.created_at);
        assert.equal(r.json.data.updated_at, new Date(h.clock.now()).toISOString());
        const ev = await events("customer.updated", c.id);
        assert.equal(ev.length, 1);
        assert.deepEqual(JSON.parse(ev[0]!.metadata).changed, ["name", "metadata"]);
        assert.equal(ev[0]!.request_id, r.json.meta.request_id);

        const cleared = await h.request({ method: "PATCH", url: `/api/v1/customers/${c.id}`, body: { email: "", code: `${c.code}-new` } });
        assert.equal(cleared.status, 200, cleared.text);
        assertContract("Customer", cleared.json.data);
        assert.equal(cleared.json.data.email, undefined, "a cleared email is omitted, not null");
        assert.equal(cleared.json.data.code, `${c.code}-new`);
        const got = await h.request({ url: `/api/v1/customers/${c.id}` });
        assert.deepEqual(got.json.data, cleared.json.data);
        assert.equal((await events("customer.updated", c.id)).length, 2);
      });

      it("an empty or unchanged patch answers the customer and records nothing", async () => {
        const c = await customer();
        const before = await eventCount();
        const empty = await h.request({ method: "PATCH", url: `/api/v1/customers/${c.id}`, body: {} });
        assert.equal(empty.status, 200);
        assert.deepEqual(empty.json.data, c);
        const same = await h.request({ method: "PATCH", url: `/api/v1/customers/${c.id}`, body: { name: c.name, code: c.code } });
        assert.equal(same.status, 200);
        assert.equal(await eventCount(), before);
      });

      it("a code another customer uses → 409 CONFLICT naming the field", async () => {
        const a = await customer();
        const b = await customer();
        const r = await h.request({ method: "PATCH", url: `/api/v1/customers/${b.id}`, body: { code: a.code } });
        expectError(r, 409, "CONFLICT", /field code/);
        assert.equal((await events("customer.updated", b.id)).length, 0);
      });

      it("an unknown id → 404 NOT_FOUND", async () => {
        expectError(await h.request({ method: "PATCH", url: `/api/v1/customers/${UNKNOWN}`, body: { name: "X" } }), 404, "NOT_FOUND");
      });

      it("an unknown field or a wrong JSON type → 400 INVALID_JSON", async () => {
        const c = await customer();
        expectError(await h.request({ method: "PATCH", url: `/api/v1/customers/${c.id}`, body: { nickname: "x" } }), 400, "INVALID_JSON", /nickname/);
        expectError(await h.request({ method: "PATCH", url: `/api/v1/customers/${c.id}`, body: { metadata: "x" } }), 400, "INVALID_JSON", /metadata/);
      });

      it("a bad email, an empty name or a bad code → 422 VALIDATION_ERROR naming the field", async () => {
        const c = await customer();
        expectError(await h.request({ method: "PATCH", url: `/api/v1/customers/${c.id}`, body: { email: "nope" } }), 422, "VALIDATION_ERROR", /field email/);
        expectError(await h.request({ method: "PATCH", url: `/api/v1/customers/${c.id}`, body: { name: "" } }), 422, "VALIDATION_ERROR", /field name/);
        expectError(await h.request({ method: "PATCH", url: `/api/v1/customers/${c.id}`, body: { code: "-bad code" } }), 422, "VALIDATION_ERROR", /field code/);
      });
    });

    describe("deleteCustomer", () => {
      it("deletes an unreferenced customer (204, empty body) with its custom-field values, and records customer.deleted", async () => {
        const c = await customer();
        const now = h.clock.now();
        const product = await h.request({ url: "/api/v1/products", body: { name: "CF", code: `cf-${n}` } });
        await h.lk.store.db
          .insertInto("custom_field_definitions")
          .values({
            id: `fld_01AAAAAAAAAAAAAAAAAAAAA${String(n).padStart(3, "0")}`,
            product_id: product.json.data.id,
            resource_type: "customer",
            code: "tier",
            name: "Tier",
            value_type: "string",
            is_required: 0,
            enum_options: "[]",
            metadata: "{}",
            created_at: now,
            updated_at: now,
          })
          .execute();
        await h.lk.store.db
          .insertInto("custom_field_values")
          .values({
            definition_id: `fld_01AAAAAAAAAAAAAAAAAAAAA${String(n).padStart(3, "0")}`,
            resource_id: c.id,
            string_value: "gold",
            integer_value: null,
            boolean_value: null,
            datetime_value: null,
            enum_value: null,
            created_at: now,
            updated_at: now,
          })
          .execute();
        const r = await h.request({ method: "DELETE", url: `/api/v1/customers/${c.id}` });
        assert.equal(r.status, 204, r.text);
        assert.equal(r.text, "");
        expectError(await h.request({ url: `/api/v1/customers/${c.id}` }), 404, "NOT_FOUND");
        const values = await h.lk.store.db.selectFrom("custom_field_values").selectAll().where("resource_id", "=", c.id).execute();
        assert.equal(values.length, 0);
        const ev = await events("customer.deleted", c.id);
        assert.equal(ev.length, 1);
        assert.equal(JSON.parse(ev[0]!.metadata).code, c.code);
      });

      it("a customer a license or a subscription references → 409 CONFLICT saying what", async () => {
        const c = await customer();
        await issueLicense(h, {}, { customer_id: c.id });
        expectError(await h.request({ method: "DELETE", url: `/api/v1/customers/${c.id}` }), 409, "CONFLICT", /1 license/);

        const d = await customer();
        const product = await h.request({ url: "/api/v1/products", body: { name: "Subs", code: `subs-${n}` } });
        const now = h.clock.now();
        await h.lk.store.db
          .insertInto("subscriptions")
          .values({
            id: "sub_01AAAAAAAAAAAAAAAAAAAAAAAA",
            product_id: product.json.data.id,
            customer_id: d.id,
            external_system: "stripe",
            external_id: "sub_x",
            status: "active",
            current_period_start: now,
            current_period_end: now + 86_400_000,
            cancel_at_period_end: 0,
            canceled_at: null,
            metadata: "{}",
            created_at: now,
            updated_at: now,
          })
          .execute();
        expectError(await h.request({ method: "DELETE", url: `/api/v1/customers/${d.id}` }), 409, "CONFLICT", /1 subscription/);
        assert.equal((await h.request({ url: `/api/v1/customers/${d.id}` })).status, 200, "still there");
        assert.equal((await events("customer.deleted", d.id)).length, 0);
      });

      it("an unknown id → 404 NOT_FOUND", async () => {
        expectError(await h.request({ method: "DELETE", url: `/api/v1/customers/${UNKNOWN}` }), 404, "NOT_FOUND");
      });
    });

    // ---------------------------------------------------------------- API keys

    describe("createAPIKey / listAPIKeys", () => {
      it("creates a key: the token is shown once, stored only as its keyed hash, defaults to admin, and works", async () => {
        const r = await h.request({ url: "/api/v1/api-keys", body: { name: "ci" } });
        assert.equal(r.status, 201, r.text);
        assertOperationResponse("/api/v1/api-keys", "post", "201", r.json);
        const { api_key: key, token } = r.json.data;
        assert.match(token, /^lkm_[A-Za-z0-9]{40}$/);
        assert.deepEqual(key.scopes, ["admin"]);
        assert.deepEqual(key.allowed_cidrs, []);
        assert.equal(key.is_active, true);
        assert.equal(key.key_prefix, token.slice(0, key.key_prefix.length));
        assert.ok(key.key_prefix.length < 16);
        const row = await h.lk.store.db.selectFrom("api_keys").selectAll().where("id", "=", key.id).executeTakeFirstOrThrow();
        assert.equal(row.token_hash, h.lk.hasher.hash(token));
        assert.ok(!JSON.stringify(row).includes(token.slice(4)), "the token is nowhere in the row");
        assert.equal((await h.request({ url: "/api/v1/customers", token })).status, 200, "the new token works");

        const ev = await events("api_key.created", key.id);
        assert.equal(ev.length, 1);
        assert.ok(!ev[0]!.metadata.includes(token.slice(4)), "the event never holds the token");
        assert.deepEqual(JSON.parse(ev[0]!.metadata).scopes, ["admin"]);

        const list = await h.request({ url: "/api/v1/api-keys" });
        assert.equal(list.status, 200);
        assertOperationResponse("/api/v1/api-keys", "get", "200", list.json);
        assert.ok(!list.text.includes(token.slice(4)), "list never shows a token");
        assert.ok(!list.text.includes(row.token_hash), "nor a hash");
        assert.deepEqual(
          list.json.data.find((k: { id: string }) => k.id === key.id),
          key,
        );
        for (const k of list.json.data) assertContract("APIKey", k);
      });

      it("scopes, CIDRs (IPv4 and IPv6) and a future expiry are kept; a scoped key is limited to them", async () => {
        const expires = new Date(h.clock.now() + 86_400_000).toISOString();
        const r = await h.request({
          url: "/api/v1/api-keys",
          body: { name: "reader", scopes: ["product:read", "event:read", "product:read"], allowed_cidrs: ["127.0.0.0/8", "::1/128", "2001:db8::/32"], expires_at: expires },
        });
        assert.equal(r.status, 201, r.text);
        const { api_key: key, token } = r.json.data;
        assert.deepEqual(key.scopes, ["product:read", "event:read"]);
        assert.deepEqual(key.allowed_cidrs, ["127.0.0.0/8", "::1/128", "2001:db8::/32"]);
        assert.equal(key.expires_at, expires);
        assert.equal((await h.request({ url: "/api/v1/products", token })).status, 200);
        expectError(await h.request({ url: "/api/v1/customers", token }), 403, "TOKEN_SCOPE_DENIED", /requires admin/);

        const elsewhere = await h.request({ url: "/api/v1/api-keys", body: { name: "elsewhere", allowed_cidrs: ["10.0.0.0/8"] } });
        expectError(await h.request({ url: "/api/v1/products", token: elsewhere.json.data.token }), 401, "UNAUTHORIZED", /address/);
      });

      it("an unknown scope, a bad CIDR or a past expiry → 422 VALIDATION_ERROR naming the field and entry", async () => {
        const before = await eventCount();
        expectError(
          await h.request({ url: "/api/v1/api-keys", body: { name: "x", scopes: ["product:read", "root"] } }),
          422,
          "VALIDATION_ERROR",
          /field scopes\[1\]: unknown scope "root"/,
        );
        expectError(await h.request({ url: "/api/v1/api-keys", body: { name: "x", scopes: [] } }), 422, "VALIDATION_ERROR", /field scopes/);
        expectError(
          await h.request({ url: "/api/v1/api-keys", body: { name: "x", allowed_cidrs: ["10.0.0.0/8", "10.0.0.0/33"] } }),
          422,
          "VALIDATION_ERROR",
          /field allowed_cidrs\[1\]: "10.0.0.0\/33"/,
        );
        expectError(
          await h.request({ url: "/api/v1/api-keys", body: { name: "x", allowed_cidrs: ["2001:db8::/129"] } }),
          422,
          "VALIDATION_ERROR",
          /field allowed_cidrs\[0\]/,
        );
        expectError(
          await h.request({ url: "/api/v1/api-keys", body: { name: "x", expires_at: new Date(h.clock.now() - 1000).toISOString() } }),
          422,
          "VALIDATION_ERROR",
          /field expires_at: must be in the future/,
        );
        expectError(await h.request({ url: "/api/v1/api-keys", body: { name: "" } }), 422, "VALIDATION_ERROR", /field name/);
        assert.equal(await eventCount(), before, "nothing was written");
      });

      it("an unknown field or a wrong JSON type → 400 INVALID_JSON", async () => {
        expectError(await h.request({ url: "/api/v1/api-keys", body: { name: "x", token: "lkm_mine" } }), 400, "INVALID_JSON", /token/);
        expectError(await h.request({ url: "/api/v1/api-keys", body: { name: "x", scopes: "admin" } }), 400, "INVALID_JSON", /scopes/);
      });

      it("an Idempotency-Key replays the same answer (same token) and refuses another body with 409", async () => {
        const first = await h.request({ url: "/api/v1/api-keys", body: { name: "idem" }, idempotencyKey: "create-key-1" });
        assert.equal(first.status, 201);
        const again = await h.request({ url: "/api/v1/api-keys", body: { name: "idem" }, idempotencyKey: "create-key-1" });
        assert.equal(again.status, 201);
        assert.equal(again.headers["idempotent-replayed"], "true");
        assert.equal(again.json.data.token, first.json.data.token);
        assert.equal((await events("api_key.created", first.json.data.api_key.id)).length, 1);
        expectError(await h.request({ url: "/api/v1/api-keys", body: { name: "other" }, idempotencyKey: "create-key-1" }), 409, "IDEMPOTENCY_CONFLICT");
      });

      it("lists newest first and pages with the cursor", async () => {
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) ids.push((await h.request({ url: "/api/v1/api-keys", body: { name: `page ${i}` } })).json.data.api_key.id);
        const first = await h.request({ url: "/api/v1/api-keys?limit=2" });
        assert.deepEqual(first.json.data.map((k: { id: string }) => k.id), [ids[2], ids[1]]);
        const second = await h.request({ url: `/api/v1/api-keys?limit=2&cursor=${first.json.page_info.next_cursor}` });
        assert.equal(second.json.data[0].id, ids[0]);
      });
    });

    describe("revokeAPIKey", () => {
      it("revokes a key: 204, refused with 401 at once, shown inactive with revoked_at, api_key.revoked recorded once", async () => {
        const created = await h.request({ url: "/api/v1/api-keys", body: { name: "to revoke", scopes: ["product:read"] } });
        const { api_key: key, token } = created.json.data;
        assert.equal((await h.request({ url: "/api/v1/products", token })).status, 200);
        const r = await h.request({ method: "DELETE", url: `/api/v1/api-keys/${key.id}` });
        assert.equal(r.status, 204, r.text);
        assert.equal(r.text, "");
        expectError(await h.request({ url: "/api/v1/products", token }), 401, "UNAUTHORIZED", /revoked/);
        const list = await h.request({ url: "/api/v1/api-keys?limit=200" });
        const shown = list.json.data.find((k: { id: string }) => k.id === key.id);
        assert.equal(shown.is_active, false);
        assert.equal(shown.revoked_at, new Date(h.clock.now()).toISOString());
        const ev = await events("api_key.revoked", key.id);
        assert.equal(ev.length, 1);
        assert.ok(!ev[0]!.metadata.includes(token.slice(4)));
        const again = await h.request({ method: "DELETE", url: `/api/v1/api-keys/${key.id}` });
        assert.equal(again.status, 204, "revoking a revoked key changes nothing");
        assert.equal((await events("api_key.revoked", key.id)).length, 1);
      });

      it("a key may revoke itself; its next request is refused", async () => {
        const created = await h.request({ url: "/api/v1/api-keys", body: { name: "self" } });
        const { api_key: key, token } = created.json.data;
        const r = await h.request({ method: "DELETE", url: `/api/v1/api-keys/${key.id}`, token });
        assert.equal(r.status, 204);
        expectError(await h.request({ url: "/api/v1/api-keys", token }), 401, "UNAUTHORIZED");
        const ev = await events("api_key.revoked", key.id);
        assert.equal(ev.length, 1);
        assert.equal(ev[0]!.actor_id, key.id);
        assert.equal(JSON.parse(ev[0]!.metadata).self, true);
        assert.equal((await h.request({ url: "/api/v1/customers", token: ADMIN_TOKEN })).status, 200, "other keys are unaffected");
      });

      it("an unknown id → 404 NOT_FOUND", async () => {
        expectError(await h.request({ method: "DELETE", url: `/api/v1/api-keys/${UNKNOWN}` }), 404, "NOT_FOUND");
      });

      it("an Idempotency-Key reused for another request → 409 IDEMPOTENCY_CONFLICT", async () => {
        const created = await h.request({ url: "/api/v1/api-keys", body: { name: "idem revoke" } });
        const url = `/api/v1/api-keys/${created.json.data.api_key.id}`;
        assert.equal((await h.request({ method: "DELETE", url, idempotencyKey: "revoke-1" })).status, 204);
        const replay = await h.request({ method: "DELETE", url, idempotencyKey: "revoke-1" });
        assert.equal(replay.status, 204);
        assert.equal(replay.headers["idempotent-replayed"], "true");
        expectError(await h.request({ method: "DELETE", url: `${url}?reason=other`, idempotencyKey: "revoke-1" }), 409, "IDEMPOTENCY_CONFLICT");
      });
    });

    describe("rotateAPIKey", () => {
      it("gives the key a new token shown once: the old token stops working at once, the new one works", async () => {
        const created = await h.request({ url: "/api/v1/api-keys", body: { name: "rotating", scopes: ["product:read"] } });
        const { api_key: key, token: oldToken } = created.json.data;
        const r = await h.request({ method: "POST", url: `/api/v1/api-keys/${key.id}/rotate` });
        assert.equal(r.status, 200, r.text);
        assertContract("APIKeyCreateResponse", r.json.data);
        const newToken: string = r.json.data.token;
        assert.match(newToken, /^lkm_[A-Za-z0-9]{40}$/);
        assert.notEqual(newToken, oldToken);
        assert.equal(r.json.data.api_key.id, key.id);
        assert.deepEqual(r.json.data.api_key.scopes, ["product:read"]);
        assert.equal(r.json.data.api_key.key_prefix, newToken.slice(0, key.key_prefix.length));
        expectError(await h.request({ url: "/api/v1/products", token: oldToken }), 401, "UNAUTHORIZED");
        assert.equal((await h.request({ url: "/api/v1/products", token: newToken })).status, 200);
        const row = await h.lk.store.db.selectFrom("api_keys").selectAll().where("id", "=", key.id).executeTakeFirstOrThrow();
        assert.equal(row.token_hash, h.lk.hasher.hash(newToken));
        const ev = await events("api_key.rotated", key.id);
        assert.equal(ev.length, 1);
        assert.ok(!ev[0]!.metadata.includes(newToken.slice(4)) && !ev[0]!.metadata.includes(oldToken.slice(4)));
      });

      it("a revoked key → 409 CONFLICT", async () => {
        const created = await h.request({ url: "/api/v1/api-keys", body: { name: "revoked then rotated" } });
        const id = created.json.data.api_key.id;
        await h.request({ method: "DELETE", url: `/api/v1/api-keys/${id}` });
        expectError(await h.request({ method: "POST", url: `/api/v1/api-keys/${id}/rotate` }), 409, "CONFLICT", /revoked/);
        assert.equal((await events("api_key.rotated", id)).length, 0);
      });

      it("an unknown id → 404 NOT_FOUND", async () => {
        expectError(await h.request({ method: "POST", url: `/api/v1/api-keys/${UNKNOWN}/rotate` }), 404, "NOT_FOUND");
      });
    });

    // ---------------------------------------------------------------- webhook endpoints

    describe("webhook endpoints", () => {
      let secretKey: Buffer;
      before(() => {
        secretKey = h.lk.webhookSecretKey;
      });
      let w = 0;
      const create = async (extra: Record<string, unknown> = {}) => {
        w++;
        const r = await h.request({ url: "/api/v1/webhooks", body: { name: `Hook ${w}`, url: `https://hooks.example.com/${w}`, ...extra } });
        assert.equal(r.status, 201, r.text);
        return r.json.data as { webhook: Record<string, unknown> & { id: string; secret_prefix: string }; secret: string };
      };

      it("createWebhookEndpoint generates a whsec_ secret, shows it once, seals it bound to the endpoint id, and records webhook_endpoint.created", async () => {
        const r = await h.request({
          url: "/api/v1/webhooks",
          token: WEBHOOK_ONLY,
          body: { name: "Primary", url: "https://your-app.example/webhooks/licensekit?token=abc", event_types: ["license.activated", "license.suspended"], is_active: true },
        });
        assert.equal(r.status, 201, r.text);
        assertOperationResponse("/api/v1/webhooks", "post", "201", r.json);
        const { webhook, secret } = r.json.data;
        assert.match(secret, /^whsec_[A-Za-z0-9]{32}$/);
        assert.equal(webhook.secret_prefix, secret.slice(0, webhook.secret_prefix.length));
        assert.ok(webhook.secret_prefix.length <= 10);
        assert.deepEqual(webhook.event_types, ["license.activated", "license.suspended"]);
        assert.equal(webhook.is_active, true);
        assert.equal(webhook.last_delivery_at, undefined);

        const row = await h.lk.store.db.selectFrom("webhook_endpoints").selectAll().where("id", "=", webhook.id).executeTakeFirstOrThrow();
        assert.ok(!JSON.stringify(row).includes(secret.slice(6)), "the secret is stored sealed");
        assert.equal(openWebhookSecret(secretKey, row), secret);
        assert.throws(() => open(secretKey, row.secret_enc, "webhook_endpoint:whk_other"), "the seal is bound to the endpoint id");

        const got = await h.request({ url: `/api/v1/webhooks/${webhook.id}`, token: WEBHOOK_ONLY });
        assert.equal(got.status, 200);
        assertOperationResponse("/api/v1/webhooks/{id}", "get", "200", got.json);
        assert.deepEqual(got.json.data, webhook);
        assert.ok(!got.text.includes(secret.slice(6)), "get never shows the secret");

        const ev = await events("webhook_endpoint.created", webhook.id);
        assert.equal(ev.length, 1);
        assert.ok(!ev[0]!.metadata.includes(secret.slice(6)), "nor does the event");
        const meta = JSON.parse(ev[0]!.metadata);
        assert.equal(meta.url, "https://your-app.example/webhooks/licensekit", "the query string stays out of audit metadata");
        assert.equal(meta.secret_generated, true);
      });

      it("a given secret is kept; event_types defaults to [] (all events); is_active false is kept", async () => {
        const { webhook, secret } = await create({ secret: "my-own-shared-secret-123", is_active: false });
        assert.equal(secret, "my-own-shared-secret-123");
        assert.equal(webhook.secret_prefix, "my-own");
        assert.deepEqual(webhook.event_types, []);
        assert.equal(webhook.is_active, false);
        const row = await h.lk.store.db.selectFrom("webhook_endpoints").selectAll().where("id", "=", webhook.id).executeTakeFirstOrThrow();
        assert.equal(openWebhookSecret(secretKey, row), secret);
      });

      it("createWebhookEndpoint: a bad, local or private url, an unknown event type or a short secret → 422 naming the field", async () => {
        const before = await eventCount();
        const cases: [Record<string, unknown>, RegExp][] = [
          [{ url: "ftp://files.example.com/x" }, /field url: must use http or https/],
          [{ url: "/relative/path" }, /field url/],
          [{ url: "http://127.0.0.1:8080/hook" }, /field url: .*loopback/],
          [{ url: "http://localhost:3000/hook" }, /field url: .*localhost/],
          [{ url: "http://10.1.2.3/hook" }, /field url: .*private/],
          [{ url: "http://192.168.0.10/hook" }, /field url: .*private/],
          [{ url: "http://169.254.169.254/latest/meta-data" }, /field url: .*link-local/],
          [{ url: "http://[::1]/hook" }, /field url: .*loopback/],
          [{ url: "http://[::ffff:127.0.0.1]/hook" }, /field url: .*loopback/],
          [{ url: "http://[fd12::1]/hook" }, /field url: .*private/],
          [{ url: "https://user:pass@hooks.example.com/x" }, /field url: must not embed credentials/],
          [{ event_types: ["license.activated", "license.exploded"] }, /field event_types\[1\]: unknown event type "license.exploded"/],
          [{ secret: "short" }, /field secret/],
          [{ name: "" }, /field name/],
        ];
        for (const [extra, detail] of cases) {
          const r = await h.request({ url: "/api/v1/webhooks", body: { name: "Bad", url: "https://hooks.example.com/bad", ...extra } });
          expectError(r, 422, "VALIDATION_ERROR", detail);
        }
        assert.equal(await eventCount(), before, "nothing was written");
      });

      it("createWebhookEndpoint: the same name and url again → 409 CONFLICT; another url with that name is fine", async () => {
        const { webhook } = await create();
        const dup = await h.request({ url: "/api/v1/webhooks", body: { name: webhook.name, url: webhook.url } });
        expectError(dup, 409, "CONFLICT", new RegExp(`name and url: webhook endpoint ${webhook.id}`));
        const other = await h.request({ url: "/api/v1/webhooks", body: { name: webhook.name, url: `${webhook.url}/v2` } });
        assert.equal(other.status, 201);
      });

      it("createWebhookEndpoint: concurrent creates with one name and url → exactly one 201, the rest 409 (never 500)", async () => {
        const body = { name: "Racer", url: "https://hooks.example.com/race" };
        const answers = await Promise.all(Array.from({ length: 6 }, () => h.request({ url: "/api/v1/webhooks", body })));
        const statuses = answers.map((a) => a.status).sort();
        assert.deepEqual(statuses, [201, 409, 409, 409, 409, 409], answers.map((a) => a.text).join("\n"));
        const rows = await h.lk.store.db.selectFrom("webhook_endpoints").select("id").where("name", "=", "Racer").execute();
        assert.equal(rows.length, 1);
      });

      it("createWebhookEndpoint: an unknown field or a wrong JSON type → 400 INVALID_JSON", async () => {
        expectError(await h.request({ url: "/api/v1/webhooks", body: { name: "x", url: "https://a.example", events: [] } }), 400, "INVALID_JSON", /events/);
        expectError(await h.request({ url: "/api/v1/webhooks", body: { name: "x", url: "https://a.example", event_types: "license.activated" } }), 400, "INVALID_JSON", /event_types/);
      });

      it("listWebhookEndpoints: newest first, never a secret, pages with the cursor", async () => {
        const a = await create();
        const b = await create();
        const list = await h.request({ url: "/api/v1/webhooks?limit=1", token: WEBHOOK_ONLY });
        assert.equal(list.status, 200);
        assertOperationResponse("/api/v1/webhooks", "get", "200", list.json);
        assert.deepEqual(list.json.data, [b.webhook]);
        assert.ok(!list.text.includes(b.secret.slice(6)));
        const next = await h.request({ url: `/api/v1/webhooks?limit=1&cursor=${list.json.page_info.next_cursor}` });
        assert.deepEqual(next.json.data, [a.webhook]);
      });

      it("getWebhookEndpoint: an unknown id → 404 NOT_FOUND", async () => {
        expectError(await h.request({ url: `/api/v1/webhooks/${UNKNOWN}` }), 404, "NOT_FOUND");
      });

      it("updateWebhookEndpoint changes fields and answers the endpoint; webhook_endpoint.updated lists the fields", async () => {
        const { webhook, secret } = await create({ event_types: ["license.created"] });
        h.clock.advance(1000);
        const r = await h.request({
          method: "PATCH",
          url: `/api/v1/webhooks/${webhook.id}`,
          token: WEBHOOK_ONLY,
          body: { name: "Renamed hook", event_types: [], is_active: false, rotate_secret: false },
        });
        assert.equal(r.status, 200, r.text);
        assertOperationResponse("/api/v1/webhooks/{id}", "patch", "200", r.json);
        assertContract("WebhookEndpoint", r.json.data);
        assert.equal(r.json.data.name, "Renamed hook");
        assert.deepEqual(r.json.data.event_types, []);
        assert.equal(r.json.data.is_active, false);
        assert.equal(r.json.data.secret_prefix, webhook.secret_prefix);
        assert.equal(r.json.data.updated_at, new Date(h.clock.now()).toISOString());
        assert.equal(r.json.data.secret, undefined);
        const ev = await events("webhook_endpoint.updated", webhook.id);
        assert.equal(ev.length, 1);
        assert.deepEqual(JSON.parse(ev[0]!.metadata).fields, ["name", "event_types", "is_active"]);
        const row = await h.lk.store.db.selectFrom("webhook_endpoints").selectAll().where("id", "=", webhook.id).executeTakeFirstOrThrow();
        assert.equal(openWebhookSecret(secretKey, row), secret, "the secret is unchanged");

        const before = await eventCount();
        const same = await h.request({ method: "PATCH", url: `/api/v1/webhooks/${webhook.id}`, body: { name: "Renamed hook" } });
        assert.equal(same.status, 200);
        assert.equal(await eventCount(), before, "an unchanged patch records nothing");
      });

      it("updateWebhookEndpoint: rotate_secret: true answers {webhook, secret} with a new secret; secret sets a given one", async () => {
        const { webhook, secret } = await create();
        const r = await h.request({ method: "PATCH", url: `/api/v1/webhooks/${webhook.id}`, body: { rotate_secret: true } });
        assert.equal(r.status, 200, r.text);
        assertOperationResponse("/api/v1/webhooks/{id}", "patch", "200", r.json);
        assertContract("WebhookEndpointWithSecret", r.json.data);
        const rotated: string = r.json.data.secret;
        assert.match(rotated, /^whsec_[A-Za-z0-9]{32}$/);
        assert.notEqual(rotated, secret);
        assert.equal(r.json.data.webhook.secret_prefix, rotated.slice(0, r.json.data.webhook.secret_prefix.length));
        let row = await h.lk.store.db.selectFrom("webhook_endpoints").selectAll().where("id", "=", webhook.id).executeTakeFirstOrThrow();
        assert.equal(openWebhookSecret(secretKey, row), rotated);
        const ev = await events("webhook_endpoint.updated", webhook.id);
        assert.equal(ev.length, 1);
        assert.deepEqual(JSON.parse(ev[0]!.metadata).fields, ["secret"]);
        assert.ok(!ev[0]!.metadata.includes(rotated.slice(6)) && !ev[0]!.metadata.includes(secret.slice(6)));

        const set = await h.request({ method: "PATCH", url: `/api/v1/webhooks/${webhook.id}`, body: { secret: "a-given-secret-of-32-characters!" } });
        assert.equal(set.status, 200, set.text);
        assert.equal(set.json.data.secret, "a-given-secret-of-32-characters!");
        row = await h.lk.store.db.selectFrom("webhook_endpoints").selectAll().where("id", "=", webhook.id).executeTakeFirstOrThrow();
        assert.equal(openWebhookSecret(secretKey, row), "a-given-secret-of-32-characters!");
        assert.equal((await events("webhook_endpoint.updated", webhook.id)).length, 2);
      });

      it("updateWebhookEndpoint: secret with rotate_secret, a private url or an unknown event type → 422", async () => {
        const { webhook } = await create();
        const url = `/api/v1/webhooks/${webhook.id}`;
        expectError(
          await h.request({ method: "PATCH", url, body: { secret: "another-secret-value-123", rotate_secret: true } }),
          422,
          "VALIDATION_ERROR",
          /field rotate_secret: cannot be combined with secret/,
        );
        expectError(await h.request({ method: "PATCH", url, body: { url: "http://127.0.0.1/x" } }), 422, "VALIDATION_ERROR", /field url/);
        expectError(await h.request({ method: "PATCH", url, body: { event_types: ["nope.nope"] } }), 422, "VALIDATION_ERROR", /field event_types\[0\]/);
        assert.equal((await events("webhook_endpoint.updated", webhook.id)).length, 0);
      });

      it("updateWebhookEndpoint: taking another endpoint's name and url → 409 CONFLICT", async () => {
        const a = await create();
        const b = await create();
        expectError(
          await h.request({ method: "PATCH", url: `/api/v1/webhooks/${b.webhook.id}`, body: { name: a.webhook.name, url: a.webhook.url } }),
          409,
          "CONFLICT",
          /name and url/,
        );
      });

      it("updateWebhookEndpoint: an unknown id → 404; an unknown field → 400 INVALID_JSON", async () => {
        expectError(await h.request({ method: "PATCH", url: `/api/v1/webhooks/${UNKNOWN}`, body: { name: "x" } }), 404, "NOT_FOUND");
        const { webhook } = await create();
        expectError(await h.request({ method: "PATCH", url: `/api/v1/webhooks/${webhook.id}`, body: { secret_prefix: "x" } }), 400, "INVALID_JSON", /secret_prefix/);
      });

      it("deleteWebhookEndpoint: 204 with an empty body, then 404; webhook_endpoint.deleted recorded once", async () => {
        const { webhook } = await create();
        const r = await h.request({ method: "DELETE", url: `/api/v1/webhooks/${webhook.id}`, token: WEBHOOK_ONLY });
        assert.equal(r.status, 204, r.text);
        assert.equal(r.text, "");
        expectError(await h.request({ url: `/api/v1/webhooks/${webhook.id}` }), 404, "NOT_FOUND");
        expectError(await h.request({ method: "DELETE", url: `/api/v1/webhooks/${webhook.id}` }), 404, "NOT_FOUND");
        assert.equal((await events("webhook_endpoint.deleted", webhook.id)).length, 1);
      });

      it("deleteWebhookEndpoint: an Idempotency-Key reused for another request → 409 IDEMPOTENCY_CONFLICT", async () => {
        const { webhook } = await create();
        const url = `/api/v1/webhooks/${webhook.id}`;
        assert.equal((await h.request({ method: "DELETE", url, idempotencyKey: "del-hook-1" })).status, 204);
        const replay = await h.request({ method: "DELETE", url, idempotencyKey: "del-hook-1" });
        assert.equal(replay.status, 204);
        assert.equal(replay.headers["idempotent-replayed"], "true");
        expectError(await h.request({ method: "DELETE", url: `${url}?force=1`, idempotencyKey: "del-hook-1" }), 409, "IDEMPOTENCY_CONFLICT");
      });
    });
  });

  describe(`webhook endpoints with LICENSEKIT_WEBHOOK_ALLOW_PRIVATE=true [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine, { env: { LICENSEKIT_WEBHOOK_ALLOW_PRIVATE: "true" } });
    });
    after(async () => h?.close());

    it("accepts loopback, private and localhost targets, but still only http(s)", async () => {
      for (const url of ["http://127.0.0.1:9000/hook", "http://localhost:9000/hook", "http://10.0.0.5/hook", "http://[::1]:9000/hook"]) {
        const r = await h.request({ url: "/api/v1/webhooks", body: { name: "Local", url } });
        assert.equal(r.status, 201, `${url}: ${r.text}`);
      }
      const ftp = await h.request({ url: "/api/v1/webhooks", body: { name: "Local", url: "ftp://127.0.0.1/x" } });
      assert.equal(ftp.status, 422);
    });
  });
}

describe("webhook target rules (D6) and LICENSEKIT_WEBHOOK_ALLOW_PRIVATE", () => {
  it("refuses every spelling of a local or private address and accepts public hosts", () => {
    const refused = [
      "http://127.1/x",
      "http://2130706433/x",
      "http://0x7f.0.0.1/x",
      "http://0.0.0.0/x",
      "http://172.16.0.1/x",
      "http://100.64.0.1/x",
      "http://224.0.0.1/x",
      "http://[::]/x",
      "http://[fe80::1]/x",
      "http://[::ffff:10.0.0.1]/x",
      "http://[64:ff9b::7f00:1]/x",
      "http://LOCALHOST./x",
      "http://api.localhost/x",
    ];
    for (const url of refused) assert.match(webhookUrlProblem(url, false) ?? "", /must not point at/, url);
    for (const url of ["https://hooks.example.com/x", "http://8.8.8.8/x", "http://172.32.0.1/x", "https://[2606:4700::1111]/x"]) {
      assert.equal(webhookUrlProblem(url, false), null, url);
    }
    assert.equal(webhookUrlProblem("http://127.0.0.1/x", true), null);
    assert.match(webhookUrlProblem("javascript:alert(1)", true) ?? "", /http or https/);
  });

  it("the setting defaults to false, reads true/false/1/0, and refuses anything else naming itself", () => {
    assert.equal(loadConfig({}).webhookAllowPrivate, false);
    assert.equal(loadConfig({ LICENSEKIT_WEBHOOK_ALLOW_PRIVATE: "true" }).webhookAllowPrivate, true);
    assert.equal(loadConfig({ LICENSEKIT_WEBHOOK_ALLOW_PRIVATE: "1" }).webhookAllowPrivate, true);
    assert.equal(loadConfig({ LICENSEKIT_WEBHOOK_ALLOW_PRIVATE: "FALSE" }).webhookAllowPrivate, false);
    assert.throws(
      () => loadConfig({ LICENSEKIT_WEBHOOK_ALLOW_PRIVATE: "maybe" }),
      (err: unknown) => err instanceof ConfigError && err.setting === "LICENSEKIT_WEBHOOK_ALLOW_PRIVATE",
    );
  });
});
