// The D2 decision order as a golden table. The table is the one printed in docs/runtime.md (between
// the golden-table markers): each row is a license/device/policy state, each column a runtime
// operation, each cell the expected status and code. For every cell this test builds the state
// from scratch, calls the operation and compares; every signed answer (success or error) must
// verify the way the official SDK verifies. Editing the documented table changes what is tested.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DAY_MS } from "../src/clock.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, type Reply, startHarness } from "./helpers/harness.js";
import { type PublicKeyEntry, sdkVerify } from "./helpers/verify.js";

const DOC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../docs/runtime.md");
const OPS = ["activate", "validate", "check", "consume", "offline", "deactivate", "checkout"] as const;
type Op = (typeof OPS)[number];

interface Row {
  state: string;
  cells: Record<Op, { status: number; code?: string }>;
}

/** Parses the golden table out of docs/runtime.md. */
export function goldenTable(markdown: string): Row[] {
  const start = markdown.indexOf("<!-- golden-table:start -->");
  const end = markdown.indexOf("<!-- golden-table:end -->");
  if (start < 0 || end < start) throw new Error("docs/runtime.md has no golden table markers");
  const lines = markdown
    .slice(start, end)
    .split("\n")
    .filter((l) => l.startsWith("| `"));
  return lines.map((line) => {
    const cols = line
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
    const state = /^`([a-z_]+)`$/.exec(cols[0]!)?.[1];
    if (!state) throw new Error(`bad state cell: ${cols[0]}`);
    const cells = {} as Row["cells"];
    OPS.forEach((op, i) => {
      const m = /^(\d{3})(?: `([A-Z_]+)`)?$/.exec(cols[i + 2] ?? "");
      if (!m) throw new Error(`bad cell for ${state}/${op}: ${cols[i + 2]}`);
      cells[op] = { status: Number(m[1]), ...(m[2] ? { code: m[2] } : {}) };
    });
    return { state, cells };
  });
}

interface Fixture {
  key: string;
  binding: Record<string, unknown>;
  featureCode: string;
}

for (const engine of ENGINES) {
  describe(`runtime decision golden table (docs/runtime.md) [${engine}]`, () => {
    let h: Harness;
    let keys: PublicKeyEntry[] = [];
    let n = 0;
    const rows = goldenTable(fs.readFileSync(DOC, "utf8"));
    before(async () => {
      h = await startHarness(engine);
      keys = (await h.request({ url: "/api/v1/system/public-keys", token: null })).json.data;
    });
    after(async () => h?.close());

    const ok = (r: Reply, what: string) => {
      assert.ok(r.status >= 200 && r.status < 300, `${what} → ${r.status} ${r.text}`);
      return r.json;
    };
    const runtime = (op: Op | "floating/checkout", key: string, body: Record<string, unknown>) =>
      h.request({ url: `/api/v1/license/${op}`, licenseKey: key, body, idempotencyKey: `golden-${++n}` });

    /** A product with feature f1, a policy, a license with f1 (quota 100), device dev-A bound unless told. */
    async function fixture(state: string): Promise<Fixture> {
      const now = h.clock.now();
      const policy: Record<string, unknown> = {
        license_type: "subscription",
        max_activations: 2,
        grace_period_days: 7,
        allow_offline_activation: true,
        max_floating_users: 1,
      };
      const license: Record<string, unknown> = { expires_at: new Date(now + 30 * DAY_MS).toISOString() };
      let binding: Record<string, unknown> = { fingerprint: "dev-A", hostname: "host-a" };
      let bind = true;
      let quota = 100;
      let featureCode = "f1";
      switch (state) {
        case "not_started":
          license.starts_at = new Date(now + DAY_MS).toISOString();
          bind = false;
          break;
        case "in_grace":
        case "expired":
          license.expires_at = new Date(now + DAY_MS).toISOString();
          break;
        case "vm_refused":
          policy.allow_vm = false;
          binding = { fingerprint: "dev-A", is_vm: true };
          bind = false;
          break;
        case "container_refused":
          policy.allow_container = false;
          binding = { is_container: true, cluster_id: "prod-eu", namespace: "billing", pod_name: "worker-1" };
          bind = false;
          break;
        case "unbound_free":
          bind = false;
          break;
        case "unbound_full":
          policy.max_activations = 1;
          bind = false;
          break;
        case "offline_refused":
          policy.allow_offline_activation = false;
          break;
        case "floating_off":
          policy.max_floating_users = 0;
          break;
        case "feature_missing":
          featureCode = "not-assigned";
          break;
        case "quota_used":
          quota = 1;
          break;
        case "deactivation_limit":
          policy.max_deactivations = 1;
          policy.deactivation_window_days = 30;
          break;
        default:
          break;
      }
      const tag = `${state}-${++n}`.replace(/_/g, "-");
      const product = ok(await h.request({ url: "/api/v1/products", body: { name: tag, code: tag } }), "product").data;
      const pol = ok(await h.request({ url: `/api/v1/products/${product.id}/policies`, body: { name: "P", code: "p", ...policy } }), "policy").data;
      const feature = ok(await h.request({ url: `/api/v1/products/${product.id}/features`, body: { name: "F1", code: "f1" } }), "feature").data;
      const created = ok(await h.request({ url: "/api/v1/licenses", body: { product_id: product.id, policy_id: pol.id, ...license } }), "license").data;
      const lic = created.license;
      const key: string = created.license_key;
      ok(await h.request({ url: `/api/v1/licenses/${lic.id}/features`, body: { feature_id: feature.id, max_consumptions: quota } }), "assign");
      if (bind) ok(await runtime("activate", key, binding), "bind dev-A");

      const other = { fingerprint: "dev-B" };
      switch (state) {
        case "suspended":
          ok(await h.request({ method: "POST", url: `/api/v1/licenses/${lic.id}/suspend` }), "suspend");
          break;
        case "revoked":
          ok(await h.request({ method: "POST", url: `/api/v1/licenses/${lic.id}/revoke` }), "revoke");
          break;
        case "in_grace":
          h.clock.advance(2 * DAY_MS);
          break;
        case "expired":
          h.clock.advance(9 * DAY_MS);
          break;
        case "blacklisted": {
          const devices = ok(await h.request({ url: `/api/v1/licenses/${lic.id}/devices` }), "devices").data;
          ok(await h.request({ method: "POST", url: `/api/v1/licenses/${lic.id}/devices/${devices[0].id}/blacklist` }), "blacklist");
          break;
        }
        case "version_ineligible":
          ok(await h.request({ url: `/api/v1/products/${product.id}/versions`, body: { version: "2.0.0" } }), "version");
          binding = { ...binding, app_version: "9.9.9" };
          break;
        case "unbound_full":
          ok(await runtime("activate", key, other), "bind dev-B");
          break;
        case "floating_full":
          ok(await runtime("activate", key, other), "bind dev-B");
          ok(await runtime("floating/checkout", key, other), "dev-B takes the only floating seat");
          break;
        case "quota_used":
          ok(await runtime("consume", key, { ...binding, feature_code: "f1", amount: 1, event_id: `use-${n}` }), "use the quota");
          break;
        case "deactivation_limit":
          ok(await runtime("activate", key, other), "bind dev-B");
          ok(await runtime("deactivate", key, other), "dev-B uses the only deactivation");
          break;
        default:
          break;
      }
      return { key, binding, featureCode };
    }

    async function call(op: Op, f: Fixture): Promise<Reply> {
      switch (op) {
        case "consume":
          return runtime("consume", f.key, { ...f.binding, feature_code: f.featureCode, amount: 1, event_id: `ev-${++n}` });
        case "checkout":
          return runtime("floating/checkout", f.key, f.binding);
        default:
          return runtime(op, f.key, f.binding);
      }
    }

    it("the documented table covers every state and operation", () => {
      assert.ok(rows.length >= 17, `only ${rows.length} rows`);
    });

    for (const row of rows) {
      it(`${row.state}: ${OPS.map((op) => `${op} ${row.cells[op].status}${row.cells[op].code ? ` ${row.cells[op].code}` : ""}`).join(", ")}`, async () => {
        const failures: string[] = [];
        for (const op of OPS) {
          const f = await fixture(row.state);
          const res = await call(op, f);
          const want = row.cells[op];
          const got = `${res.status}${res.json?.error?.code ? ` ${res.json.error.code}` : ""}`;
          const expected = `${want.status}${want.code ? ` ${want.code}` : ""}`;
          if (got !== expected) {
            failures.push(`${op}: expected ${expected}, got ${got} (${res.json?.error?.detail ?? ""})`);
            continue;
          }
          if (res.status === 200 && op !== "offline") {
            if (!(await sdkVerify(res.json, keys))) failures.push(`${op}: the 200 answer does not verify`);
            const status = res.json.data?.status;
            if (status !== undefined && status !== (row.state === "in_grace" ? "grace_period" : "active")) failures.push(`${op}: data.status ${status}`);
          } else if (res.status !== 200 && !(await sdkVerify(res.json, keys, "error"))) {
            failures.push(`${op}: the ${res.status} error does not verify`);
          }
        }
        assert.deepEqual(failures, []);
      });
    }
  });
}
