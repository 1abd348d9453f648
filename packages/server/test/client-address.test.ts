// An API key's allowed_cidrs are checked against the client address, which is the socket peer
// unless that peer is a trusted proxy (LICENSEKIT_TRUSTED_PROXIES), in which case it is the
// X-Forwarded-For client. IPv4 and IPv6 both work; a forged X-Forwarded-For from an untrusted peer
// is ignored; the audit event records the address that was checked. Real HTTP over loopback.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { insertApiKey } from "../src/store/api-keys.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, listen, startHarness } from "./helpers/harness.js";

const OFFICE = "lkm_OfficeNetworkOnly0000000000000000000000";
const V6 = "lkm_Ipv6NetworkOnly000000000000000000000000";

async function get(base: string, token: string, forwardedFor?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (forwardedFor) headers["x-forwarded-for"] = forwardedFor;
  const res = await fetch(`${base}/api/v1/products`, { headers });
  return { status: res.status, json: (await res.json()) as { error?: { code: string; detail?: string } } };
}

async function withKeys(h: Harness): Promise<string> {
  const now = h.clock.now();
  await insertApiKey(h.lk.store.db, h.lk.hasher, { name: "office", token: OFFICE, scopes: ["admin"], allowedCidrs: ["203.0.113.0/24"] }, now);
  await insertApiKey(h.lk.store.db, h.lk.hasher, { name: "v6", token: V6, scopes: ["admin"], allowedCidrs: ["2001:db8::/32"] }, now);
  return listen(h);
}

for (const engine of ENGINES) {
  describe(`allowed_cidrs behind a trusted proxy [${engine}]`, () => {
    let h: Harness;
    let base: string;
    before(async () => {
      h = await startHarness(engine, { env: { LICENSEKIT_TRUSTED_PROXIES: "127.0.0.1, ::1" } });
      base = await withKeys(h);
    });
    after(async () => h?.close());

    it("the forwarded client inside the CIDR is let in; outside it, or without the header, 401 naming the address", async () => {
      assert.equal((await get(base, OFFICE, "203.0.113.7")).status, 200);
      const outside = await get(base, OFFICE, "198.51.100.1");
      assert.equal(outside.status, 401);
      assert.equal(outside.json.error?.code, "UNAUTHORIZED");
      assert.match(outside.json.error?.detail ?? "", /198\.51\.100\.1/);
      assert.equal((await get(base, OFFICE)).status, 401, "the proxy's own address is not in the CIDR");
    });

    it("IPv6 clients are matched against IPv6 CIDRs", async () => {
      assert.equal((await get(base, V6, "2001:db8::5")).status, 200);
      assert.equal((await get(base, V6, "2001:db9::5")).status, 401);
      assert.equal((await get(base, V6, "203.0.113.7")).status, 401);
    });

    it("the audit event of a write records the forwarded client address", async () => {
      const res = await fetch(`${base}/api/v1/customers`, {
        method: "POST",
        headers: { authorization: `Bearer ${OFFICE}`, "x-forwarded-for": "203.0.113.9", "content-type": "application/json" },
        body: JSON.stringify({ name: "Proxied", code: "proxied" }),
      });
      assert.equal(res.status, 201);
      const id = ((await res.json()) as { data: { id: string } }).data.id;
      const ev = await h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", id).executeTakeFirstOrThrow();
      assert.equal(ev.ip_address, "203.0.113.9");
    });
  });

  describe(`allowed_cidrs without trusted proxies [${engine}]`, () => {
    let h: Harness;
    let base: string;
    before(async () => {
      h = await startHarness(engine);
      base = await withKeys(h);
    });
    after(async () => h?.close());

    it("a forged X-Forwarded-For from an untrusted peer is ignored", async () => {
      const res = await get(base, OFFICE, "203.0.113.7");
      assert.equal(res.status, 401);
      assert.match(res.json.error?.detail ?? "", /127\.0\.0\.1/);
    });
  });
}
