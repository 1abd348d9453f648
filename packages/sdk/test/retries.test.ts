// Retries, exactly by the guidance rule, shown through a fault-injecting proxy (127.0.0.1 only) in front
// of a real server: GETs retried after 503, 429 (waiting Retry-After) and a dropped connection; a POST
// with an Idempotency-Key retried after the server applied it and the client saw 503 — applied once;
// a POST without one never retried; 400/403/404/409/422 never retried; deadline, timeout and abort.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { ADMIN_TOKEN, type Harness, issueLicense, listen, startHarness } from "../../server/test/helpers/harness.js";
import { ApiError, type ErrorHookEvent, ManagementClient, RuntimeClient, type RuntimeClientOptions, TransportError } from "../src/index.js";
import { backoffDelay, isRetryableFailure, isRetryableRequest, newIdempotencyKey, parseRetryAfter, resolveRetryOptions, retryDelay } from "../src/retry.js";
import { type FaultProxy, startFaultProxy } from "./helpers/proxy.js";
import { rejectsWith } from "./helpers/assertions.js";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const FAST = { retries: 3, baseDelayMs: 20, maxDelayMs: 50 };

describe("retry rule (pure)", () => {
  it("parses Retry-After as seconds or an HTTP-date", () => {
    const now = Date.parse("2026-03-01T12:00:00.000Z");
    assert.equal(parseRetryAfter("1", now), 1000);
    assert.equal(parseRetryAfter(" 0 ", now), 0);
    assert.equal(parseRetryAfter("Sun, 01 Mar 2026 12:00:05 GMT", now), 5000);
    assert.equal(parseRetryAfter("Sun, 01 Mar 2026 11:00:00 GMT", now), 0);
    assert.equal(parseRetryAfter("soon", now), undefined);
    assert.equal(parseRetryAfter("-3", now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });

  it("backs off exponentially with full jitter, capped by maxDelayMs", () => {
    const o = { baseDelayMs: 100, maxDelayMs: 1000 };
    assert.equal(backoffDelay(1, o, () => 0), 0);
    assert.equal(backoffDelay(1, o, () => 0.999999), 99);
    assert.equal(backoffDelay(3, o, () => 0.999999), 399);
    assert.equal(backoffDelay(10, o, () => 0.999999), 999);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(2, o);
      assert.ok(d >= 0 && d < 200);
    }
  });

  it("retries only GET/HEAD or keyed requests, and only transport failures, 429 and 5xx", () => {
    const opts = resolveRetryOptions();
    assert.equal(isRetryableRequest("GET", false, opts), true);
    assert.equal(isRetryableRequest("HEAD", false, opts), true);
    assert.equal(isRetryableRequest("POST", false, opts), false);
    assert.equal(isRetryableRequest("DELETE", false, opts), false);
    assert.equal(isRetryableRequest("POST", true, opts), true);
    // retryableMethods can narrow the rule, never widen it to unkeyed writes
    assert.equal(isRetryableRequest("POST", false, resolveRetryOptions({ retryableMethods: ["GET", "POST"] })), false);
    assert.equal(isRetryableRequest("GET", false, resolveRetryOptions({ retryableMethods: [] })), false);

    const api = (status: number, code: string) => new ApiError({ status, body: { error: { code, message: "m" }, meta: { request_id: "r" } } });
    for (const s of [429, 500, 502, 503, 504]) assert.equal(isRetryableFailure(api(s, "X")), true, String(s));
    for (const s of [400, 401, 403, 404, 405, 409, 413, 415, 422]) assert.equal(isRetryableFailure(api(s, "X")), false, String(s));
    assert.equal(isRetryableFailure(api(409, "IDEMPOTENCY_CONFLICT")), false);
    assert.equal(isRetryableFailure(api(409, "IDEMPOTENCY_IN_PROGRESS")), false);
    assert.equal(isRetryableFailure(new TransportError({ message: "x" })), true);
    assert.equal(isRetryableFailure(new TransportError({ message: "x", timedOut: true })), true);
    assert.equal(isRetryableFailure(new TransportError({ message: "x", aborted: true })), false);
    assert.equal(isRetryableFailure(new Error("x")), false);
  });

  it("honours Retry-After within the deadline and gives up when it would pass it", () => {
    const opts = { baseDelayMs: 100, maxDelayMs: 100 };
    const e429 = new ApiError({ status: 429, body: null, headers: new Headers({ "retry-after": "2" }) });
    assert.equal(retryDelay(e429, 1, opts, 10_000), 2000);
    assert.equal(retryDelay(e429, 1, opts, 1_500), undefined);
    const e500 = new ApiError({ status: 500, body: null });
    const d = retryDelay(e500, 1, opts, 10_000);
    assert.ok(d !== undefined && d < 100);
  });
});

describe("retries through a fault-injecting proxy", () => {
  let h: Harness;
  let base: string;
  let proxy: FaultProxy;
  let mgmt: ManagementClient;
  let errors: ErrorHookEvent[];
  let lic: Awaited<ReturnType<typeof issueLicense>>;

  before(async () => {
    h = await startHarness("sqlite");
    base = await listen(h);
    proxy = await startFaultProxy(base);
    lic = await issueLicense(h, { max_activations: 3 }, { expires_at: "2026-06-01T00:00:00.000Z" });
  });
  after(async () => {
    await proxy?.close();
    await h?.close();
  });
  beforeEach(() => {
    proxy.reset();
    errors = [];
    mgmt = new ManagementClient({ baseUrl: proxy.url, token: ADMIN_TOKEN, retry: FAST, onError: (e) => errors.push(e) });
  });

  const productPath = () => `/api/v1/products/${lic.productId}`;
  const seen = (path: string) => proxy.requests.filter((r) => r.url.split("?")[0] === path);

  it("retries a GET after 503", async () => {
    proxy.script({ status: 503 });
    const res = await mgmt.getProduct({ path: { id: lic.productId } });
    assert.equal(res.data.id, lic.productId);
    assert.deepEqual(
      seen(productPath()).map((r) => r.action),
      [{ status: 503 }, "pass"],
    );
    assert.equal(errors.length, 1);
    const [e] = errors;
    assert.equal(e?.status, 503);
    assert.equal(e?.code, "SERVICE_UNAVAILABLE");
    assert.equal(e?.willRetry, true);
    assert.equal(e?.attempt, 1);
    assert.equal(e?.operation, "getProduct");
    assert.deepEqual(e?.resourceIds, { product_id: lic.productId });
  });

  it("retries a GET after 429, waiting Retry-After", async () => {
    proxy.script({ status: 429, retryAfter: "1" });
    const t0 = Date.now();
    const res = await mgmt.getProduct({ path: { id: lic.productId } });
    const elapsed = Date.now() - t0;
    assert.equal(res.data.id, lic.productId);
    assert.ok(elapsed >= 1000, `waited ${elapsed} ms`);
    assert.equal(seen(productPath()).length, 2);
    assert.equal(errors[0]?.code, "RATE_LIMITED");
    assert.equal(errors[0]?.delayMs, 1000);
  });

  it("retries a GET after 429 with an HTTP-date Retry-After", async () => {
    proxy.script({ status: 429, retryAfter: new Date(Date.now() + 1500).toUTCString() });
    const res = await mgmt.listProducts();
    assert.ok(Array.isArray(res.data));
    assert.equal(seen("/api/v1/products").length, 2);
    assert.ok((errors[0]?.delayMs ?? -1) >= 0 && (errors[0]?.delayMs ?? 99_999) <= 1500);
  });

  it("retries a GET after a dropped connection", async () => {
    proxy.script("drop");
    const res = await mgmt.getProduct({ path: { id: lic.productId } });
    assert.equal(res.data.id, lic.productId);
    assert.deepEqual(
      seen(productPath()).map((r) => r.action),
      ["drop", "pass"],
    );
    assert.equal(errors[0]?.status, undefined);
    assert.equal(errors[0]?.code, "TRANSPORT_ERROR");
    assert.equal(errors[0]?.willRetry, true);
    assert.ok(errors[0]?.error instanceof TransportError);
  });

  it("gives up after the maximum number of attempts with the last error", async () => {
    proxy.script({ status: 503 }, { status: 502 }, { status: 500 }, { status: 504 }, { status: 503 });
    const err = await rejectsWith(mgmt.getProduct({ path: { id: lic.productId } }), ApiError);
    assert.equal(err.status, 504);
    assert.equal(seen(productPath()).length, 4); // retries: 3
    assert.deepEqual(
      errors.map((e) => e.willRetry),
      [true, true, true, false],
    );
    proxy.reset();
  });

  it("retries a POST with an Idempotency-Key after the server applied it and the client saw 503: applied once", async () => {
    const before = await h.request({ url: `/api/v1/licenses/${lic.licenseId}` });
    assert.equal(before.json.data.expires_at, "2026-06-01T00:00:00.000Z");
    proxy.script("forward-then-503");
    const renewed = await mgmt.renewLicense({ path: { id: lic.licenseId }, body: { extend_by_days: 30 }, idempotencyKey: "renew-once-1" });
    assert.equal(renewed.data.expires_at, "2026-07-01T00:00:00.000Z");
    const reqs = seen(`/api/v1/licenses/${lic.licenseId}/renew`);
    assert.equal(reqs.length, 2);
    assert.deepEqual(
      reqs.map((r) => [r.action, r.upstreamStatus, r.idempotencyKey]),
      [
        ["forward-then-503", 200, "renew-once-1"],
        ["pass", 200, "renew-once-1"],
      ],
    );
    // The server applied it once: the expiry moved by 30 days, not 60, and one renewal was audited.
    const after = await h.request({ url: `/api/v1/licenses/${lic.licenseId}` });
    assert.equal(after.json.data.expires_at, "2026-07-01T00:00:00.000Z");
    const events = await h.request({ url: `/api/v1/events?resource_id=${lic.licenseId}&event_type=license.renewed` });
    assert.equal(events.json.data.length, 1);
  });

  it("generates a UUID v4 Idempotency-Key where one is required and reuses it on every retry", async () => {
    proxy.script("forward-then-503", "drop");
    const renewed = await mgmt.renewLicense({ path: { id: lic.licenseId }, body: { extend_by_days: 1 } });
    assert.equal(renewed.data.expires_at, "2026-07-02T00:00:00.000Z");
    const reqs = seen(`/api/v1/licenses/${lic.licenseId}/renew`);
    assert.equal(reqs.length, 3);
    const key = reqs[0]?.idempotencyKey;
    assert.match(key ?? "", UUID_V4);
    assert.ok(reqs.every((r) => r.idempotencyKey === key));
    const after = await h.request({ url: `/api/v1/licenses/${lic.licenseId}` });
    assert.equal(after.json.data.expires_at, "2026-07-02T00:00:00.000Z");
    // A new call gets a new key.
    await mgmt.renewLicense({ path: { id: lic.licenseId }, body: { extend_by_days: 1 } });
    const next = seen(`/api/v1/licenses/${lic.licenseId}/renew`)[3];
    assert.match(next?.idempotencyKey ?? "", UUID_V4);
    assert.notEqual(next?.idempotencyKey, key);
  });

  it("retries a runtime activation (auto key) after 503: one device bound, the replay returned", async () => {
    const runtimeOpts: RuntimeClientOptions = { baseUrl: proxy.url, licenseKey: lic.key, retry: FAST };
    const runtime = new RuntimeClient(runtimeOpts);
    proxy.script("forward-then-503");
    const res = await runtime.activateLicense({ body: { fingerprint: "retry-machine" } });
    assert.equal(res.data.license_id, lic.licenseId);
    assert.equal(res.signature.alg, "Ed25519");
    const reqs = seen("/api/v1/license/activate");
    assert.equal(reqs.length, 2);
    assert.equal(reqs[0]?.idempotencyKey, reqs[1]?.idempotencyKey);
    assert.match(reqs[0]?.idempotencyKey ?? "", UUID_V4);
    const devices = await h.request({ url: `/api/v1/licenses/${lic.licenseId}/devices` });
    assert.equal(devices.json.data.filter((d: { fingerprint?: string }) => d.fingerprint === "retry-machine").length, 1);
  });

  it("never retries a POST without an Idempotency-Key (503 before or after the server applied it)", async () => {
    proxy.script({ status: 503 });
    const e1 = await rejectsWith(mgmt.createProduct({ body: { name: "No retry", code: "no-retry-1" } }), ApiError);
    assert.equal(e1.status, 503);
    assert.equal(seen("/api/v1/products").length, 1);
    assert.equal(errors[0]?.willRetry, false);

    proxy.reset();
    proxy.script("forward-then-503");
    const e2 = await rejectsWith(mgmt.createProduct({ body: { name: "No retry", code: "no-retry-2" } }), ApiError);
    assert.equal(e2.status, 503);
    assert.equal(seen("/api/v1/products").length, 1);
    const list = await h.request({ url: "/api/v1/products?limit=200" });
    assert.equal(list.json.data.filter((p: { code: string }) => p.code === "no-retry-2").length, 1);

    proxy.reset();
    proxy.script("drop");
    const runtime = new RuntimeClient({ baseUrl: proxy.url, licenseKey: lic.key, retry: FAST });
    const e3 = await rejectsWith(runtime.validateLicense({ body: { fingerprint: "retry-machine" } }), TransportError);
    assert.equal(e3.operation, "validateLicense");
    assert.equal(seen("/api/v1/license/validate").length, 1);
  });

  it("never retries 400, 403, 404, 409 or 422 from the server, even on GETs and keyed POSTs", async () => {
    const scoped = await h.request({ url: "/api/v1/api-keys", body: { name: "reader", scopes: ["product:read"] } });
    const reader = new ManagementClient({ baseUrl: proxy.url, token: scoped.json.data.token, retry: FAST });
    const cases: [number, string, () => Promise<unknown>][] = [
      [400, "INVALID_QUERY", () => mgmt.listProducts({ query: { limit: 0 } })],
      [403, "TOKEN_SCOPE_DENIED", () => reader.listCustomers()],
      [404, "NOT_FOUND", () => mgmt.getProduct({ path: { id: "prod_does_not_exist" } })],
      [404, "NOT_FOUND", () => mgmt.renewLicense({ path: { id: "lic_does_not_exist" }, body: { extend_by_days: 1 }, idempotencyKey: "nf-1" })],
      [409, "IDEMPOTENCY_CONFLICT", () => mgmt.renewLicense({ path: { id: lic.licenseId }, body: { extend_by_days: 2 }, idempotencyKey: "renew-once-1" })],
      [409, "CONFLICT", () => mgmt.createProduct({ body: { name: "dup", code: "no-retry-2" }, idempotencyKey: "dup-1" })],
      [422, "VALIDATION_ERROR", () => mgmt.renewLicense({ path: { id: lic.licenseId }, body: { extend_by_days: 1, expires_at: "2030-01-01T00:00:00Z" }, idempotencyKey: "bad-1" })],
    ];
    for (const [status, code, call] of cases) {
      proxy.reset();
      const err = await rejectsWith(call(), ApiError);
      assert.equal(err.status, status, `${code}: ${err.message} ${err.detail}`);
      assert.equal(err.code, code);
      assert.equal(proxy.requests.length, 1, `${code} was sent ${proxy.requests.length} times`);
      assert.equal(proxy.requests[0]?.upstreamStatus, status);
    }
  });

  it("never retries injected 4xx answers either (GET and keyed POST)", async () => {
    for (const status of [400, 401, 403, 404, 405, 409, 413, 415, 422]) {
      for (const call of [
        () => mgmt.getProduct({ path: { id: lic.productId } }),
        () => mgmt.renewLicense({ path: { id: lic.licenseId }, body: { extend_by_days: 1 }, idempotencyKey: `inj-${status}` }),
      ]) {
        proxy.reset();
        proxy.script({ status, code: status === 409 ? "IDEMPOTENCY_CONFLICT" : `E${status}` });
        const err = await rejectsWith(call(), ApiError);
        assert.equal(err.status, status);
        assert.equal(proxy.requests.length, 1, `${status} was retried`);
      }
    }
  });

  it("stops at the overall deadline", async () => {
    proxy.script(...Array.from({ length: 40 }, () => ({ status: 503 })));
    const c = new ManagementClient({ baseUrl: proxy.url, token: ADMIN_TOKEN, retry: { retries: 50, baseDelayMs: 100, maxDelayMs: 100, deadlineMs: 600 } });
    const t0 = Date.now();
    const err = await rejectsWith(c.getProduct({ path: { id: lic.productId } }), ApiError);
    const elapsed = Date.now() - t0;
    assert.equal(err.status, 503);
    assert.ok(elapsed < 1500, `took ${elapsed} ms`);
    assert.ok(proxy.requests.length >= 2 && proxy.requests.length < 40, `${proxy.requests.length} attempts`);
  });

  it("does not start a Retry-After wait that would pass the deadline", async () => {
    proxy.script({ status: 429, retryAfter: "30" });
    const c = new ManagementClient({ baseUrl: proxy.url, token: ADMIN_TOKEN, retry: { retries: 3, deadlineMs: 2000 } });
    const t0 = Date.now();
    const err = await rejectsWith(c.getProduct({ path: { id: lic.productId } }), ApiError);
    assert.equal(err.status, 429);
    assert.equal(err.code, "RATE_LIMITED");
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(proxy.requests.length, 1);
  });

  it("times out a hung attempt (TransportError, timedOut) and retries a GET after it", async () => {
    proxy.script("hang");
    const c = new ManagementClient({ baseUrl: proxy.url, token: ADMIN_TOKEN, timeoutMs: 200, retry: { retries: 0 } });
    const t0 = Date.now();
    const err = await rejectsWith(c.getProduct({ path: { id: lic.productId } }), TransportError);
    assert.equal(err.timedOut, true);
    assert.equal(err.code, "TIMEOUT");
    assert.equal(err.operation, "getProduct");
    assert.ok(Date.now() - t0 < 2000);

    proxy.reset();
    proxy.script("hang");
    const c2 = new ManagementClient({ baseUrl: proxy.url, token: ADMIN_TOKEN, timeoutMs: 200, retry: { ...FAST, retries: 1 } });
    const res = await c2.getProduct({ path: { id: lic.productId } });
    assert.equal(res.data.id, lic.productId);
    assert.equal(proxy.requests.length, 2);
  });

  it("the deadline also bounds a single attempt", async () => {
    proxy.script("hang");
    const c = new ManagementClient({ baseUrl: proxy.url, token: ADMIN_TOKEN, timeoutMs: 30_000, retry: { retries: 2, deadlineMs: 300 } });
    const t0 = Date.now();
    const err = await rejectsWith(c.getProduct({ path: { id: lic.productId } }), TransportError);
    assert.equal(err.timedOut, true);
    assert.ok(Date.now() - t0 < 1500);
  });

  it("an AbortSignal stops a Retry-After wait at once", async () => {
    proxy.script({ status: 429, retryAfter: "10" });
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 100);
    const err = await rejectsWith(mgmt.getProduct({ path: { id: lic.productId }, signal: ac.signal }), TransportError);
    assert.equal(err.aborted, true);
    assert.equal(err.code, "ABORTED");
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
    assert.equal(proxy.requests.length, 1);
  });

  it("an AbortSignal stops an attempt in flight, and an aborted signal sends nothing", async () => {
    proxy.script("hang");
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 100);
    const err = await rejectsWith(mgmt.getProduct({ path: { id: lic.productId }, signal: ac.signal }), TransportError);
    assert.equal(err.aborted, true);
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(proxy.requests.length, 1); // aborts are never retried

    proxy.reset();
    const err2 = await rejectsWith(mgmt.getProduct({ path: { id: lic.productId }, signal: AbortSignal.abort() }), TransportError);
    assert.equal(err2.aborted, true);
    assert.equal(proxy.requests.length, 0);
  });

  it("the client-wide signal aborts calls too", async () => {
    proxy.script({ status: 503, retryAfter: "10" });
    const ac = new AbortController();
    const c = new ManagementClient({ baseUrl: proxy.url, token: ADMIN_TOKEN, signal: ac.signal, retry: FAST });
    setTimeout(() => ac.abort(), 100);
    const t0 = Date.now();
    const err = await rejectsWith(c.getProduct({ path: { id: lic.productId } }), TransportError);
    assert.equal(err.aborted, true);
    assert.ok(Date.now() - t0 < 1000);
  });

  it("retries are off with retries: 0", async () => {
    proxy.script({ status: 503 });
    const c = new ManagementClient({ baseUrl: proxy.url, token: ADMIN_TOKEN, retry: { retries: 0 } });
    await rejectsWith(c.getProduct({ path: { id: lic.productId } }), ApiError);
    assert.equal(proxy.requests.length, 1);
  });
});

describe("idempotency keys", () => {
  it("are UUID v4 from WebCrypto, and still UUID v4 without it", () => {
    const keys = new Set(Array.from({ length: 200 }, () => newIdempotencyKey()));
    assert.equal(keys.size, 200);
    for (const k of keys) assert.match(k, UUID_V4);
    const desc = Object.getOwnPropertyDescriptor(globalThis, "crypto");
    Object.defineProperty(globalThis, "crypto", { value: undefined, configurable: true, writable: true });
    try {
      assert.match(newIdempotencyKey(), UUID_V4);
    } finally {
      if (desc) Object.defineProperty(globalThis, "crypto", desc);
    }
  });
});
