// Checks that the test suite exercised every status each management operation documents: for each
// operation of the served OpenAPI document (contract operations and our extensions alike), every
// status in its `responses` must appear in the status log the harness writes when
// LICENSEKIT_TEST_STATUS_LOG is set. run-tests.mjs runs this after a full, green run.
// Usage: tsx test/helpers/status-coverage.ts <status-log>
import fs from "node:fs";
import { operationsOf } from "./conformance.js";
import type { Doc } from "./contract.js";
import { startHarness } from "./harness.js";

export function missingStatuses(doc: Doc, logText: string): string[] {
  const seen = new Map<string, Set<string>>();
  const ops = [...operationsOf(doc)].filter(([, o]) => o.op["x-required-scopes"]);
  const matchers = ops.map(([key, o]) => ({
    key,
    method: o.method.toUpperCase(),
    re: new RegExp(`^${o.path.replace(/\{[a-z_]+\}/g, "[^/]+")}$`),
    // A literal segment beats a parameter: /licenses/bulk is not /licenses/{id}.
    params: (o.path.match(/\{/g) ?? []).length,
  }));
  for (const line of logText.split("\n")) {
    const [method, url, status] = line.split(" ");
    if (!method || !url || !status) continue;
    const hit = matchers.filter((m) => m.method === method && m.re.test(url)).sort((a, b) => a.params - b.params)[0];
    if (!hit) continue;
    if (!seen.has(hit.key)) seen.set(hit.key, new Set());
    seen.get(hit.key)!.add(status);
  }
  const missing: string[] = [];
  for (const [key, o] of ops) {
    const got = seen.get(key) ?? new Set<string>();
    const absent = Object.keys(o.op.responses ?? {}).filter((s) => !got.has(s));
    if (absent.length) missing.push(`${key} (${o.op.operationId}): never answered ${absent.join(", ")}`);
  }
  return missing;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop()!)) {
  const log = process.argv[2];
  if (!log) throw new Error("usage: status-coverage.ts <status-log>");
  const h = await startHarness("sqlite");
  const doc = (await h.request({ url: "/api/v1/openapi.json", token: null })).json;
  await h.close();
  const missing = missingStatuses(doc, fs.readFileSync(log, "utf8"));
  if (missing.length) {
    console.error(`status coverage: ${missing.length} operations have documented statuses no test produced:\n  ${missing.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`status coverage: every documented status of ${[...operationsOf(doc)].filter(([, o]) => o.op["x-required-scopes"]).length} management operations was produced by a test`);
}
