// Errors every management operation shares, table-driven from the served OpenAPI document so a new
// route is covered the day it is added:
//  - no credential, a malformed one and an unknown one → 401 UNAUTHORIZED in the envelope;
//  - a runtime license key on a management route → 401 (credentials never cross surfaces);
//  - a body with a field the operation does not define → 400 INVALID_JSON naming the field, and
//    a body that is not JSON at all → 400 INVALID_JSON, on every operation that takes a body;
//  - an unknown id on every GET and DELETE with a path id → 404 NOT_FOUND;
//  - `limit=0` and a forged cursor on every list → 400 INVALID_QUERY;
//  - a malformed Idempotency-Key on every write → 400 BAD_REQUEST (before any change is made).
// Scope denials (403) are in scopes.test.ts; operation-specific statuses are in each area's tests.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { operationsOf } from "./helpers/conformance.js";
import type { Doc } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";

interface Op {
  key: string;
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  url: string;
  hasBody: boolean;
  hasPathId: boolean;
  isList: boolean;
  statuses: string[];
}

const UNKNOWN_ID = "x_01AAAAAAAAAAAAAAAAAAAAAAAA";

function isEnvelope(json: Doc, code: string, requestId: unknown): boolean {
  return (
    json?.error?.code === code &&
    typeof json.error.message === "string" &&
    typeof json.meta?.request_id === "string" &&
    json.meta.request_id === requestId &&
    !Number.isNaN(Date.parse(json.meta.timestamp))
  );
}

for (const engine of ENGINES) {
  describe(`errors shared by every management operation [${engine}]`, () => {
    let h: Harness;
    let ops: Op[] = [];
    let licenseKey = "";
    before(async () => {
      h = await startHarness(engine);
      const doc: Doc = (await h.request({ url: "/api/v1/openapi.json", token: null })).json;
      for (const [key, { path, method, op }] of operationsOf(doc)) {
        if (!op["x-required-scopes"]) continue;
        ops.push({
          key,
          method: method.toUpperCase() as Op["method"],
          url: path.replace(/\{[a-z_]+\}/g, UNKNOWN_ID),
          hasBody: Boolean(op.requestBody),
          hasPathId: path.includes("{"),
          isList: method === "get" && (op.parameters ?? []).some((p: Doc) => p.name === "cursor"),
          statuses: Object.keys(op.responses ?? {}),
        });
      }
      ops = ops.sort((a, b) => a.key.localeCompare(b.key));
      licenseKey = (await issueLicense(h)).key;
    });
    after(async () => h?.close());

    it("finds the management operations in the served document", () => {
      assert.equal(ops.length, 81, "the contract's 61 management operations and our 20 extensions");
      assert.ok(ops.filter((o) => o.hasBody).length >= 25, "every create, update, upsert and action with a body");
    });

    for (const [label, authorization] of [
      ["no Authorization header", undefined],
      ["a Bearer token this server never issued", "Bearer lkm_NeverIssued000000000000000000000000000"],
      ["a malformed Authorization header", "Token abc"],
    ] as const) {
      it(`401 UNAUTHORIZED in the envelope with ${label}`, async () => {
        const failures: string[] = [];
        for (const o of ops) {
          const res = await h.request({
            method: o.method,
            url: o.url,
            token: null,
            headers: authorization ? { authorization } : {},
            body: o.hasBody ? {} : undefined,
          });
          if (res.status !== 401 || !isEnvelope(res.json, "UNAUTHORIZED", res.headers["x-request-id"])) failures.push(`${o.key} → ${res.status} ${res.text.slice(0, 120)}`);
        }
        assert.deepEqual(failures, []);
      });
    }

    it("a runtime license key is refused on every management operation (401)", async () => {
      const failures: string[] = [];
      for (const o of ops) {
        const res = await h.request({ method: o.method, url: o.url, token: null, headers: { authorization: `License ${licenseKey}` }, body: o.hasBody ? {} : undefined });
        if (res.status !== 401 || res.json?.error?.code !== "UNAUTHORIZED") failures.push(`${o.key} → ${res.status}`);
      }
      assert.deepEqual(failures, []);
    });

    it("a field the operation does not define → 400 INVALID_JSON naming it, on every operation with a body", async () => {
      const failures: string[] = [];
      for (const o of ops.filter((x) => x.hasBody)) {
        const res = await h.request({ method: o.method, url: o.url, body: { not_a_contract_field: 1 }, idempotencyKey: `unknown-field-${o.key}` });
        const ok = res.status === 400 && isEnvelope(res.json, "INVALID_JSON", res.headers["x-request-id"]) && String(res.json.error.detail).includes("not_a_contract_field");
        if (!ok) failures.push(`${o.key} → ${res.status} ${res.text.slice(0, 160)}`);
      }
      assert.deepEqual(failures, []);
    });

    it("a body that is not JSON → 400 INVALID_JSON, on every operation with a body", async () => {
      const failures: string[] = [];
      for (const o of ops.filter((x) => x.hasBody)) {
        const res = await h.request({
          method: o.method,
          url: o.url,
          rawBody: "{not json",
          headers: { "content-type": "application/json" },
          idempotencyKey: `not-json-${o.key}`,
        });
        if (res.status !== 400 || !isEnvelope(res.json, "INVALID_JSON", res.headers["x-request-id"])) failures.push(`${o.key} → ${res.status} ${res.text.slice(0, 160)}`);
      }
      assert.deepEqual(failures, []);
    });

    it("an unknown id → 404 NOT_FOUND on every GET and DELETE that takes one", async () => {
      const failures: string[] = [];
      const targets = ops.filter((o) => (o.method === "GET" || o.method === "DELETE") && o.hasPathId);
      assert.ok(targets.length >= 20, `only ${targets.length} GET/DELETE operations with a path id`);
      for (const o of targets) {
        const res = await h.request({ method: o.method, url: o.url });
        const ok = res.status === 404 && isEnvelope(res.json, "NOT_FOUND", res.headers["x-request-id"]) && o.statuses.includes("404");
        if (!ok) failures.push(`${o.key} → ${res.status} ${res.text.slice(0, 120)} (documents ${o.statuses.join(",")})`);
      }
      assert.deepEqual(failures, []);
    });

    it("limit=0, limit=abc and a forged cursor → 400 INVALID_QUERY on every list", async () => {
      const failures: string[] = [];
      const lists = ops.filter((o) => o.isList);
      assert.ok(lists.length >= 15, `only ${lists.length} lists`);
      const forged = Buffer.from(JSON.stringify({ id: "../../etc" })).toString("base64url");
      for (const o of lists) {
        for (const q of ["limit=0", "limit=abc", `cursor=${forged}`, "cursor=%00"]) {
          const res = await h.request({ url: `${o.url.replace(UNKNOWN_ID, "x_01AAAAAAAAAAAAAAAAAAAAAAAB")}?${q}` });
          const ok = res.status === 400 && isEnvelope(res.json, "INVALID_QUERY", res.headers["x-request-id"]) && o.statuses.includes("400");
          if (!ok) failures.push(`${o.key}?${q} → ${res.status} ${res.text.slice(0, 120)}`);
        }
      }
      assert.deepEqual(failures, []);
    });

    it("a malformed Idempotency-Key → 400 BAD_REQUEST on every write, bodies or not", async () => {
      const failures: string[] = [];
      const writes = ops.filter((o) => o.method !== "GET" && !o.hasBody);
      assert.ok(writes.length >= 10, `only ${writes.length} writes without a body`);
      for (const o of writes) {
        for (const key of ["x".repeat(256), "has space"]) {
          const res = await h.request({ method: o.method, url: o.url, idempotencyKey: key });
          const ok = res.status === 400 && isEnvelope(res.json, "BAD_REQUEST", res.headers["x-request-id"]) && o.statuses.includes("400");
          if (!ok) failures.push(`${o.key} → ${res.status} ${res.text.slice(0, 120)} (documents ${o.statuses.join(",")})`);
        }
      }
      assert.deepEqual(failures, []);
    });
  });
}
