// The OpenAPI document this server generates from its route schemas is checked against the
// reference contract (when ../shared/contract/openapi.yaml exists): every operation at the same
// path and method with the same operationId, x-required-scopes and statuses; request and response
// schemas with the same property names, required lists and enums. What we add beyond it must be
// listed in docs/api-extensions.md. Also: docs/errors.md and docs/events.md match their tables.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { renderEventsDoc } from "../src/domain/event-types.js";
import { renderErrorsDoc } from "../src/http/errors-doc.js";
import { CONTRACT_PATH, contract, type Doc } from "./helpers/contract.js";
import { compareDocuments, documentedExtensions } from "./helpers/conformance.js";
import { type Harness, startHarness } from "./helpers/harness.js";

const docsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../docs");
const contractPresent = fs.existsSync(CONTRACT_PATH);

describe("generated OpenAPI vs the reference contract (conformance)", { skip: contractPresent ? false : `no contract at ${CONTRACT_PATH}; skipped` }, () => {
  let h: Harness;
  let ours: Doc;
  before(async () => {
    h = await startHarness("sqlite");
    const res = await h.request({ url: "/api/v1/openapi.json", token: null });
    assert.equal(res.status, 200);
    ours = res.json;
  });
  after(async () => h?.close());

  it("is an OpenAPI 3.1 document", () => {
    assert.match(ours.openapi, /^3\.1\./);
  });

  it("breaks nothing a client of the contract relies on: every operation served, every scope, status, field, required list and enum", () => {
    const { breaks } = compareDocuments(contract(), ours);
    assert.deepEqual(breaks, []);
  });

  it("lists every extension beyond the contract in docs/api-extensions.md, and nothing else", () => {
    const { extensions } = compareDocuments(contract(), ours);
    const documented = documentedExtensions(fs.readFileSync(path.join(docsDir, "api-extensions.md"), "utf8"));
    const missing = extensions.filter((e) => !documented.includes(e));
    const stale = documented.filter((e) => !extensions.includes(e));
    assert.deepEqual({ missing, stale }, { missing: [], stale: [] });
  });

  it("the comparison itself catches a break and an extension", () => {
    const changed = JSON.parse(JSON.stringify(ours));
    const op = changed.paths["/api/v1/products"].post;
    op["x-required-scopes"] = ["admin"];
    delete op.requestBody.content["application/json"].schema.properties.code;
    changed.paths["/api/v1/extra"] = { get: { operationId: "extra", responses: { 200: { description: "x" } } } };
    const { breaks, extensions } = compareDocuments(contract(), changed);
    assert.ok(breaks.some((b) => b.startsWith("createProduct x-required-scopes")), breaks.join("\n"));
    assert.ok(breaks.includes("createProduct request.code is missing"), breaks.join("\n"));
    assert.ok(extensions.includes("GET /api/v1/extra (extra)"));
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
