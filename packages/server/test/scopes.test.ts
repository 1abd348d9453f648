// Every management operation, called with a token that holds every scope except the one the
// operation requires (and not admin), answers 403 TOKEN_SCOPE_DENIED with `requires <scope>`, the
// same scope the generated OpenAPI document declares in x-required-scopes. The operation list comes
// from the served document, so a new route is covered the day it is added.
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { SCOPES } from "../src/http/scopes.js";
import { insertApiKey } from "../src/store/api-keys.js";
import { operationsOf } from "./helpers/conformance.js";
import { CONTRACT_PATH, contract, type Doc } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, startHarness } from "./helpers/harness.js";

const tokenWithout = (scope: string) => `lkm_${`Without${scope.replace(/[^A-Za-z]/g, "")}`.padEnd(40, "0")}`;

for (const engine of ENGINES) {
  describe(`scope denials on every management operation [${engine}]`, () => {
    let h: Harness;
    let ops: { key: string; method: string; url: string; scope: string }[] = [];
    before(async () => {
      h = await startHarness(engine);
      const doc: Doc = (await h.request({ url: "/api/v1/openapi.json", token: null })).json;
      for (const [key, { path, method, op }] of operationsOf(doc)) {
        const scopes: string[] | undefined = op["x-required-scopes"];
        if (!scopes) continue;
        assert.equal(scopes.length, 1, `${key} declares one scope`);
        ops.push({ key, method: method.toUpperCase(), url: path.replace(/\{[a-z_]+\}/g, "x_01AAAAAAAAAAAAAAAAAAAAAAAA"), scope: scopes[0]! });
      }
      ops = ops.sort((a, b) => a.key.localeCompare(b.key));
      const now = h.clock.now();
      for (const scope of new Set(ops.map((o) => o.scope))) {
        const others = SCOPES.filter((s) => s !== scope && s !== "admin");
        await insertApiKey(h.lk.store.db, h.lk.hasher, { name: `without ${scope}`, token: tokenWithout(scope), scopes: others }, now);
      }
    });
    after(async () => h?.close());

    it("covers every management operation of the contract (the 61 it lists plus our 14 extensions)", { skip: !fs.existsSync(CONTRACT_PATH) && "no contract" }, () => {
      const served = new Map(ops.map((o) => [o.key, o.scope]));
      const expected = [...operationsOf(contract())].filter(([, o]) => o.op["x-required-scopes"]);
      assert.equal(expected.length, 61);
      for (const [key, o] of expected) assert.equal(served.get(key), o.op["x-required-scopes"][0], key);
      assert.equal(ops.length, 81);
    });

    it("each operation refuses a token lacking its scope with 403 TOKEN_SCOPE_DENIED naming the scope", async () => {
      const failures: string[] = [];
      for (const o of ops) {
        const hasBody = o.method === "POST" || o.method === "PUT" || o.method === "PATCH";
        const res = await h.request({
          method: o.method as "GET",
          url: o.url,
          token: tokenWithout(o.scope),
          body: hasBody ? {} : undefined,
          idempotencyKey: hasBody ? `scope-${o.key}` : undefined,
        });
        const ok =
          res.status === 403 &&
          res.json?.error?.code === "TOKEN_SCOPE_DENIED" &&
          res.json.error.detail === `requires ${o.scope}` &&
          res.headers["x-request-id"] === res.json.meta.request_id;
        if (!ok) failures.push(`${o.key} → ${res.status} ${res.text.slice(0, 160)}`);
      }
      assert.deepEqual(failures, []);
    });

    it("the same token is let through where it holds the scope (the denial is about the scope, not the token)", async () => {
      const res = await h.request({ url: "/api/v1/products", token: tokenWithout("license:read") });
      assert.equal(res.status, 200);
    });
  });
}
