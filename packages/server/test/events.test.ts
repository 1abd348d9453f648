// GET /api/v1/events: the audit feed. Paging walks every event exactly once in strictly descending
// sequence (limit 200 and the default 50), next_cursor is null at the end; every filter narrows the
// feed; bad query values are 400 INVALID_QUERY; secret-looking metadata is redacted on output.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { insertApiKey } from "../src/store/api-keys.js";
import { recordEvent } from "../src/store/audit-events.js";
import { assertContract, assertOperationResponse } from "./helpers/contract.js";
import type { EventView } from "../src/store/audit-events.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, startHarness } from "./helpers/harness.js";

const EVENT_READER = "lkm_EventReadOnlyToken0000000000000000000000";
const CUSTOMERS = 230;

type Ev = EventView;

for (const engine of ENGINES) {
  describe(`listEvents [${engine}]`, () => {
    let h: Harness;
    const customerIds: string[] = [];
    let lastRequestId = "";
    before(async () => {
      h = await startHarness(engine);
      await insertApiKey(h.lk.store.db, h.lk.hasher, { name: "events", token: EVENT_READER, scopes: ["event:read"] }, h.clock.now());
      for (let i = 0; i < CUSTOMERS; i++) {
        const r = await h.request({ url: "/api/v1/customers", body: { name: `Customer ${i}`, code: `c-${i}` } });
        assert.equal(r.status, 201, r.text);
        customerIds.push(r.json.data.id);
        lastRequestId = r.json.meta.request_id;
      }
      const p = await h.request({ url: "/api/v1/products", body: { name: "P", code: "p" } });
      assert.equal(p.status, 201);
    });
    after(async () => h?.close());

    const total = async () => Number((await h.lk.store.db.selectFrom("audit_events").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n);

    /** Follows next_cursor to the end; returns every event and the page sizes. */
    async function walk(query: string, token?: string): Promise<{ events: Ev[]; pages: number[] }> {
      const events: Ev[] = [];
      const pages: number[] = [];
      let cursor: number | null = null;
      for (let guard = 0; guard < 100; guard++) {
        const sep = query ? "&" : "";
        const url: string = `/api/v1/events?${query}${cursor !== null ? `${sep}cursor=${cursor}` : ""}`;
        const r = await h.request({ url, token });
        assert.equal(r.status, 200, r.text);
        assertOperationResponse("/api/v1/events", "get", "200", r.json);
        events.push(...r.json.data);
        pages.push(r.json.data.length);
        cursor = r.json.page_info.next_cursor;
        if (cursor === null) return { events, pages };
        assert.equal(typeof cursor, "number");
        assert.equal(cursor, r.json.data[r.json.data.length - 1].sequence, "the cursor is the last sequence of the page");
      }
      throw new Error("paging did not end");
    }

    function assertStrictlyDescending(events: Ev[]): void {
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.sequence < events[i - 1]!.sequence, `sequence ${events[i]!.sequence} after ${events[i - 1]!.sequence}`);
      assert.equal(new Set(events.map((e) => e.sequence)).size, events.length, "no event twice");
    }

    it("limit=200 walks every event exactly once, newest first, and ends with next_cursor null", async () => {
      const count = await total();
      assert.ok(count > 200, `only ${count} events`);
      const { events, pages } = await walk("limit=200", EVENT_READER);
      assert.equal(events.length, count);
      assert.deepEqual(pages, [200, count - 200]);
      assertStrictlyDescending(events);
      const max = await h.lk.store.db.selectFrom("audit_events").select((eb) => eb.fn.max("sequence").as("m")).executeTakeFirstOrThrow();
      assert.equal(events[0]!.sequence, Number(max.m));
      for (const e of events.slice(0, 5)) assertContract("Event", e);
    });

    it("the default page is 50 and walks the same events; limit above 200 is clamped to 200", async () => {
      const count = await total();
      const { events, pages } = await walk("");
      assert.equal(events.length, count);
      assert.ok(pages.slice(0, -1).every((n) => n === 50), pages.join(","));
      assertStrictlyDescending(events);
      const all = await walk("limit=200");
      assert.deepEqual(
        events.map((e) => e.sequence),
        all.events.map((e) => e.sequence),
      );
      const big = await h.request({ url: "/api/v1/events?limit=5000" });
      assert.equal(big.status, 200);
      assert.equal(big.json.data.length, 200);
    });

    it("a cursor returns only older events; a cursor below every sequence returns an empty last page", async () => {
      const first = await h.request({ url: "/api/v1/events?limit=3" });
      const top = first.json.data[0].sequence as number;
      const r = await h.request({ url: `/api/v1/events?limit=3&cursor=${top}` });
      assert.deepEqual(
        r.json.data.map((e: Ev) => e.sequence),
        first.json.data.slice(1).map((e: Ev) => e.sequence).concat(r.json.data[2].sequence),
      );
      const empty = await h.request({ url: "/api/v1/events?cursor=1" });
      assert.equal(empty.status, 200);
      assert.deepEqual(empty.json.data, []);
      assert.equal(empty.json.page_info.next_cursor, null);
    });

    it("filters: event_type, resource_type, resource_id, actor_type, and together", async () => {
      const created = await walk("event_type=customer.created&limit=200");
      assert.equal(created.events.length, CUSTOMERS);
      assert.ok(created.events.every((e) => e.event_type === "customer.created"));
      assertStrictlyDescending(created.events);
      assert.deepEqual(created.events.map((e) => e.resource_id).reverse(), customerIds, "newest first");

      const byResourceType = await walk("resource_type=product");
      assert.deepEqual(
        byResourceType.events.map((e) => e.event_type),
        ["product.created"],
      );

      const one = await h.request({ url: `/api/v1/events?resource_id=${customerIds[7]}` });
      assert.equal(one.json.data.length, 1);
      assert.equal(one.json.data[0].resource_id, customerIds[7]);
      assert.equal(one.json.data[0].resource_type, "customer");

      const system = await walk("actor_type=system");
      assert.ok(system.events.length >= 1);
      assert.ok(system.events.every((e) => e.actor_type === "system"));
      assert.ok(system.events.some((e) => e.event_type === "api_key.created" && e.actor_id === "bootstrap"), "the bootstrap key's creation");
      const apiKey = await walk("actor_type=api_key&limit=200");
      assert.ok(apiKey.events.every((e) => e.actor_type === "api_key"));
      assert.equal(apiKey.events.length + system.events.length, await total());
      const none = await h.request({ url: "/api/v1/events?actor_type=license" });
      assert.deepEqual(none.json.data, []);

      const both = await h.request({ url: `/api/v1/events?event_type=customer.created&resource_type=customer&resource_id=${customerIds[0]}&actor_type=api_key` });
      assert.equal(both.json.data.length, 1);
      const mismatch = await h.request({ url: `/api/v1/events?event_type=product.created&resource_id=${customerIds[0]}` });
      assert.deepEqual(mismatch.json.data, []);
    });

    it("an event shows who, from where and which request: actor_id, ip_address, request_id", async () => {
      const r = await h.request({ url: `/api/v1/events?resource_id=${customerIds[CUSTOMERS - 1]}` });
      const e = r.json.data[0];
      assert.equal(e.event_type, "customer.created");
      assert.equal(e.actor_type, "api_key");
      assert.match(e.actor_id, /^key_/);
      assert.equal(e.ip_address, "127.0.0.1");
      assert.equal(e.request_id, lastRequestId);
      assert.deepEqual(e.metadata, { code: `c-${CUSTOMERS - 1}` });
      assert.match(e.created_at, /^\d{4}-\d\d-\d\dT/);
    });

    it("bad query values → 400 INVALID_QUERY naming the parameter", async () => {
      for (const q of ["actor_type=robot", "cursor=abc", "cursor=-1", "cursor=0", "cursor=1.5", "cursor=99999999999999999999", "limit=0", "limit=abc", "cursor="]) {
        const r = await h.request({ url: `/api/v1/events?${q}` });
        assert.equal(r.status, 400, `${q}: ${r.text}`);
        assert.equal(r.json.error.code, "INVALID_QUERY", q);
        assert.match(r.json.error.detail, new RegExp(q.split("=")[0]!), q);
      }
    });

    it("metadata that looks secret is redacted on output, at any depth; hashes, prefixes and ids are kept", async () => {
      const token = `lkm_${"A".repeat(40)}`;
      await recordEvent(h.lk.store.db, {
        event_type: "license.activated",
        actor_type: "license",
        actor_id: "lic_01AAAAAAAAAAAAAAAAAAAAAAAA",
        resource_type: "license",
        resource_id: "lic_redaction",
        metadata: {
          token: "t0p-secret",
          license_key: "lsk_0123456789ABCDEFGHJKMNPQRSTVWXYZ",
          fingerprint: "raw-machine-id",
          binding_hash: "ab12cd34",
          key_prefix: "lkm_AAAAAAAA",
          device_id: "dev_01AAAAAAAAAAAAAAAAAAAAAAAA",
          note: token,
          nested: { webhook_secret: "whsec_abc", password: "hunter2", list: [{ api_key: "x" }, "whsec_0123456789abcdef0123"], ok: 1 },
          secret_generated: true,
          count: 3,
        },
        created_at: h.clock.now(),
      });
      const r = await h.request({ url: "/api/v1/events?resource_id=lic_redaction", token: EVENT_READER });
      assert.equal(r.status, 200);
      assertContract("Event", r.json.data[0]);
      assert.deepEqual(r.json.data[0].metadata, {
        token: "[redacted]",
        license_key: "[redacted]",
        fingerprint: "[redacted]",
        binding_hash: "ab12cd34",
        key_prefix: "lkm_AAAAAAAA",
        device_id: "dev_01AAAAAAAAAAAAAAAAAAAAAAAA",
        note: "[redacted]",
        nested: { webhook_secret: "[redacted]", password: "[redacted]", list: [{ api_key: "[redacted]" }, "[redacted]"], ok: 1 },
        secret_generated: true,
        count: 3,
      });
      assert.ok(!r.text.includes("hunter2") && !r.text.includes(token));
      assert.equal(r.json.data[0].ip_address, undefined, "absent values are omitted, not null");
      assert.equal(r.json.data[0].request_id, undefined);
    });

    it("API-key and webhook events in the feed never carry the token or the secret", async () => {
      const key = await h.request({ url: "/api/v1/api-keys", body: { name: "feed" } });
      const hook = await h.request({ url: "/api/v1/webhooks", body: { name: "feed", url: "https://hooks.example.com/feed" } });
      const feed = await h.request({ url: "/api/v1/events?limit=5" });
      assert.ok(!feed.text.includes(key.json.data.token.slice(4)));
      assert.ok(!feed.text.includes(hook.json.data.secret.slice(6)));
      assert.deepEqual(
        feed.json.data.slice(0, 2).map((e: Ev) => e.event_type),
        ["webhook_endpoint.created", "api_key.created"],
      );
    });
  });
}
