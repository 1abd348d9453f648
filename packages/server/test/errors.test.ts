// Every D1 cause the server can reach answers the one error envelope: the right status and code, the
// fixed message of the code, a server-issued request id (also in `x-request-id`), a timestamp, nothing
// internal in the text, and — on runtime paths only — a signature over the error (D4).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ERROR_CODES, type ErrorCode } from "../src/http/errors.js";
import { insertApiKey } from "../src/store/api-keys.js";
import { assertContract, assertOperationResponse } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { ADMIN_TOKEN, type Harness, issueLicense, type Reply, startHarness } from "./helpers/harness.js";
import { type PublicKeyEntry, sdkVerify } from "./helpers/verify.js";

const READ_ONLY_TOKEN = "lkm_ReadOnlyScopeToken000000000000000000000";
const UNKNOWN_TOKEN = "lkm_UnknownToken000000000000000000000000000";
const UNKNOWN_LICENSE_KEY = "lsk_00000000000000000000000000000000";
const JSON_HEADERS = { "content-type": "application/json" };

interface Ctx {
  /** The main server. */
  h: Harness;
  /** A server started with LICENSEKIT_BODY_LIMIT_BYTES=2048. */
  small: Harness;
  /** A server whose database handle has been closed. */
  down: Harness;
  licenseKey: string;
  productId: string;
  smallLicenseKey: string;
  downLicenseKey: string;
}

type Server = "h" | "small" | "down";

interface Row {
  name: string;
  /** Which server answers; `h` unless told. */
  on?: Server;
  /** Runtime paths (/api/v1/license/…) sign their errors; every other surface must not. */
  signed: boolean;
  status: number;
  code: ErrorCode;
  /** Exact detail, or a pattern it must match. */
  detail?: string | RegExp;
  /** Response headers that must be present: exact value or pattern. */
  headers?: Record<string, string | RegExp>;
  send(c: Ctx): Promise<Reply>;
}

const ROWS: Row[] = [
  // --- routing ---
  {
    name: "unknown route GET /nope",
    signed: false,
    status: 404,
    code: "NOT_FOUND",
    detail: "no route for GET /nope",
    send: (c) => c.h.request({ url: "/nope", token: null }),
  },
  {
    name: "unknown runtime route POST /api/v1/license/nope (signed)",
    signed: true,
    status: 404,
    code: "NOT_FOUND",
    detail: /\/api\/v1\/license\/nope/,
    send: (c) => c.h.request({ url: "/api/v1/license/nope", licenseKey: c.licenseKey, body: { fingerprint: "x" } }),
  },
  {
    name: "unknown runtime route GET /api/v1/license/nope without credentials (signed)",
    signed: true,
    status: 404,
    code: "NOT_FOUND",
    send: (c) => c.h.request({ url: "/api/v1/license/nope" }),
  },
  {
    name: "wrong method DELETE /api/v1/products",
    signed: false,
    status: 405,
    code: "METHOD_NOT_ALLOWED",
    headers: { allow: "GET, POST" },
    send: (c) => c.h.request({ method: "DELETE", url: "/api/v1/products" }),
  },
  {
    name: "wrong method GET /api/v1/license/validate (signed)",
    signed: true,
    status: 405,
    code: "METHOD_NOT_ALLOWED",
    headers: { allow: "POST" },
    send: (c) => c.h.request({ url: "/api/v1/license/validate", licenseKey: c.licenseKey }),
  },

  // --- body transport ---
  {
    name: "body over LICENSEKIT_BODY_LIMIT_BYTES on a management route",
    on: "small",
    signed: false,
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
    send: (c) => c.small.request({ url: "/api/v1/products", body: { name: "x".repeat(4000), code: "too-big" } }),
  },
  {
    name: "body over LICENSEKIT_BODY_LIMIT_BYTES on a runtime route (signed)",
    on: "small",
    signed: true,
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
    send: (c) => c.small.request({ url: "/api/v1/license/validate", licenseKey: c.smallLicenseKey, body: { fingerprint: "f".repeat(4000) } }),
  },
  {
    name: "body sent as text/plain",
    signed: false,
    status: 415,
    code: "UNSUPPORTED_MEDIA_TYPE",
    send: (c) => c.h.request({ method: "POST", url: "/api/v1/products", rawBody: "name=x", headers: { "content-type": "text/plain" } }),
  },
  {
    name: "body sent as application/x-www-form-urlencoded",
    signed: false,
    status: 415,
    code: "UNSUPPORTED_MEDIA_TYPE",
    send: (c) =>
      c.h.request({ method: "POST", url: "/api/v1/products", rawBody: "name=x&code=y", headers: { "content-type": "application/x-www-form-urlencoded" } }),
  },
  {
    name: "body sent as text/plain on a runtime route (signed)",
    signed: true,
    status: 415,
    code: "UNSUPPORTED_MEDIA_TYPE",
    send: (c) =>
      c.h.request({ method: "POST", url: "/api/v1/license/validate", licenseKey: c.licenseKey, rawBody: "fingerprint=x", headers: { "content-type": "text/plain" } }),
  },

  // --- body decoding (INVALID_JSON) ---
  {
    name: "malformed JSON `{bad`",
    signed: false,
    status: 400,
    code: "INVALID_JSON",
    send: (c) => c.h.request({ method: "POST", url: "/api/v1/products", rawBody: "{bad", headers: JSON_HEADERS }),
  },
  {
    name: "malformed JSON `{bad` on a runtime route (signed)",
    signed: true,
    status: 400,
    code: "INVALID_JSON",
    send: (c) => c.h.request({ method: "POST", url: "/api/v1/license/validate", licenseKey: c.licenseKey, rawBody: "{bad", headers: JSON_HEADERS }),
  },
  {
    name: "unknown field",
    signed: false,
    status: 400,
    code: "INVALID_JSON",
    detail: /\bcolour\b/,
    send: (c) => c.h.request({ url: "/api/v1/products", body: { name: "A", code: "unknown-field", colour: "red" } }),
  },
  {
    name: "unknown field on a runtime route (signed)",
    signed: true,
    status: 400,
    code: "INVALID_JSON",
    detail: /\bserial\b/,
    send: (c) => c.h.request({ url: "/api/v1/license/validate", licenseKey: c.licenseKey, body: { fingerprint: "fp", serial: "123" } }),
  },
  {
    name: "wrong JSON type (name: 5)",
    signed: false,
    status: 400,
    code: "INVALID_JSON",
    detail: /\bname\b/,
    send: (c) => c.h.request({ url: "/api/v1/products", body: { name: 5, code: "wrong-type" } }),
  },
  {
    name: "JSON array body",
    signed: false,
    status: 400,
    code: "INVALID_JSON",
    send: (c) => c.h.request({ url: "/api/v1/products", body: [{ name: "A", code: "array-body" }] }),
  },
  {
    name: "__proto__ poisoning body",
    signed: false,
    status: 400,
    code: "INVALID_JSON",
    send: (c) =>
      c.h.request({ method: "POST", url: "/api/v1/products", rawBody: '{"name":"A","code":"proto","__proto__":{"isAdmin":true}}', headers: JSON_HEADERS }),
  },
  {
    name: "constructor.prototype poisoning body",
    signed: false,
    status: 400,
    code: "INVALID_JSON",
    send: (c) =>
      c.h.request({
        method: "POST",
        url: "/api/v1/products",
        rawBody: '{"name":"A","code":"ctor","constructor":{"prototype":{"isAdmin":true}}}',
        headers: JSON_HEADERS,
      }),
  },

  // --- business validation (VALIDATION_ERROR) ---
  {
    name: "missing required field",
    signed: false,
    status: 422,
    code: "VALIDATION_ERROR",
    detail: /\bcode\b/,
    send: (c) => c.h.request({ url: "/api/v1/products", body: { name: "No code" } }),
  },
  {
    name: "enum violation (license_type: forever)",
    signed: false,
    status: 422,
    code: "VALIDATION_ERROR",
    detail: /\blicense_type\b/,
    send: (c) => c.h.request({ url: `/api/v1/products/${c.productId}/policies`, body: { name: "P", code: "forever", license_type: "forever" } }),
  },
  {
    name: "hardware binding without fingerprint (signed)",
    signed: true,
    status: 422,
    code: "VALIDATION_ERROR",
    detail: /\bfingerprint\b/,
    send: (c) => c.h.request({ url: "/api/v1/license/activate", licenseKey: c.licenseKey, idempotencyKey: "no-fp-1", body: { hostname: "host-a" } }),
  },

  {
    name: "unknown field outranks a missing required field (decode error first)",
    signed: false,
    status: 400,
    code: "INVALID_JSON",
    detail: /\bextra\b/,
    send: (c) => c.h.request({ url: "/api/v1/products", body: { code: "no-name", extra: 1 } }),
  },
  {
    name: "range violation (max_activations: 0)",
    signed: false,
    status: 422,
    code: "VALIDATION_ERROR",
    detail: "field max_activations: must be >= 1",
    send: (c) => c.h.request({ url: `/api/v1/products/${c.productId}/policies`, body: { name: "P", code: "range", license_type: "trial", max_activations: 0 } }),
  },
  {
    name: "date-time that is not RFC 3339",
    signed: false,
    status: 422,
    code: "VALIDATION_ERROR",
    detail: /\bexpires_at\b/,
    send: (c) => c.h.request({ url: "/api/v1/licenses", body: { product_id: c.productId, policy_id: "pol_x", expires_at: "tomorrow" } }),
  },
  {
    name: "empty body on a runtime route (signed)",
    signed: true,
    status: 400,
    code: "INVALID_JSON",
    send: (c) => c.h.request({ url: "/api/v1/license/validate", licenseKey: c.licenseKey, rawBody: "", headers: JSON_HEADERS }),
  },

  // --- query (INVALID_QUERY) ---
  {
    name: "?limit=0",
    signed: false,
    status: 400,
    code: "INVALID_QUERY",
    detail: /\blimit\b/,
    send: (c) => c.h.request({ url: "/api/v1/products?limit=0" }),
  },
  {
    name: "?limit=abc",
    signed: false,
    status: 400,
    code: "INVALID_QUERY",
    detail: /\blimit\b/,
    send: (c) => c.h.request({ url: "/api/v1/products?limit=abc" }),
  },
  {
    name: "?cursor=garbage",
    signed: false,
    status: 400,
    code: "INVALID_QUERY",
    detail: /\bcursor\b/,
    send: (c) => c.h.request({ url: "/api/v1/products?cursor=garbage" }),
  },

  {
    name: "?status=sleeping (not a license status)",
    signed: false,
    status: 400,
    code: "INVALID_QUERY",
    detail: /\bstatus\b/,
    send: (c) => c.h.request({ url: "/api/v1/licenses?status=sleeping" }),
  },

  // --- credentials (UNAUTHORIZED) ---
  {
    name: "management route without Authorization",
    signed: false,
    status: 401,
    code: "UNAUTHORIZED",
    send: (c) => c.h.request({ url: "/api/v1/products", token: null }),
  },
  {
    name: "unknown bearer token",
    signed: false,
    status: 401,
    code: "UNAUTHORIZED",
    send: (c) => c.h.request({ url: "/api/v1/products", token: UNKNOWN_TOKEN }),
  },
  {
    name: "malformed bearer token",
    signed: false,
    status: 401,
    code: "UNAUTHORIZED",
    send: (c) => c.h.request({ url: "/api/v1/products", token: "not-a-token" }),
  },
  {
    name: "`License lsk_…` on a management route",
    signed: false,
    status: 401,
    code: "UNAUTHORIZED",
    send: (c) => c.h.request({ url: "/api/v1/products", licenseKey: c.licenseKey }),
  },
  {
    name: "runtime route without Authorization (signed)",
    signed: true,
    status: 401,
    code: "UNAUTHORIZED",
    send: (c) => c.h.request({ url: "/api/v1/license/validate", body: { fingerprint: "fp" } }),
  },
  {
    name: "Bearer token on a runtime route (signed)",
    signed: true,
    status: 401,
    code: "UNAUTHORIZED",
    send: (c) => c.h.request({ url: "/api/v1/license/validate", token: ADMIN_TOKEN, body: { fingerprint: "fp" } }),
  },
  {
    name: "malformed license key (signed)",
    signed: true,
    status: 401,
    code: "UNAUTHORIZED",
    send: (c) => c.h.request({ url: "/api/v1/license/validate", licenseKey: "not-a-license-key", body: { fingerprint: "fp" } }),
  },
  {
    name: "unknown license key (signed)",
    signed: true,
    status: 401,
    code: "UNAUTHORIZED",
    send: (c) => c.h.request({ url: "/api/v1/license/validate", licenseKey: UNKNOWN_LICENSE_KEY, body: { fingerprint: "fp" } }),
  },

  // --- scope ---
  {
    name: "token lacking the route's scope",
    signed: false,
    status: 403,
    code: "TOKEN_SCOPE_DENIED",
    detail: "requires product:write",
    send: (c) => c.h.request({ url: "/api/v1/products", token: READ_ONLY_TOKEN, body: { name: "A", code: "scope-denied" } }),
  },

  {
    name: "Authorization scheme that is neither Bearer nor License",
    signed: false,
    status: 401,
    code: "UNAUTHORIZED",
    detail: /malformed/,
    send: (c) => c.h.request({ url: "/api/v1/products", token: null, headers: { authorization: "Basic YTpi" } }),
  },
  {
    name: "admin-only route with a non-admin token",
    signed: false,
    status: 403,
    code: "TOKEN_SCOPE_DENIED",
    detail: "requires admin",
    send: (c) => c.h.request({ url: "/api/v1/customers", token: READ_ONLY_TOKEN }),
  },

  // --- resources ---
  {
    name: "unknown resource GET /api/v1/products/prod_x",
    signed: false,
    status: 404,
    code: "NOT_FOUND",
    send: (c) => c.h.request({ url: "/api/v1/products/prod_x" }),
  },
  {
    name: "duplicate product code",
    signed: false,
    status: 409,
    code: "CONFLICT",
    detail: /\bcode\b/,
    async send(c) {
      const first = await c.h.request({ url: "/api/v1/products", body: { name: "Dup", code: "dup-code" } });
      assert.equal(first.status, 201, first.text);
      return c.h.request({ url: "/api/v1/products", body: { name: "Dup again", code: "dup-code" } });
    },
  },

  // --- idempotency ---
  {
    name: "activate without Idempotency-Key (signed)",
    signed: true,
    status: 400,
    code: "IDEMPOTENCY_KEY_REQUIRED",
    send: (c) => c.h.request({ url: "/api/v1/license/activate", licenseKey: c.licenseKey, body: { fingerprint: "fp-nokey" } }),
  },
  {
    name: "Idempotency-Key longer than 255 characters",
    signed: false,
    status: 400,
    code: "BAD_REQUEST",
    detail: /Idempotency-Key/,
    send: (c) => c.h.request({ url: "/api/v1/products", idempotencyKey: "k".repeat(256), body: { name: "A", code: "long-key" } }),
  },
  {
    name: "Idempotency-Key longer than 255 characters on a runtime route (signed)",
    signed: true,
    status: 400,
    code: "BAD_REQUEST",
    detail: /Idempotency-Key/,
    send: (c) => c.h.request({ url: "/api/v1/license/activate", licenseKey: c.licenseKey, idempotencyKey: "k".repeat(256), body: { fingerprint: "fp-long" } }),
  },
  {
    name: "same Idempotency-Key, different body (signed)",
    signed: true,
    status: 409,
    code: "IDEMPOTENCY_CONFLICT",
    async send(c) {
      const first = await c.h.request({ url: "/api/v1/license/activate", licenseKey: c.licenseKey, idempotencyKey: "idem-conflict", body: { fingerprint: "fp-1" } });
      assert.equal(first.status, 200, first.text);
      return c.h.request({ url: "/api/v1/license/activate", licenseKey: c.licenseKey, idempotencyKey: "idem-conflict", body: { fingerprint: "fp-2" } });
    },
  },
  {
    name: "same Idempotency-Key, different body on a management route",
    signed: false,
    status: 409,
    code: "IDEMPOTENCY_CONFLICT",
    async send(c) {
      const first = await c.h.request({ url: "/api/v1/products", idempotencyKey: "mgmt-conflict", body: { name: "One", code: "idem-one" } });
      assert.equal(first.status, 201, first.text);
      return c.h.request({ url: "/api/v1/products", idempotencyKey: "mgmt-conflict", body: { name: "Two", code: "idem-two" } });
    },
  },

  // --- faults ---
  {
    name: "internal crash (unreadable metadata column)",
    signed: false,
    status: 500,
    code: "INTERNAL_ERROR",
    async send(c) {
      const created = await c.h.request({ url: "/api/v1/products", body: { name: "Corrupt", code: "corrupt" } });
      assert.equal(created.status, 201, created.text);
      const id = created.json.data.id as string;
      await c.h.lk.store.db.updateTable("products").set({ metadata: "{not json at all" }).where("id", "=", id).execute();
      const res = await c.h.request({ url: `/api/v1/products/${id}` });
      // Repair the row so later product listings are not affected.
      await c.h.lk.store.db.updateTable("products").set({ metadata: "{}" }).where("id", "=", id).execute();
      assert.ok(!res.text.includes("not json at all"), `stored text leaked: ${res.text}`);
      assert.ok(!/metadata|JSON\.parse|Unexpected token/i.test(res.text), `internal detail leaked: ${res.text}`);
      return res;
    },
  },
  {
    name: "database unreachable on a management route",
    on: "down",
    signed: false,
    status: 503,
    code: "SERVICE_UNAVAILABLE",
    headers: { "retry-after": /^\d+$/ },
    send: (c) => c.down.request({ url: "/api/v1/products" }),
  },
  {
    name: "database unreachable on a runtime route (signed)",
    on: "down",
    signed: true,
    status: 503,
    code: "SERVICE_UNAVAILABLE",
    headers: { "retry-after": /^\d+$/ },
    send: (c) => c.down.request({ url: "/api/v1/license/validate", licenseKey: c.downLicenseKey, body: { fingerprint: "fp" } }),
  },
];

/** Things that must never appear in an answer: stack frames, file paths, SQL, driver internals. */
const LEAKS: Array<[string, RegExp]> = [
  ["stack frame", /\bat\s+[\w$.<>[\]]+\s+\(|\n\s+at\s|\bat\s+(?:file:|node:|\/)/],
  ["stack property", /"stack"\s*:/],
  ["file path", /\/(?:work|home|root|usr|tmp|var|opt|src|dist|node_modules)\/|\b[\w-]+\.(?:ts|js|mjs|cjs)\b|file:\/\//],
  ["SQL", /\bselect\s[\s\S]*?\sfrom\s|\binsert\s+into\b|\bupdate\s+"?\w+"?\s+set\b|\bdelete\s+from\b|\bwhere\s+"?\w+"?\s*=/i],
  ["database internals", /sqlite|postgres|kysely|SQLSTATE|relation "|syntax error at|ECONNREFUSED|pool/i],
  ["error class", /\b(?:TypeError|SyntaxError|ReferenceError|RangeError)\b|\bFST_ERR/],
  ["secrets", /lkm_|lsk_/],
];

function assertNoLeak(text: string): void {
  for (const [what, re] of LEAKS) assert.doesNotMatch(text, re, `${what} leaked: ${text}`);
}

/** The shared D1 checks: envelope shape, fixed message, request id, timestamp, contract, no leaks. */
function assertEnvelope(res: Reply, h: Harness, expected: { status: number; code: ErrorCode }): void {
  assert.equal(res.status, expected.status, res.text);
  assert.match(String(res.headers["content-type"]), /^application\/json/);
  assert.ok(res.json && typeof res.json === "object" && !Array.isArray(res.json), `not a JSON object: ${res.text}`);
  const body = res.json;
  assert.equal(body.error?.code, expected.code, res.text);
  assert.equal(body.error.message, ERROR_CODES[expected.code].message);
  for (const k of Object.keys(body.error)) assert.ok(["code", "message", "detail"].includes(k), `unexpected error field ${k}`);
  if ("detail" in body.error) assert.equal(typeof body.error.detail, "string");
  for (const k of Object.keys(body)) assert.ok(["error", "signature", "meta"].includes(k), `unexpected envelope field ${k}`);
  assert.ok(!("data" in body));

  assert.equal(typeof body.meta?.request_id, "string");
  assert.match(body.meta.request_id, /^req_[A-Za-z0-9_-]+$/);
  assert.equal(res.headers["x-request-id"], body.meta.request_id);
  assert.equal(typeof body.meta.timestamp, "string");
  assert.ok(!Number.isNaN(Date.parse(body.meta.timestamp)), `bad timestamp ${body.meta.timestamp}`);
  assert.equal(body.meta.timestamp, new Date(h.clock.now()).toISOString());

  assertContract("ErrorEnvelope", body);
  assertNoLeak(res.text);
}

for (const engine of ENGINES) {
  describe(`error envelopes (D1) [${engine}]`, () => {
    let c: Ctx;
    const keys: Partial<Record<Server, PublicKeyEntry[]>> = {};
    const requestIds: string[] = [];

    before(async () => {
      const h = await startHarness(engine);
      const small = await startHarness(engine, { env: { LICENSEKIT_BODY_LIMIT_BYTES: "2048" } });
      const down = await startHarness(engine);
      const lic = await issueLicense(h, { max_activations: 5 });
      const smallLic = await issueLicense(small);
      const downLic = await issueLicense(down);
      for (const [name, srv] of [
        ["h", h],
        ["small", small],
        ["down", down],
      ] as const) {
        const res = await srv.request({ url: "/api/v1/system/public-keys", token: null });
        assert.equal(res.status, 200, res.text);
        keys[name] = res.json.data;
      }
      // A token that may read products but not write them.
      await insertApiKey(h.lk.store.db, h.lk.hasher, { name: "read only", token: READ_ONLY_TOKEN, scopes: ["product:read"] }, h.clock.now());
      // The database goes away under a running server.
      await down.lk.store.close();
      c = { h, small, down, licenseKey: lic.key, productId: lic.productId, smallLicenseKey: smallLic.key, downLicenseKey: downLic.key };
    });

    after(async () => {
      await c?.h.close();
      await c?.small.close();
      await c?.down.close();
    });

    for (const row of ROWS) {
      it(`${row.name} → ${row.status} ${row.code}`, async () => {
        const server = c[row.on ?? "h"];
        const res = await row.send(c);
        if (typeof res.json?.meta?.request_id === "string") requestIds.push(res.json.meta.request_id);
        assertEnvelope(res, server, row);

        if (row.detail !== undefined) {
          assert.equal(typeof res.json.error.detail, "string", `no detail: ${res.text}`);
          if (typeof row.detail === "string") assert.equal(res.json.error.detail, row.detail);
          else assert.match(res.json.error.detail, row.detail);
        }
        for (const [name, want] of Object.entries(row.headers ?? {})) {
          const got = res.headers[name];
          assert.equal(typeof got, "string", `missing header ${name}`);
          if (typeof want === "string") assert.equal(got, want, `header ${name}`);
          else assert.match(got as string, want, `header ${name}`);
        }

        if (row.signed) {
          assert.ok(res.json.signature, `runtime error is not signed: ${res.text}`);
          assert.equal(await sdkVerify(res.json, keys[row.on ?? "h"]!, "error"), true, "signature does not verify");
          const forged = structuredClone(res.json);
          forged.error.detail = "forged";
          assert.equal(await sdkVerify(forged, keys[row.on ?? "h"]!, "error"), false);
        } else {
          assert.ok(!("signature" in res.json), `management/system error carries a signature: ${res.text}`);
        }
      });
    }

    it("the scope-limited token itself works for what it may do", async () => {
      const res = await c.h.request({ url: "/api/v1/products", token: READ_ONLY_TOKEN });
      assert.equal(res.status, 200, res.text);
    });

    it("GET /readyz with the database gone → 503 not_ready, a data envelope (not an error envelope)", async () => {
      const res = await c.down.request({ url: "/readyz", token: null });
      assert.equal(res.status, 503, res.text);
      assert.match(String(res.headers["content-type"]), /^application\/json/);
      assert.ok(!("error" in res.json), `readyz answered an error envelope: ${res.text}`);
      assert.equal(res.json.data.status, "not_ready");
      assert.equal(typeof res.json.data.db, "string");
      assert.match(res.json.meta.request_id, /^req_/);
      assert.equal(res.headers["x-request-id"], res.json.meta.request_id);
      assert.equal(typeof res.json.meta.timestamp, "string");
      assertContract("ReadyData", res.json.data);
      assertOperationResponse("/readyz", "get", "503", res.json);
      assertNoLeak(res.text);
      // While the main server is fine.
      const ok = await c.h.request({ url: "/readyz", token: null });
      assert.equal(ok.status, 200, ok.text);
      assert.deepEqual(ok.json.data, { status: "ready", db: "ok" });
    });

    it("a client-sent x-request-id is not used as the response request id", async () => {
      for (const req of [
        { url: "/nope", token: null, headers: { "x-request-id": "my-corr-1" } },
        { url: "/api/v1/products", token: null, headers: { "x-request-id": "my-corr-1" } },
        { url: "/api/v1/license/validate", headers: { "x-request-id": "my-corr-1" }, body: { fingerprint: "fp" } },
        { url: "/api/v1/products", headers: { "x-request-id": "my-corr-1" } },
      ]) {
        const res = await c.h.request(req);
        assert.notEqual(res.headers["x-request-id"], "my-corr-1", `${req.url}: ${res.text}`);
        assert.match(String(res.headers["x-request-id"]), /^req_/);
        assert.equal(res.json.meta.request_id, res.headers["x-request-id"]);
        assert.notEqual(res.json.meta.request_id, "my-corr-1");
        assert.ok(!res.text.includes("my-corr-1"), `correlation id echoed: ${res.text}`);
      }
    });

    it("every error answer had its own request id", () => {
      assert.ok(requestIds.length > 0);
      assert.equal(new Set(requestIds).size, requestIds.length);
    });
  });
}
