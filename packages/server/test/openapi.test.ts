// The OpenAPI document this server generates from its route schemas is checked against the
// reference contract: same paths, methods, operationIds and scopes; request bodies accept every
// contract field with the same required set and refuse unknown fields; success answers declare
// every field the contract requires. Also: docs/errors.md is exactly what the error table renders.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { renderEventsDoc } from "../src/domain/event-types.js";
import { renderErrorsDoc } from "../src/http/errors-doc.js";
import { contract, type Doc } from "./helpers/contract.js";
import { type Harness, startHarness } from "./helpers/harness.js";

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

/** Operations of the contract this server implements so far; grows with each issue. */
const IMPLEMENTED = [
  "health",
  "healthz",
  "readyz",
  "getMetrics",
  "listPublicKeys",
  "activateLicense",
  "validateLicense",
  "checkLicense",
  "listProducts",
  "createProduct",
  "getProduct",
  "listPoliciesByProduct",
  "createPolicy",
  "getPolicy",
  "listCustomers",
  "createCustomer",
  "getCustomer",
  "listLicenses",
  "createLicense",
  "getLicense",
  "suspendLicense",
  "reinstateLicense",
  "revokeLicense",
].sort();

function resolve(doc: Doc, schema: Doc): Doc {
  if (schema?.$ref) return resolve(doc, schema.$ref.replace("#/", "").split("/").reduce((o: Doc, k: string) => o[k], doc));
  if (schema?.allOf) {
    const parts = schema.allOf.map((s: Doc) => resolve(doc, s));
    return {
      type: "object",
      additionalProperties: parts.every((p: Doc) => p.additionalProperties === false) ? false : undefined,
      properties: Object.assign({}, ...parts.map((p: Doc) => p.properties ?? {})),
      required: parts.flatMap((p: Doc) => p.required ?? []),
    };
  }
  return schema;
}

function operations(doc: Doc): Map<string, { path: string; method: string; op: Doc }> {
  const out = new Map();
  for (const [p, item] of Object.entries(doc.paths as Record<string, Doc>)) {
    for (const m of METHODS) if (item[m]?.operationId) out.set(item[m].operationId, { path: p, method: m, op: item[m] });
  }
  return out;
}

function successStatus(op: Doc): string {
  return Object.keys(op.responses).find((s) => s.startsWith("2"))!;
}

describe("generated OpenAPI vs the reference contract", () => {
  let h: Harness;
  let ours: Doc;
  const ref = contract();
  before(async () => {
    h = await startHarness("sqlite");
    const res = await h.request({ url: "/api/v1/openapi.json", token: null });
    assert.equal(res.status, 200);
    ours = res.json;
  });
  after(async () => h?.close());

  it("implements exactly the expected contract operations, at the contract's paths and methods", () => {
    const mine = operations(ours);
    const theirs = operations(ref);
    assert.deepEqual([...mine.keys()].filter((id) => theirs.has(id)).sort(), IMPLEMENTED);
    for (const id of IMPLEMENTED) {
      assert.equal(mine.get(id)!.path, theirs.get(id)!.path, id);
      assert.equal(mine.get(id)!.method, theirs.get(id)!.method, id);
    }
    // Nothing we serve is outside the contract.
    assert.deepEqual([...mine.keys()].filter((id) => !theirs.has(id)), []);
  });

  it("declares the contract's x-required-scopes and success status on every implemented operation", () => {
    const mine = operations(ours);
    const theirs = operations(ref);
    for (const id of IMPLEMENTED) {
      const a = mine.get(id)!.op;
      const b = theirs.get(id)!.op;
      assert.deepEqual(a["x-required-scopes"], b["x-required-scopes"], `${id} scopes`);
      assert.equal(successStatus(a), successStatus(b), `${id} success status`);
    }
  });

  it("accepts every contract request field with the same required set, and refuses unknown fields", () => {
    const mine = operations(ours);
    const theirs = operations(ref);
    for (const id of IMPLEMENTED) {
      const b = theirs.get(id)!.op;
      const refBody = b.requestBody && resolve(ref, b.requestBody.content["application/json"].schema);
      const a = mine.get(id)!.op;
      const myBody = a.requestBody?.content?.["application/json"]?.schema;
      if (!refBody) {
        assert.equal(myBody, undefined, `${id} has no body in the contract`);
        continue;
      }
      assert.ok(myBody, `${id} has a request body`);
      for (const field of Object.keys(refBody.properties ?? {})) assert.ok(field in myBody.properties, `${id} accepts ${field}`);
      assert.deepEqual([...(myBody.required ?? [])].sort(), [...(refBody.required ?? [])].sort(), `${id} required fields`);
      assert.equal(myBody.additionalProperties, false, `${id} refuses unknown fields`);
      const refIdem = (b.parameters ?? []).some((p: Doc) => (p.$ref ?? "").endsWith("IdempotencyKeyHeader"));
      const myIdem = (a.parameters ?? []).find((p: Doc) => p.in === "header" && p.name.toLowerCase() === "idempotency-key");
      if (refIdem) assert.equal(myIdem?.required, true, `${id} requires Idempotency-Key`);
    }
  });

  it("declares every field the contract requires in success answers", () => {
    const mine = operations(ours);
    const theirs = operations(ref);
    const check = (label: string, refSchema: Doc, mySchema: Doc) => {
      const r = resolve(ref, refSchema);
      if (r?.type !== "object" || !r.properties) return;
      for (const field of r.required ?? []) assert.ok(mySchema?.properties?.[field], `${label}.${field} declared`);
      for (const [field, sub] of Object.entries(r.properties as Record<string, Doc>)) {
        if (mySchema?.properties?.[field]) {
          const rs = resolve(ref, sub);
          if (rs?.type === "object") check(`${label}.${field}`, rs, mySchema.properties[field]);
          if (rs?.type === "array" && rs.items) check(`${label}.${field}[]`, rs.items, mySchema.properties[field].items);
        }
      }
    };
    for (const id of IMPLEMENTED) {
      const b = theirs.get(id)!.op;
      const s = successStatus(b);
      const refSchema = b.responses[s]?.content?.["application/json"]?.schema;
      if (!refSchema) continue;
      check(id, refSchema, mine.get(id)!.op.responses[s].content["application/json"].schema);
    }
  });
});

describe("docs/errors.md", () => {
  it("is exactly what the error-code table renders (run `npm run docs:errors` after changing codes)", () => {
    const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../docs/errors.md");
    assert.equal(fs.readFileSync(file, "utf8"), renderErrorsDoc());
  });
});

describe("docs/events.md", () => {
  it("is exactly what the event-type table renders (run `npm run docs:events` after adding a type)", () => {
    const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../docs/events.md");
    assert.equal(fs.readFileSync(file, "utf8"), renderEventsDoc());
  });
});
