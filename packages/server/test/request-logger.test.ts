// Each request's logger is made only when the request writes a line (observability/request-logger.ts):
// below the configured level nothing is made, and what is written carries the request's bindings,
// exactly as pino's own child logger writes it. Through the app: the request line holds the answer's
// request id, and a correlation id from X-Request-Id is bound too.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import Fastify from "fastify";
import { buildApp } from "../src/app.js";
import { DeferredChildLogger } from "../src/observability/request-logger.js";
import { createServices, type Services } from "../src/services.js";
import { createTestDatabase } from "./helpers/engines.js";
import { ADMIN_TOKEN } from "./helpers/harness.js";
import { loadConfig } from "../src/config.js";

type Line = Record<string, unknown>;

function lineSink(): { stream: Writable; lines: Line[] } {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { stream, lines };
}

/** A pino logger (Fastify's) at `level`, and how many children were made of it. */
function parentLogger(level: string) {
  const sink = lineSink();
  const log = Fastify({ logger: { level, stream: sink.stream } }).log;
  const made = { n: 0 };
  // pino's children inherit from their parent, so a child's own child() comes here too, with itself as `this`
  const child = log.child;
  log.child = function (this: typeof log, b, o) {
    made.n += 1;
    return child.call(this, b, o);
  };
  return { log, made, lines: sink.lines };
}

const withoutTime = (l: Line) => {
  const { time: _t, ...rest } = l;
  return rest;
};

describe("a request's deferred logger", () => {
  it("below the level nothing is written and no child is made", () => {
    const p = parentLogger("warn");
    const d = new DeferredChildLogger(p.log, { request_id: "req_a" }, {});
    d.info({ x: 1 }, "not written");
    d.debug("nor this");
    d.trace("nor this");
    assert.equal(p.made.n, 0);
    assert.deepEqual(p.lines, []);
    assert.equal(d.level, "warn");
  });

  it("a line at an enabled level is what pino's own child writes, bindings included; the child is made once", () => {
    const p = parentLogger("warn");
    const d = new DeferredChildLogger(p.log, { request_id: "req_b" }, {});
    d.warn({ code: "X" }, "first");
    d.error(new Error("boom"), "second");
    assert.equal(p.made.n, 1);
    const own = p.log.child({ request_id: "req_b" });
    own.warn({ code: "X" }, "first");
    assert.equal(p.lines.length, 3);
    assert.deepEqual(withoutTime(p.lines[0]!), withoutTime(p.lines[2]!));
    assert.equal(p.lines[0]!.request_id, "req_b");
    assert.equal(p.lines[1]!.request_id, "req_b");
    assert.equal((p.lines[1]!.err as { message: string }).message, "boom");
  });

  it("a child of it holds both bindings; raising its level makes it write", () => {
    const p = parentLogger("warn");
    const d = new DeferredChildLogger(p.log, { request_id: "req_c" }, {});
    d.child({ correlation_id: "corr-1" }).warn("from the child");
    assert.deepEqual([p.lines[0]!.request_id, p.lines[0]!.correlation_id], ["req_c", "corr-1"]);
    const e = new DeferredChildLogger(p.log, { request_id: "req_d" }, {});
    e.level = "debug";
    e.debug("now written");
    assert.equal(e.level, "debug");
    assert.equal(p.lines.at(-1)!.request_id, "req_d");
    assert.equal(p.lines.at(-1)!.msg, "now written");
  });
});

describe("request logs through the app", () => {
  let services: Services;
  let app: Awaited<ReturnType<typeof buildApp>>;
  const sink = lineSink();
  before(async () => {
    const db = await createTestDatabase("sqlite");
    const config = loadConfig({ LICENSEKIT_DATABASE_URL: db.url, LICENSEKIT_DATA_DIR: db.dir, LICENSEKIT_BOOTSTRAP_TOKEN: ADMIN_TOKEN, LICENSEKIT_LOG_LEVEL: "info" });
    services = (await createServices(config)).services;
    app = await buildApp(services, { logger: { level: "info", stream: sink.stream } });
    await app.ready();
  });
  after(async () => app?.close());

  it("the request line carries the answer's request id, and a client's correlation id", async () => {
    const plain = await app.inject({ method: "GET", url: "/api/v1/products", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const correlated = await app.inject({ method: "GET", url: "/api/v1/products", headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "x-request-id": "trace-42" } });
    assert.equal(plain.statusCode, 200);
    const line = (id: unknown) => sink.lines.find((l) => l.msg === "request" && l.request_id === id);
    assert.ok(line(plain.headers["x-request-id"]), JSON.stringify(sink.lines));
    assert.equal(line(correlated.headers["x-request-id"])?.correlation_id, "trace-42");
  });
});
