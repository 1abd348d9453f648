// A real server for tests: a fresh database (SQLite file or PostgreSQL database), a manual clock,
// real crypto, the real Fastify app. Requests go through app.inject or a real port.
import fs from "node:fs";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { buildApp } from "../../src/app.js";
import { ManualClock } from "../../src/clock.js";
import { type Config, loadConfig } from "../../src/config.js";
import { createServices, type Services } from "../../src/services.js";
import { createTestDatabase, type TestDatabase, type TestEngine } from "./engines.js";

export const ADMIN_TOKEN = "lkm_TestAdminToken0000000000000000000000000";
export const START = "2026-03-01T12:00:00.000Z";
const STATUS_LOG = process.env.LICENSEKIT_TEST_STATUS_LOG;

export interface Harness {
  engine: TestEngine;
  app: FastifyInstance;
  lk: Services;
  clock: ManualClock;
  config: Config;
  db: TestDatabase;
  /** Env that points a child process (CLI) at the same database and key. */
  env: Record<string, string>;
  request(opts: RequestOptions): Promise<Reply>;
  /** Closes the app and starts a new one on the same database and data dir. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface RequestOptions {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS";
  url: string;
  token?: string | null;
  licenseKey?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  idempotencyKey?: string;
}

export interface Reply {
  status: number;
  headers: LightMyRequestResponse["headers"];
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test bodies are inspected field by field
  json: any;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  clock?: ManualClock;
}

export async function startHarness(engine: TestEngine, opts: HarnessOptions = {}): Promise<Harness> {
  const db = await createTestDatabase(engine);
  const env: Record<string, string> = {
    LICENSEKIT_DATABASE_URL: db.url,
    LICENSEKIT_DATA_DIR: db.dir,
    LICENSEKIT_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
    LICENSEKIT_LOG_LEVEL: "silent",
    LICENSEKIT_DB_POOL_SIZE: "8",
    // The clock stands still in tests, so buckets never refill: limits high enough for any test's
    // bursts, yet on (every answer still passes the limiter). test/rate-limit.test.ts sets small ones.
    LICENSEKIT_RATE_LIMIT_RUNTIME_PER_SECOND: "1000000",
    LICENSEKIT_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "1000000",
    LICENSEKIT_RATE_LIMIT_MANAGEMENT_PER_SECOND: "1000000",
    ...opts.env,
  };
  const config = loadConfig(env);
  const clock = opts.clock ?? new ManualClock(Date.parse(START));
  let { services } = await createServices(config, { clock });
  let app = await buildApp(services, { logger: false });
  await app.ready();

  const h: Harness = {
    engine,
    app,
    lk: services,
    clock,
    config,
    db,
    env,
    async request(o) {
      const headers: Record<string, string> = { ...o.headers };
      if (o.token !== null) {
        if (o.licenseKey) headers.authorization = `License ${o.licenseKey}`;
        else if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
        else if (!("authorization" in headers) && !o.url.startsWith("/api/v1/license/")) headers.authorization = `Bearer ${ADMIN_TOKEN}`;
      }
      if (o.idempotencyKey) headers["idempotency-key"] = o.idempotencyKey;
      let payload: string | undefined;
      if (o.rawBody !== undefined) payload = o.rawBody;
      else if (o.body !== undefined) {
        payload = JSON.stringify(o.body);
        headers["content-type"] ??= "application/json";
      }
      const method = o.method ?? (payload !== undefined ? "POST" : "GET");
      const res = await h.app.inject({ method, url: o.url, headers, payload });
      // The full run records every answer so status-coverage.ts can check each documented status was seen.
      if (STATUS_LOG) fs.appendFileSync(STATUS_LOG, `${method} ${o.url.split("?")[0]} ${res.statusCode}\n`);
      let json: unknown = null;
      try {
        json = JSON.parse(res.body);
      } catch {
        json = null;
      }
      return { status: res.statusCode, headers: res.headers, text: res.body, json };
    },
    async restart() {
      await h.app.close();
      ({ services } = await createServices(config, { clock }));
      app = await buildApp(services, { logger: false });
      await app.ready();
      h.app = app;
      h.lk = services;
    },
    async close() {
      await h.app.close();
      await db.drop();
    },
  };
  return h;
}

/** Creates a product, a policy (with the given fields) and a license; returns ids and the key. */
export async function issueLicense(
  h: Harness,
  policy: Record<string, unknown> = {},
  license: Record<string, unknown> = {},
): Promise<{ productId: string; policyId: string; licenseId: string; key: string }> {
  const n = Math.random().toString(36).slice(2, 10);
  const product = await h.request({ url: "/api/v1/products", body: { name: `Product ${n}`, code: `prod-${n}` } });
  if (product.status !== 201) throw new Error(`product: ${product.text}`);
  const pol = await h.request({
    url: `/api/v1/products/${product.json.data.id}/policies`,
    body: { name: "Policy", code: `pol-${n}`, license_type: "subscription", ...policy },
  });
  if (pol.status !== 201) throw new Error(`policy: ${pol.text}`);
  const lic = await h.request({
    url: "/api/v1/licenses",
    body: { product_id: product.json.data.id, policy_id: pol.json.data.id, ...license },
  });
  if (lic.status !== 201) throw new Error(`license: ${lic.text}`);
  return { productId: product.json.data.id, policyId: pol.json.data.id, licenseId: lic.json.data.license.id, key: lic.json.data.license_key };
}

/** Listens on a free loopback port; returns the base URL. */
export async function listen(h: Harness): Promise<string> {
  await h.app.listen({ host: "127.0.0.1", port: 0 });
  const addr = h.app.server.address();
  if (!addr || typeof addr === "string") throw new Error("no address");
  return `http://127.0.0.1:${addr.port}`;
}

/** An answer read over real HTTP. */
export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test bodies are inspected field by field
  json: any;
}

/** A runtime call over real HTTP (`Authorization: License <key>`), for races and fault tests. */
export async function postRuntime(base: string, path: string, licenseKey: string, body: unknown, idempotencyKey?: string): Promise<HttpAnswer> {
  const res = await fetch(base + path, {
    method: "POST",
    headers: { authorization: `License ${licenseKey}`, "content-type": "application/json", ...(idempotencyKey ? { "idempotency-key": idempotencyKey } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, text, json };
}
