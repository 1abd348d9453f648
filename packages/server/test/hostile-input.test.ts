// Regressions found by the fuzzer (test/reliability/fuzz.test.ts), as plain cases on both engines:
//  - JSON nested deeper than MAX_JSON_DEPTH (e.g. inside `metadata`) was stored by recursive code
//    that overflowed the stack → 500; now refused before parsing with 400 INVALID_JSON;
//  - a NUL character (U+0000) in a path id, a query value or a body string reached PostgreSQL, whose
//    text type cannot hold it → 500 there (and stored on SQLite); now 404 / 400 INVALID_QUERY /
//    422 VALIDATION_ERROR on both engines, before anything is written.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { exceedsJsonDepth, MAX_JSON_DEPTH } from "../src/http/transport.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, type Reply, startHarness } from "./helpers/harness.js";

function expectError(res: Reply, status: number, code: string, detail?: RegExp): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json?.error?.code, code, res.text);
  assert.equal(res.json.meta.request_id, res.headers["x-request-id"]);
  if (detail) assert.match(res.json.error.detail, detail);
}

describe("exceedsJsonDepth", () => {
  it("counts nesting outside strings only", () => {
    assert.equal(exceedsJsonDepth("[".repeat(MAX_JSON_DEPTH)), false);
    assert.equal(exceedsJsonDepth("[".repeat(MAX_JSON_DEPTH + 1)), true);
    assert.equal(exceedsJsonDepth(JSON.stringify({ a: "[".repeat(1000) })), false);
    assert.equal(exceedsJsonDepth(JSON.stringify({ a: '\\"[[[[' })), false);
    assert.equal(exceedsJsonDepth(`{"a":${"{\"b\":".repeat(MAX_JSON_DEPTH)}1${"}".repeat(MAX_JSON_DEPTH)}}`), true);
  });
});

for (const engine of ENGINES) {
  describe(`hostile input regressions [${engine}]`, () => {
    let h: Harness;
    let licenseKey = "";
    let productId = "";
    before(async () => {
      h = await startHarness(engine);
      const lic = await issueLicense(h);
      licenseKey = lic.key;
      productId = lic.productId;
    });
    after(async () => h?.close());

    it("metadata nested 10,000 levels deep → 400 INVALID_JSON, nothing stored", async () => {
      const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
      const res = await h.request({ url: "/api/v1/products", rawBody: `{"name":"Deep","code":"deep","metadata":{"a":${deep}}}`, headers: { "content-type": "application/json" } });
      expectError(res, 400, "INVALID_JSON", /nests deeper than 64 levels/);
      const list = await h.request({ url: "/api/v1/products?limit=100" });
      assert.ok(!list.json.data.some((p: { code: string }) => p.code === "deep"));
      // reasonable nesting is still fine
      const ok = await h.request({ url: "/api/v1/products", body: { name: "Nested", code: "nested", metadata: { a: { b: { c: [[1, [2]]] } } } } });
      assert.equal(ok.status, 201, ok.text);
    });

    it("a NUL character in a path id → 404 NOT_FOUND", async () => {
      for (const url of ["/api/v1/customers/%00", `/api/v1/products/${productId}%00`, "/api/v1/licenses/a%00b/devices"]) {
        expectError(await h.request({ url }), 404, "NOT_FOUND");
      }
      expectError(await h.request({ method: "PATCH", url: "/api/v1/customers/x%00", body: { name: "n" } }), 404, "NOT_FOUND");
    });

    it("a NUL character in a query value → 400 INVALID_QUERY naming the parameter", async () => {
      expectError(await h.request({ url: "/api/v1/events?event_type=a%00" }), 400, "INVALID_QUERY", /event_type/);
      expectError(await h.request({ url: "/api/v1/licenses?customer_id=%00" }), 400, "INVALID_QUERY", /customer_id/);
    });

    it("a NUL character in a body string or key → 422 VALIDATION_ERROR naming the field, nothing written", async () => {
      expectError(await h.request({ url: "/api/v1/products", body: { name: "a\u0000b", code: "nul" } }), 422, "VALIDATION_ERROR", /field name: must not contain NUL/);
      expectError(await h.request({ url: "/api/v1/customers", body: { name: "c", code: "c", metadata: { "k\u0000": 1 } } }), 422, "VALIDATION_ERROR", /field metadata\.k\\u0000/);
      const runtime = await h.request({ url: "/api/v1/license/check", licenseKey, body: { fingerprint: "fp\u0000" } });
      expectError(runtime, 422, "VALIDATION_ERROR", /field fingerprint/);
      assert.ok(runtime.json.signature, "runtime errors stay signed");
      const products = await h.request({ url: "/api/v1/products?limit=100" });
      assert.ok(!products.json.data.some((p: { code: string }) => p.code === "nul"));
      // A backslash followed by "u0000" is text, not NUL: its JSON holds "\\u0000", which only looks like the escape.
      const lookalike = await h.request({ url: "/api/v1/products", body: { name: "a\\u0000b", code: "nul-lookalike" } });
      assert.equal(lookalike.status, 201);
      assert.equal(lookalike.json.data.name, "a\\u0000b");
      // An escaped backslash followed by the NUL escape is still NUL.
      expectError(await h.request({ url: "/api/v1/products", rawBody: '{"name":"a\\\\\\u0000","code":"nul2"}', headers: { "content-type": "application/json" } }), 422, "VALIDATION_ERROR", /field name/);
    });

    it("decode errors still outrank the NUL rule (an unknown field is 400 INVALID_JSON)", async () => {
      expectError(await h.request({ url: "/api/v1/products", body: { name: "a\u0000", code: "x", bogus: 1 } }), 400, "INVALID_JSON", /bogus/);
    });
  });
}
