// Every D1 cause reachable so far, table-driven: status, error.code, the fixed message, request id
// in body and header, the contract's ErrorEnvelope shape, nothing internal leaked, and a verifying
// signature on runtime paths (none on management paths).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ERROR_CODES, type ErrorCode } from "../src/http/errors.js";
import { insertApiKey } from "../src/store/api-keys.js";
import { assertContract } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, type Reply, type RequestOptions, startHarness } from "./helpers/harness.js";
import { sdkVerify } from "./helpers/verify.js";

const READ_ONLY = "lkm_ReadOnlyProductToken000000000000000000";

function assertEnvelope(res: Reply, status: number, code: ErrorCode) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json.error.code, code, res.text);
  assert.equal(res.json.error.message, ERROR_CODES[code].message);
  assert.match(res.json.meta.request_id, /^req_/);
  assert.equal(res.headers["x-request-id"], res.json.meta.request_id);
  assert.ok(!Number.isNaN(Date.parse(res.json.meta.timestamp)));
  assertContract("ErrorEnvelope", res.json);
  assert.doesNotMatch(res.text, /\bat \S+ \(|node_modules|\.ts:\d|SELECT |INSERT |sqlite|postgres|Error:/i, "nothing internal leaks");
}

for (const engine of ENGINES) {
  describe(`error envelope for every cause [${engine}]`, () => {
    let h: Harness;
    let key: string;
    let productId: string;
    // biome-ignore lint/suspicious/noExplicitAny: public keys list
    let keys: any[];
    before(async () => {
      h = await startHarness(engine, { env: { LICENSEKIT_BODY_LIMIT_BYTES: "4096" } });
      const lic = await issueLicense(h, { max_activations: 1 });
      key = lic.key;
      productId = lic.productId;
      const now = h.clock.now();
      await insertApiKey(h.lk.store.db, {
        id: "key_01READONLY0000000000000000",
        name: "read only",
        key_prefix: READ_ONLY.slice(0, 12),
        token_hash: h.lk.hasher.hash(READ_ONLY),
        scopes: JSON.stringify(["product:read"]),
        allowed_cidrs: "[]",
        is_active: 1,
        expires_at: null,
        last_used_at: null,
        created_at: now,
        updated_at: now,
      });
      keys = (await h.request({ url: "/api/v1/system/public-keys", token: null })).json.data;
    });
    after(async () => h?.close());

    const rows: [string, () => RequestOptions, number, ErrorCode, RegExp?][] = [
      ["unknown route", () => ({ url: "/nope", token: null }), 404, "NOT_FOUND"],
      ["unknown runtime route", () => ({ url: "/api/v1/license/nope", body: {} }), 404, "NOT_FOUND"],
      ["wrong method on a management path", () => ({ method: "DELETE", url: "/api/v1/products" }), 405, "METHOD_NOT_ALLOWED", /use GET, POST/],
      ["wrong method on a runtime path", () => ({ method: "GET", url: "/api/v1/license/validate", licenseKey: key }), 405, "METHOD_NOT_ALLOWED"],
      ["body over the limit", () => ({ url: "/api/v1/products", body: { name: "x".repeat(5000), code: "big" } }), 413, "PAYLOAD_TOO_LARGE"],
      ["non-JSON content type", () => ({ url: "/api/v1/products", rawBody: "name=x", headers: { "content-type": "text/plain" } }), 415, "UNSUPPORTED_MEDIA_TYPE"],
      ["malformed JSON", () => ({ url: "/api/v1/products", rawBody: "{bad", headers: { "content-type": "application/json" } }), 400, "INVALID_JSON"],
      ["JSON array body", () => ({ url: "/api/v1/products", body: [1, 2] }), 400, "INVALID_JSON"],
      ["unknown field", () => ({ url: "/api/v1/products", body: { name: "a", code: "a", colour: "red" } }), 400, "INVALID_JSON", /colour/],
      ["wrong JSON type", () => ({ url: "/api/v1/products", body: { name: 5, code: "a" } }), 400, "INVALID_JSON", /name/],
      ["unknown field beats missing field", () => ({ url: "/api/v1/products", body: { code: "a", extra: 1 } }), 400, "INVALID_JSON", /extra/],
      [
        "prototype poisoning",
        () => ({ url: "/api/v1/products", rawBody: '{"name":"a","code":"a","__proto__":{"x":1}}', headers: { "content-type": "application/json" } }),
        400,
        "INVALID_JSON",
      ],
      ["missing required field", () => ({ url: "/api/v1/products", body: { code: "a" } }), 422, "VALIDATION_ERROR", /field name: is required/],
      ["enum violation", () => ({ url: `/api/v1/products/${productId}/policies`, body: { name: "p", code: "p", license_type: "forever" } }), 422, "VALIDATION_ERROR", /license_type/],
      ["range violation", () => ({ url: `/api/v1/products/${productId}/policies`, body: { name: "p", code: "p", license_type: "trial", max_activations: 0 } }), 422, "VALIDATION_ERROR", /max_activations: must be >= 1/],
      ["bad date-time", () => ({ url: "/api/v1/licenses", body: { product_id: "p", policy_id: "q", expires_at: "tomorrow" } }), 422, "VALIDATION_ERROR", /expires_at/],
      ["limit=0", () => ({ url: "/api/v1/products?limit=0" }), 400, "INVALID_QUERY", /limit/],
      ["limit=abc", () => ({ url: "/api/v1/products?limit=abc" }), 400, "INVALID_QUERY"],
      ["forged cursor", () => ({ url: "/api/v1/products?cursor=garbage!" }), 400, "INVALID_QUERY", /cursor/],
      ["bad status filter", () => ({ url: "/api/v1/licenses?status=sleeping" }), 400, "INVALID_QUERY"],
      ["no credentials (management)", () => ({ url: "/api/v1/products", token: null }), 401, "UNAUTHORIZED", /missing/],
      ["unknown token", () => ({ url: "/api/v1/products", token: "lkm_unknownunknownunknownunknownunknown00" }), 401, "UNAUTHORIZED", /not valid/],
      ["malformed Authorization", () => ({ url: "/api/v1/products", token: null, headers: { authorization: "Basic abc" } }), 401, "UNAUTHORIZED", /malformed/],
      ["license key on a management route", () => ({ url: "/api/v1/products", licenseKey: key }), 401, "UNAUTHORIZED", /license keys are not accepted/],
      ["management token on a runtime route", () => ({ url: "/api/v1/license/validate", token: READ_ONLY, body: { fingerprint: "f" } }), 401, "UNAUTHORIZED", /management tokens are not accepted/],
      ["no credentials (runtime)", () => ({ url: "/api/v1/license/validate", body: { fingerprint: "f" } }), 401, "UNAUTHORIZED"],
      ["malformed license key", () => ({ url: "/api/v1/license/validate", licenseKey: "lsk_short", body: { fingerprint: "f" } }), 401, "UNAUTHORIZED", /malformed/],
      ["scope denied", () => ({ url: "/api/v1/products", token: READ_ONLY, body: { name: "n", code: "n" } }), 403, "TOKEN_SCOPE_DENIED", /^requires product:write$/],
      ["admin-only route", () => ({ url: "/api/v1/customers", token: READ_ONLY }), 403, "TOKEN_SCOPE_DENIED", /^requires admin$/],
      ["unknown resource", () => ({ url: "/api/v1/products/prod_01NOPE00000000000000000000" }), 404, "NOT_FOUND"],
      ["duplicate code", () => ({ url: "/api/v1/products", body: { name: "dup", code: "dup" } }), 409, "CONFLICT", /already used/],
      ["no Idempotency-Key", () => ({ url: "/api/v1/license/activate", licenseKey: key, body: { fingerprint: "f" } }), 400, "IDEMPOTENCY_KEY_REQUIRED"],
      ["over-long Idempotency-Key", () => ({ url: "/api/v1/license/activate", licenseKey: key, idempotencyKey: "k".repeat(300), body: { fingerprint: "f" } }), 400, "BAD_REQUEST"],
      ["hardware binding without fingerprint", () => ({ url: "/api/v1/license/activate", licenseKey: key, idempotencyKey: "nofp", body: { hostname: "h" } }), 422, "VALIDATION_ERROR", /fingerprint/],
      ["runtime unknown field", () => ({ url: "/api/v1/license/validate", licenseKey: key, body: { fingerprint: "f", mac: "x" } }), 400, "INVALID_JSON", /mac/],
      ["runtime empty body", () => ({ url: "/api/v1/license/validate", licenseKey: key, rawBody: "", headers: { "content-type": "application/json" } }), 400, "INVALID_JSON"],
    ];

    for (const [name, make, status, code, detail] of rows) {
      it(`${name} → ${status} ${code}`, async () => {
        if (name === "duplicate code") await h.request({ url: "/api/v1/products", body: { name: "dup", code: "dup" } });
        const opts = make();
        const res = await h.request(opts);
        assertEnvelope(res, status, code);
        if (detail) assert.match(res.json.error.detail, detail);
        if (status === 405) assert.ok(res.headers.allow);
        if (opts.url.startsWith("/api/v1/license/")) assert.equal(await sdkVerify(res.json, keys, "error"), true, "runtime errors are signed");
        else assert.equal(res.json.signature, undefined);
      });
    }

    it("same Idempotency-Key with another body → 409 IDEMPOTENCY_CONFLICT", async () => {
      await h.request({ url: "/api/v1/license/activate", licenseKey: key, idempotencyKey: "conf", body: { fingerprint: "c1" } });
      const res = await h.request({ url: "/api/v1/license/activate", licenseKey: key, idempotencyKey: "conf", body: { fingerprint: "c2" } });
      assertEnvelope(res, 409, "IDEMPOTENCY_CONFLICT");
    });

    it("a client x-request-id is kept for logs only; the answer carries the server's own id", async () => {
      const res = await h.request({ url: "/nope", token: null, headers: { "x-request-id": "my-corr-1" } });
      assert.notEqual(res.headers["x-request-id"], "my-corr-1");
      assert.match(String(res.headers["x-request-id"]), /^req_/);
    });

    it("a crash → 500 INTERNAL_ERROR revealing nothing internal", async () => {
      const p = await h.request({ url: "/api/v1/products", body: { name: "crash", code: "crash" } });
      await h.lk.store.db.updateTable("products").set({ metadata: "{not json" }).where("id", "=", p.json.data.id).execute();
      const res = await h.request({ url: `/api/v1/products/${p.json.data.id}` });
      assertEnvelope(res, 500, "INTERNAL_ERROR");
      assert.doesNotMatch(res.text, /JSON|position|Unexpected/);
    });

    it("successful answers carry x-request-id too", async () => {
      const res = await h.request({ url: "/healthz", token: null });
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-request-id"], res.json.meta.request_id);
    });
  });

  describe(`database unreachable [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => {
      await h.db.drop();
    });

    it("management routes → 503 SERVICE_UNAVAILABLE with Retry-After; /readyz → 503 not_ready", async () => {
      await h.lk.store.close();
      const res = await h.request({ url: "/api/v1/products" });
      assertEnvelope(res, 503, "SERVICE_UNAVAILABLE");
      assert.ok(res.headers["retry-after"]);
      const ready = await h.request({ url: "/readyz", token: null });
      assert.equal(ready.status, 503);
      assert.equal(ready.json.data.status, "not_ready");
      assert.equal(typeof ready.json.data.db, "string");
      assert.match(ready.json.meta.request_id, /^req_/);
      const live = await h.request({ url: "/healthz", token: null });
      assert.equal(live.status, 200, "liveness does not depend on the database");
    });
  });
}
