// Drift check: regenerates openapi.json, src/generated/openapi.ts and src/generated/operations.ts in
// memory from the document a running server serves, and fails if a checked-in file differs. Fix with
// `npm run generate -w @licensekit/sdk`.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type Harness, listen, startHarness } from "../../server/test/helpers/harness.js";
import { extractOperations, GENERATED_FILES, renderAll, SDK_DIR } from "../scripts/generate.js";
import { OPERATIONS } from "../src/generated/operations.js";

describe("generated files match the server's OpenAPI document", () => {
  let h: Harness;
  let doc: Record<string, unknown>;
  before(async () => {
    h = await startHarness("sqlite");
    const base = await listen(h);
    const res = await fetch(`${base}/api/v1/openapi.json`);
    assert.equal(res.status, 200);
    doc = (await res.json()) as Record<string, unknown>;
  });
  after(async () => h?.close());

  it("no checked-in generated file has drifted", async () => {
    const fresh = await renderAll(doc);
    const drifted = GENERATED_FILES.filter((rel) => {
      const target = path.join(SDK_DIR, rel);
      return !fs.existsSync(target) || fs.readFileSync(target, "utf8") !== fresh[rel];
    });
    assert.deepEqual(drifted, [], `regenerate with \`npm run generate -w @licensekit/sdk\`: ${drifted.join(", ")} differ from the server's document`);
  });

  it("a changed document is detected as drift", async () => {
    const changed = structuredClone(doc) as { paths: Record<string, Record<string, Record<string, unknown>>> };
    const renew = changed.paths["/api/v1/licenses/{id}/renew"]?.post;
    assert.ok(renew);
    renew["x-required-scopes"] = ["license:admin"]; // operations.ts and openapi.json
    renew.summary = "Renew (changed)"; // openapi.ts too
    const fresh = await renderAll(doc);
    const other = await renderAll(changed);
    for (const rel of GENERATED_FILES) assert.ok(other[rel] !== fresh[rel], `${rel} did not change`);
  });

  it("the operations table has every operation of the document, with its method, path, scopes and Idempotency-Key rule", () => {
    const ops = extractOperations(doc);
    assert.deepEqual(Object.keys(OPERATIONS).sort(), ops.map((o) => o.operationId).sort());
    const paths = doc.paths as Record<string, Record<string, { operationId?: string; "x-required-scopes"?: string[]; parameters?: { in: string; name: string; required?: boolean }[] }>>;
    let count = 0;
    for (const [p, item] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!op?.operationId) continue;
        count++;
        const row = OPERATIONS[op.operationId as keyof typeof OPERATIONS];
        assert.ok(row, op.operationId);
        assert.equal(row.method, method.toUpperCase());
        assert.equal(row.path, p);
        assert.deepEqual([...row.scopes], op["x-required-scopes"] ?? []);
        const idem = op.parameters?.find((x) => x.in === "header" && x.name.toLowerCase() === "idempotency-key");
        assert.equal(row.idempotency, idem ? (idem.required ? "required" : "optional") : "none", op.operationId);
        assert.equal(row.surface, p.startsWith("/api/v1/license/") ? "runtime" : op["x-required-scopes"] ? "management" : "system");
      }
    }
    assert.equal(count, Object.keys(OPERATIONS).length);
  });

  it("spot checks: the contract's required-key operations, the surfaces, readyz's 503", () => {
    const required = Object.entries(OPERATIONS)
      .filter(([, o]) => o.idempotency === "required")
      .map(([id]) => id)
      .sort();
    for (const id of ["activateLicense", "consumeLicense", "deactivateLicense", "checkoutFloatingLicense", "checkinFloatingLicense", "renewLicense", "transferLicense"]) {
      assert.ok(required.includes(id), id);
    }
    assert.equal(OPERATIONS.renewLicense.surface, "management");
    assert.deepEqual([...OPERATIONS.renewLicense.scopes], ["license:write"]);
    assert.equal(OPERATIONS.validateLicense.surface, "runtime");
    assert.equal(OPERATIONS.listPublicKeys.surface, "system");
    assert.deepEqual([...OPERATIONS.readyz.success], [200, 503]);
    assert.deepEqual([...OPERATIONS.deleteProduct.success], [204]);
  });

  it("a download (a success answer declared in a media type other than JSON) is read as bytes; every other operation as JSON", () => {
    const bytes = Object.entries(OPERATIONS)
      .filter(([, o]) => o.response === "bytes")
      .map(([id]) => id);
    assert.deepEqual(bytes, ["downloadReportExport"]);
    const rows = extractOperations(doc);
    const changed = structuredClone(doc) as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>> };
    const metrics = changed.paths["/metrics"]?.get?.responses["200"];
    assert.ok(metrics);
    metrics.content = { "application/octet-stream": { schema: { type: "string", format: "binary" } } };
    assert.equal(rows.find((o) => o.operationId === "getMetrics")?.response, "json");
    assert.equal(extractOperations(changed).find((o) => o.operationId === "getMetrics")?.response, "bytes");
  });
});
