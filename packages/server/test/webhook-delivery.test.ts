// Webhook delivery (D6) against a real node:http receiver on 127.0.0.1: the signed body and headers
// (verified with the recipe of docs/webhooks.md, copied here and checked identical), event-type
// subscriptions, retries with growing backoff on the manual clock, giving up after 12 attempts and the
// operator's retry, the outbox surviving a restart, two workers racing on one database without
// sending anything twice, timeouts and redirects, and the send-time SSRF check with private targets
// refused. The worker is driven with runOnce(); the harness starts no background poll.
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import http, { type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  ATTEMPTS_PER_ROUND,
  BLOCKED_ERROR,
  nominalBackoffMs,
  postPinned,
  resolveTarget,
  signDelivery,
  USER_AGENT,
  WebhookDeliveryWorker,
} from "../src/jobs/webhook-delivery.js";
import { createServices } from "../src/services.js";
import { insertWebhookEndpoint } from "../src/store/webhook-endpoints.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, type Reply, startHarness } from "./helpers/harness.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const DOC = path.resolve(here, "../../../docs/webhooks.md");

// ---- the verify function of docs/webhooks.md, character for character (checked below) ----
export function verify(secret: string, headers: IncomingHttpHeaders, raw: Buffer, now = Date.now() / 1000): boolean {
  const ts = String(headers["x-locksmith-timestamp"] ?? "");
  if (!/^\d{1,12}$/.test(ts) || Math.abs(now - Number(ts)) > 300) return false;
  const id = String(headers["x-locksmith-delivery-id"] ?? "");
  const want = Buffer.from(`v1=${createHmac("sha256", secret).update(`${ts}.${id}.`).update(raw).digest("hex")}`);
  const got = Buffer.from(String(headers["x-locksmith-signature"] ?? ""));
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The text of `export function verify(…) {…}` in a file, whitespace-normalised. */
function verifySource(text: string): string {
  const start = text.indexOf("export function verify(");
  assert.ok(start >= 0, "no verify function");
  const end = text.indexOf("\n}", start);
  return text
    .slice(start, end + 2)
    .split("\n")
    .map((l) => l.trim())
    .join("\n");
}

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
}

/** A webhook receiver: records every request; answers per path from a plan of statuses (default 200). */
class Receiver {
  readonly received: Received[] = [];
  readonly plans = new Map<string, number[]>();
  readonly delays = new Map<string, number>();
  /** Paths that never answer (until close). */
  readonly hold = new Set<string>();
  private held: http.ServerResponse[] = [];
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const p = req.url ?? "/";
      this.received.push({ path: p, headers: req.headers, raw: Buffer.concat(chunks) });
      if (this.hold.has(p)) {
        this.held.push(res);
        return;
      }
      const plan = this.plans.get(p);
      const status = plan && plan.length > 0 ? (plan.length > 1 ? plan.shift()! : plan[0]!) : 200;
      const answer = () => {
        if (status >= 300 && status < 400) res.setHeader("location", `${this.base}/redirected`);
        res.writeHead(status, { "content-type": "text/plain" }).end(status >= 400 ? `upstream down ${status}` : "ok");
      };
      const delay = this.delays.get(p);
      if (delay) setTimeout(answer, delay);
      else answer();
    });
  });
  base = "";

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  at(p: string): Received[] {
    return this.received.filter((r) => r.path === p);
  }

  async close(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function expectError(res: Reply, status: number, code: string): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json.error.code, code, res.text);
}

for (const engine of ENGINES) {
  describe(`webhook delivery [${engine}]`, () => {
    let h: Harness;
    let rx: Receiver;
    let n = 0;

    before(async () => {
      h = await startHarness(engine, { env: { LICENSEKIT_WEBHOOK_ALLOW_PRIVATE: "true" } });
      rx = await new Receiver().start();
    });
    after(async () => {
      await h?.close();
      await rx?.close();
    });

    const nowSeconds = () => Math.floor(h.clock.now() / 1000);

    /** A webhook endpoint at rx.base + p; returns its id and secret. */
    async function hook(p: string, eventTypes: string[] = ["customer.created"]): Promise<{ id: string; secret: string }> {
      const res = await h.request({ url: "/api/v1/webhooks", body: { name: `hook ${p}`, url: rx.base + p, event_types: eventTypes } });
      assert.equal(res.status, 201, res.text);
      return { id: res.json.data.webhook.id, secret: res.json.data.secret };
    }

    async function customer(): Promise<string> {
      const res = await h.request({ url: "/api/v1/customers", body: { name: `Customer ${++n}`, code: `cust-${engine}-${n}` } });
      assert.equal(res.status, 201, res.text);
      return res.json.data.id;
    }

    async function deliveries(hookId: string, query = ""): Promise<Reply> {
      const res = await h.request({ url: `/api/v1/webhooks/${hookId}/deliveries${query}` });
      assert.equal(res.status, 200, res.text);
      return res;
    }

    async function onlyDelivery(hookId: string) {
      const list = (await deliveries(hookId)).json.data;
      assert.equal(list.length, 1, JSON.stringify(list));
      return list[0];
    }

    const drop = async (hookId: string) => assert.equal((await h.request({ method: "DELETE", url: `/api/v1/webhooks/${hookId}` })).status, 204);

    it("docs/webhooks.md shows exactly the verify function this test uses", () => {
      const doc = fs.readFileSync(DOC, "utf8");
      const self = fs.readFileSync(fileURLToPath(import.meta.url), "utf8");
      assert.equal(verifySource(doc), verifySource(self));
    });

    it("a delivery is signed over its raw body, carries every header, and its event is the GET /events item", async () => {
      const p = "/signed";
      const { id, secret } = await hook(p);
      const customerId = await customer();
      assert.equal(await h.lk.webhookDelivery.runOnce(), 1);
      const [got] = rx.at(p);
      assert.ok(got);
      assert.equal(rx.at(p).length, 1);

      const hd = got.headers;
      assert.equal(hd["content-type"], "application/json");
      assert.equal(hd["user-agent"], USER_AGENT);
      assert.match(String(hd["x-locksmith-delivery-id"]), /^whd_[0-9A-Z]{26}$/);
      assert.equal(hd["x-locksmith-event-type"], "customer.created");
      assert.equal(hd["x-locksmith-timestamp"], String(nowSeconds()));
      assert.match(String(hd["x-locksmith-signature"]), /^v1=[0-9a-f]{64}$/);

      assert.ok(verify(secret, hd, got.raw, nowSeconds()), "the docs recipe verifies the delivery");
      assert.ok(!verify(secret, hd, Buffer.concat([got.raw, Buffer.from(" ")]), nowSeconds()), "a changed body does not verify");
      assert.ok(!verify(`${secret}x`, hd, got.raw, nowSeconds()), "another secret does not verify");
      assert.ok(!verify(secret, hd, got.raw, nowSeconds() + 301), "a timestamp older than 5 minutes is refused");
      assert.ok(!verify(secret, { ...hd, "x-locksmith-delivery-id": "whd_other" }, got.raw, nowSeconds()), "the delivery id is signed");

      const body = JSON.parse(got.raw.toString("utf8"));
      assert.deepEqual(Object.keys(body), ["delivery_id", "event"]);
      assert.equal(got.raw.toString("utf8"), JSON.stringify(body), "compact JSON");
      assert.equal(body.delivery_id, hd["x-locksmith-delivery-id"]);
      assert.equal(String(body.event.sequence), hd["x-locksmith-event-sequence"]);
      const events = await h.request({ url: `/api/v1/events?resource_id=${customerId}` });
      assert.equal(events.status, 200);
      assert.deepEqual(body.event, events.json.data[0]);

      const d = await onlyDelivery(id);
      assert.equal(d.id, body.delivery_id);
      assert.equal(d.webhook_id, id);
      assert.equal(d.event_sequence, body.event.sequence);
      assert.equal(d.event_type, "customer.created");
      assert.equal(d.status, "delivered");
      assert.equal(d.attempts, 1);
      assert.equal(d.next_attempt_at, null);
      assert.equal(d.last_status_code, 200);
      assert.equal(d.last_error, null);
      assert.equal(d.last_response_body, "ok");
      assert.equal(d.delivered_at, new Date(h.clock.now()).toISOString());
      const endpoint = await h.request({ url: `/api/v1/webhooks/${id}` });
      assert.equal(endpoint.json.data.last_delivery_at, new Date(h.clock.now()).toISOString());
      assert.equal(await h.lk.webhookDelivery.runOnce(), 0, "nothing left to send");
      await drop(id);
    });

    it("event_types: [] receives every event (its own creation included); a list receives only its types", async () => {
      const all = await hook("/all", []);
      const some = await hook("/some", ["license.created"]);
      const lic = await issueLicense(h);
      const types = async (id: string) => (await deliveries(id)).json.data.map((d: { event_type: string }) => d.event_type).sort();
      assert.deepEqual(await types(all.id), ["license.created", "policy.created", "product.created", "webhook_endpoint.created", "webhook_endpoint.created"]);
      assert.deepEqual(await types(some.id), ["license.created"]);
      const some2 = (await deliveries(some.id)).json.data[0];
      const event = (await h.request({ url: `/api/v1/events?resource_id=${lic.licenseId}&event_type=license.created` })).json.data[0];
      assert.equal(some2.event_sequence, event.sequence);
      await drop(all.id);
      await drop(some.id);
    });

    it("500, 500, then 200: delivered on the 3rd attempt, with growing backoff on the clock", async () => {
      const p = "/flaky";
      rx.plans.set(p, [500, 500, 200]);
      const { id, secret } = await hook(p);
      await customer();
      const metric = async (result: string) => (await h.lk.metrics.webhookDeliveries.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
      const retriedBefore = await metric("retry_scheduled");

      assert.equal(await h.lk.webhookDelivery.runOnce(), 1);
      const first = await onlyDelivery(id);
      assert.equal(first.status, "pending");
      assert.equal(first.attempts, 1);
      assert.equal(first.last_status_code, 500);
      assert.equal(first.last_error, "HTTP 500");
      assert.equal(first.last_response_body, "upstream down 500");
      const d1 = Date.parse(first.next_attempt_at) - Date.parse(first.last_attempt_at);
      assert.ok(d1 >= 8_000 && d1 <= 12_000, `first retry after ~10 s, got ${d1} ms`);

      assert.equal(await h.lk.webhookDelivery.runOnce(), 0, "not due before its time");
      h.clock.set(Date.parse(first.next_attempt_at));
      assert.equal(await h.lk.webhookDelivery.runOnce(), 1);
      const second = await onlyDelivery(id);
      assert.equal(second.attempts, 2);
      const d2 = Date.parse(second.next_attempt_at) - Date.parse(second.last_attempt_at);
      assert.ok(d2 >= 24_000 && d2 <= 36_000, `second retry after ~30 s, got ${d2} ms`);
      assert.ok(d2 > d1, "the backoff grows");

      h.clock.set(Date.parse(second.next_attempt_at));
      assert.equal(await h.lk.webhookDelivery.runOnce(), 1);
      const done = await onlyDelivery(id);
      assert.equal(done.status, "delivered");
      assert.equal(done.attempts, 3);
      assert.equal(done.next_attempt_at, null);
      assert.equal(done.last_status_code, 200);
      assert.equal(done.last_error, null);

      const seen = rx.at(p);
      assert.equal(seen.length, 3);
      assert.equal(new Set(seen.map((r) => r.headers["x-locksmith-delivery-id"])).size, 1, "one delivery id on every attempt");
      assert.equal(new Set(seen.map((r) => r.raw.toString())).size, 1, "the same body on every attempt");
      for (const r of seen) assert.ok(verify(secret, r.headers, r.raw, Number(r.headers["x-locksmith-timestamp"])), "each attempt is signed with its own timestamp");
      assert.equal((await deliveries(id, "?status=delivered")).json.data.length, 1);
      assert.equal((await deliveries(id, "?status=pending")).json.data.length, 0);
      assert.equal((await metric("retry_scheduled")) - retriedBefore, 2);
      await drop(id);
    });

    it("12 failed attempts → failed; the retry route starts a new round, and redelivers a delivered one", async () => {
      const p = "/down";
      rx.plans.set(p, [503]);
      const { id } = await hook(p);
      await customer();
      const delays: number[] = [];
      for (let i = 1; i <= ATTEMPTS_PER_ROUND; i++) {
        assert.equal(await h.lk.webhookDelivery.runOnce(), 1, `attempt ${i}`);
        const d = await onlyDelivery(id);
        assert.equal(d.attempts, i);
        if (i < ATTEMPTS_PER_ROUND) {
          assert.equal(d.status, "pending");
          delays.push(Date.parse(d.next_attempt_at) - Date.parse(d.last_attempt_at));
          h.clock.set(Date.parse(d.next_attempt_at));
        }
      }
      delays.forEach((ms, i) => {
        const nominal = nominalBackoffMs(i + 1, 10_000);
        assert.ok(ms >= nominal * 0.8 - 1 && ms <= nominal * 1.2 + 1, `wait ${i + 1}: ${ms} ms vs nominal ${nominal}`);
      });
      const total = delays.reduce((a, b) => a + b, 0);
      assert.ok(total > 18 * 3600_000 && total < 28 * 3600_000, `12 attempts span about a day, got ${(total / 3600_000).toFixed(1)} h`);
      const failed = await onlyDelivery(id);
      assert.equal(failed.status, "failed");
      assert.equal(failed.next_attempt_at, null);
      assert.equal(failed.last_status_code, 503);
      h.clock.advanceDays(3);
      assert.equal(await h.lk.webhookDelivery.runOnce(), 0, "a failed delivery is not sent again by itself");
      assert.equal(rx.at(p).length, 12);
      assert.deepEqual(
        (await deliveries(id, "?status=failed")).json.data.map((d: { id: string }) => d.id),
        [failed.id],
      );

      // the operator's retry: due now, attempts kept, one audit event
      const url = `/api/v1/webhooks/${id}/deliveries/${failed.id}/retry`;
      const retried = await h.request({ method: "POST", url, idempotencyKey: "retry-1" });
      assert.equal(retried.status, 200, retried.text);
      assert.equal(retried.json.data.status, "pending");
      assert.equal(retried.json.data.attempts, 12);
      assert.equal(retried.json.data.next_attempt_at, new Date(h.clock.now()).toISOString());
      const replay = await h.request({ method: "POST", url, idempotencyKey: "retry-1" });
      assert.equal(replay.text, retried.text);
      expectError(await h.request({ method: "POST", url: `${url}?again=1`, idempotencyKey: "retry-1" }), 409, "IDEMPOTENCY_CONFLICT");
      const audit = await h.request({ url: `/api/v1/events?event_type=webhook_delivery.retried&resource_id=${failed.id}` });
      assert.equal(audit.json.data.length, 1);
      assert.equal(audit.json.data[0].resource_type, "webhook_delivery");
      assert.equal(audit.json.data[0].metadata.webhook_id, id);
      assert.equal(audit.json.data[0].metadata.previous_status, "failed");

      // a new round: more failures are retried again rather than failing at once
      assert.equal(await h.lk.webhookDelivery.runOnce(), 1);
      const again = await onlyDelivery(id);
      assert.equal(again.attempts, 13);
      assert.equal(again.status, "pending");
      const d13 = Date.parse(again.next_attempt_at) - Date.parse(again.last_attempt_at);
      assert.ok(d13 >= 8_000 && d13 <= 12_000, `the new round starts at the first backoff step, got ${d13} ms`);

      rx.plans.set(p, [200]);
      h.clock.set(Date.parse(again.next_attempt_at));
      assert.equal(await h.lk.webhookDelivery.runOnce(), 1);
      assert.equal((await onlyDelivery(id)).status, "delivered");

      // redelivery of a delivered one (allowed: the receiver may have lost it)
      const redo = await h.request({ method: "POST", url });
      assert.equal(redo.status, 200, redo.text);
      assert.equal(redo.json.data.status, "pending");
      assert.equal(await h.lk.webhookDelivery.runOnce(), 1);
      const redelivered = await onlyDelivery(id);
      assert.equal(redelivered.status, "delivered");
      assert.equal(redelivered.attempts, 15);
      const ids = rx.at(p).map((r) => r.headers["x-locksmith-delivery-id"]);
      assert.equal(ids.length, 15);
      assert.equal(new Set(ids).size, 1);
      await drop(id);
    });

    it("retry: 404 for an unknown webhook, an unknown delivery, and another webhook's delivery; the list pages", async () => {
      const a = await hook("/a");
      const b = await hook("/b");
      for (let i = 0; i < 3; i++) await customer();
      const listA = (await deliveries(a.id)).json.data;
      assert.equal(listA.length, 3);
      const retry = (hookId: string, deliveryId: string) => h.request({ method: "POST", url: `/api/v1/webhooks/${hookId}/deliveries/${deliveryId}/retry` });
      expectError(await retry("whk_01AAAAAAAAAAAAAAAAAAAAAAAA", listA[0].id), 404, "NOT_FOUND");
      expectError(await retry(a.id, "whd_01AAAAAAAAAAAAAAAAAAAAAAAA"), 404, "NOT_FOUND");
      expectError(await retry(b.id, listA[0].id), 404, "NOT_FOUND");
      expectError(await h.request({ url: "/api/v1/webhooks/whk_01AAAAAAAAAAAAAAAAAAAAAAAA/deliveries" }), 404, "NOT_FOUND");
      expectError(await h.request({ url: `/api/v1/webhooks/${a.id}/deliveries?status=lost` }), 400, "INVALID_QUERY");

      // newest first, two pages
      const page1 = (await deliveries(a.id, "?limit=2")).json;
      assert.equal(page1.data.length, 2);
      assert.ok(page1.page_info.next_cursor);
      const page2 = (await deliveries(a.id, `?limit=2&cursor=${page1.page_info.next_cursor}`)).json;
      assert.equal(page2.data.length, 1);
      assert.equal(page2.page_info.next_cursor, null);
      const seqs = [...page1.data, ...page2.data].map((d: { event_sequence: number }) => d.event_sequence);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => y - x), "newest first");
      assert.deepEqual(
        [...page1.data, ...page2.data].map((d: { id: string }) => d.id),
        listA.map((d: { id: string }) => d.id),
      );
      await drop(a.id);
      await drop(b.id);
    });

    it("a deactivated endpoint's deliveries wait, neither sent nor failed, and go out once it is active again", async () => {
      const p = "/paused";
      const { id } = await hook(p);
      await customer();
      assert.equal((await h.request({ method: "PATCH", url: `/api/v1/webhooks/${id}`, body: { is_active: false } })).status, 200);
      h.clock.advance(60_000);
      assert.equal(await h.lk.webhookDelivery.runOnce(), 0);
      assert.equal(rx.at(p).length, 0);
      const waiting = await onlyDelivery(id);
      assert.equal(waiting.status, "pending");
      assert.equal(waiting.attempts, 0);
      assert.equal((await h.request({ method: "PATCH", url: `/api/v1/webhooks/${id}`, body: { is_active: true } })).status, 200);
      assert.equal(await h.lk.webhookDelivery.runOnce(), 1);
      assert.equal((await onlyDelivery(id)).status, "delivered");
      assert.equal(rx.at(p).length, 1);
      await drop(id);
    });

    it("started, the worker polls on its own and sends what becomes due; stopped, it sends nothing more", async () => {
      const p = "/polled";
      const { id } = await hook(p);
      const worker = new WebhookDeliveryWorker({
        store: h.lk.store,
        clock: h.clock,
        config: { ...h.config.webhookDelivery, pollMs: 20 },
        allowPrivate: true,
        secretKey: h.lk.webhookSecretKey,
        metrics: h.lk.metrics,
      });
      worker.start();
      try {
        await customer();
        for (let i = 0; i < 250 && rx.at(p).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(rx.at(p).length, 1, "delivered by the poll");
      } finally {
        await worker.stop();
      }
      await customer();
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(rx.at(p).length, 1, "a stopped worker sends nothing");
      assert.equal((await deliveries(id, "?status=pending")).json.data.length, 1);
      await drop(id);
    });

    it("durability: an event written before a restart is delivered after it", async () => {
      const p = "/durable";
      const { id } = await hook(p);
      await customer();
      await h.restart();
      assert.equal(rx.at(p).length, 0);
      assert.equal(await h.lk.webhookDelivery.runOnce(), 1);
      assert.equal(rx.at(p).length, 1);
      assert.equal((await onlyDelivery(id)).status, "delivered");
      await drop(id);
    });

    it("no answer within the timeout and a redirect are failed attempts; the redirect is not followed", async () => {
      const slow = "/slow";
      const moved = "/moved";
      rx.hold.add(slow);
      rx.plans.set(moved, [302]);
      const s = await hook(slow);
      const m = await hook(moved);
      await customer();
      const quick = new WebhookDeliveryWorker({
        store: h.lk.store,
        clock: h.clock,
        config: { ...h.config.webhookDelivery, timeoutMs: 1000 },
        allowPrivate: true,
        secretKey: h.lk.webhookSecretKey,
        metrics: h.lk.metrics,
      });
      const started = Date.now();
      assert.equal(await quick.runOnce(), 2);
      assert.ok(Date.now() - started < 5000, "the timeout bounds the attempt");
      const timedOut = await onlyDelivery(s.id);
      assert.equal(timedOut.status, "pending");
      assert.equal(timedOut.last_status_code, null);
      assert.equal(timedOut.last_error, "timeout: no answer within 1000 ms");
      const redirected = await onlyDelivery(m.id);
      assert.equal(redirected.status, "pending");
      assert.equal(redirected.last_status_code, 302);
      assert.equal(redirected.last_error, "redirect not followed (HTTP 302)");
      assert.equal(rx.at("/redirected").length, 0);
      await quick.stop();
      await drop(s.id);
      await drop(m.id);
    });

    it("an attempt connects only to the checked addresses: a name that does not resolve is reached at its pinned address", async () => {
      const host = "pinned.invalid";
      assert.equal((await resolveTarget(host, true)).ok, false, "the name itself does not resolve");
      const signed = signDelivery("whsec_0123456789abcdefghijklmnopqrstuv", "whd_pinned", { sequence: 1, event_type: "product.created" }, nowSeconds());
      const res = await postPinned(new URL(`http://${host}:${rx.port}/pinned`), [{ address: "127.0.0.1", family: 4 }], signed, 2000, new AbortController().signal);
      assert.equal(res.statusCode, 200);
      const [got] = rx.at("/pinned");
      assert.equal(got?.headers.host, `${host}:${rx.port}`, "the Host header keeps the URL's name");
      assert.equal(got?.raw.toString(), signed.body.toString());
    });

    it("two workers on one database racing over 50 due deliveries send each exactly once", async () => {
      const p = "/race";
      rx.delays.set(p, 5);
      const { id } = await hook(p);
      for (let i = 0; i < 50; i++) await customer();
      // PostgreSQL: a second server's services (own pool, own worker), as a second process would have.
      // SQLite: better-sqlite3 is synchronous, so two connections in one process would block each
      // other; a second worker on the same store races the claims instead (processes are in workers.test.ts).
      const other =
        engine === "postgres"
          ? (await createServices(h.config, { clock: h.clock })).services
          : {
              webhookDelivery: new WebhookDeliveryWorker({
                store: h.lk.store,
                clock: h.clock,
                config: h.config.webhookDelivery,
                allowPrivate: true,
                secretKey: h.lk.webhookSecretKey,
                metrics: h.lk.metrics,
              }),
              store: null,
            };
      try {
        const [a, b] = await Promise.all([h.lk.webhookDelivery.runOnce(), other.webhookDelivery.runOnce()]);
        assert.equal(a + b, 50);
        assert.ok(a > 0 && b > 0, `both workers sent (${a} + ${b})`);
      } finally {
        await other.webhookDelivery.stop();
        await other.store?.close();
      }
      const ids = rx.at(p).map((r) => String(r.headers["x-locksmith-delivery-id"]));
      assert.equal(ids.length, 50, "each delivery sent once");
      assert.equal(new Set(ids).size, 50);
      const all = (await deliveries(id, "?limit=200")).json.data;
      assert.equal(all.length, 50);
      assert.ok(all.every((d: { status: string; attempts: number }) => d.status === "delivered" && d.attempts === 1));
      await drop(id);
    });
  });

  describe(`webhook targets without LICENSEKIT_WEBHOOK_ALLOW_PRIVATE [${engine}]`, () => {
    let h: Harness;
    let rx: Receiver;
    before(async () => {
      h = await startHarness(engine);
      rx = await new Receiver().start();
    });
    after(async () => {
      await h?.close();
      await rx?.close();
    });

    it("refuses loopback and private literal URLs at create (422)", async () => {
      for (const url of ["http://127.0.0.1/", "http://10.0.0.1/", "http://[::1]/", "http://localhost:8080/x", "http://[::ffff:192.168.1.1]/"]) {
        expectError(await h.request({ url: "/api/v1/webhooks", body: { name: "internal", url } }), 422, "VALIDATION_ERROR");
      }
    });

    it("a host name that resolves to loopback is refused at send time: nothing reaches the receiver, the attempt fails as blocked", async () => {
      const now = h.clock.now();
      // Rows inserted directly: the API refuses these URLs, but DNS may change after an endpoint is saved.
      const named = await insertWebhookEndpoint(
        h.lk.store.db,
        h.lk.webhookSecretKey,
        { name: "by name", url: `http://localhost:${rx.port}/named`, eventTypes: [], secret: "whsec_0123456789abcdefghijklmnopqrstuv", isActive: true },
        now,
      );
      const literal = await insertWebhookEndpoint(
        h.lk.store.db,
        h.lk.webhookSecretKey,
        { name: "literal", url: `http://127.0.0.1:${rx.port}/literal`, eventTypes: [], secret: "whsec_0123456789abcdefghijklmnopqrstuv", isActive: true },
        now,
      );
      assert.equal((await h.request({ url: "/api/v1/customers", body: { name: "Blocked", code: "blocked" } })).status, 201);
      assert.equal(await h.lk.webhookDelivery.runOnce(), 2);
      assert.equal(rx.received.length, 0, "the receiver got nothing");
      for (const ep of [named, literal]) {
        const list = (await h.request({ url: `/api/v1/webhooks/${ep.id}/deliveries` })).json.data;
        assert.equal(list.length, 1);
        assert.equal(list[0].status, "pending");
        assert.equal(list[0].attempts, 1, "a blocked attempt counts as a failed attempt");
        assert.equal(list[0].last_error, BLOCKED_ERROR);
        assert.equal(list[0].last_status_code, null);
      }
    });

    it("resolveTarget: a name is checked against every address it resolves to; allow-private lets it through, pinned to those addresses", async () => {
      assert.deepEqual(await resolveTarget("localhost", false), { ok: false, error: BLOCKED_ERROR });
      assert.deepEqual(await resolveTarget("[::1]", false), { ok: false, error: BLOCKED_ERROR });
      assert.deepEqual(await resolveTarget("169.254.169.254", false), { ok: false, error: BLOCKED_ERROR });
      const allowed = await resolveTarget("localhost", true);
      assert.ok(allowed.ok && allowed.addresses.length > 0 && allowed.addresses.every((a) => a.address === "127.0.0.1" || a.address === "::1"));
      assert.deepEqual(await resolveTarget("93.184.216.34", false), { ok: true, addresses: [{ address: "93.184.216.34", family: 4 }] });
    });
  });
}
