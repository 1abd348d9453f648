// Graceful shutdown of a real `licensekit serve` process (issue 9 item 3), both engines. While a
// webhook attempt is in flight (the receiver on 127.0.0.1 takes 1 s to answer), an HTTP request is
// half sent and a burst of validates has left its counters in memory (the flush interval is 10 min),
// the process gets SIGTERM. New connections are refused right after the signal, the half-sent request
// still gets its answer, the webhook attempt completes and is recorded as delivered, the batched
// last_validated_at stamp, runtime call counts and ops request statistics are in the database after
// the exit, and the exit code is 0, within LICENSEKIT_SHUTDOWN_TIMEOUT_MS.
// A request that never completes loses its connection at the end of the grace, and the process still
// flushes and exits 0 before the deadline.
// (test/serve-process.test.ts covers the plain SIGTERM exit; test/workers.test.ts the cluster's.)
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, describe, it } from "node:test";
import Sqlite from "better-sqlite3";
import pg from "pg";
import { shutdownGraceMs } from "../../src/main.js";
import { createTestDatabase, ENGINES, type TestDatabase } from "../helpers/engines.js";
import { call, type ServeProcess, serveEnv, setupLoadLicense, sleep, startServe, stopServe, TOKEN } from "./process.js";

const DEADLINE_MS = 8000;
const RECEIVER_DELAY_MS = 1000;
const BURST = 20;

/** Resolves with the connection error code, or "connected". */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve("connected");
    });
    s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** A POST whose headers and first half of the body are sent now, the rest when `finish()` is called. */
function halfSentPost(port: number, path: string, headers: Record<string, string>, body: string) {
  const bytes = Buffer.from(body, "utf8");
  const half = Math.floor(bytes.length / 2);
  const req = http.request({ host: "127.0.0.1", port, path, method: "POST", agent: false, headers: { ...headers, "content-length": String(bytes.length) } });
  const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        text += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
  });
  req.flushHeaders();
  req.write(bytes.subarray(0, half));
  return {
    answer,
    finish: () => {
      req.end(bytes.subarray(half));
      return answer;
    },
  };
}

/** Rows the shutdown must have flushed, read after the process exited. */
async function storedAfterExit(db: TestDatabase, licenseId: string, fingerprint: string, webhookId: string) {
  const queries = {
    device: ["select last_validated_at as v from devices where license_id = $1 and fingerprint = $2", [licenseId, fingerprint]],
    calls: ["select coalesce(sum(calls), 0) as v from runtime_call_counts where license_id = $1 and operation = 'validate'", [licenseId]],
    stats: ["select coalesce(sum(count), 0) as v from ops_request_minutes where operation = 'validateLicense' and status = 200", []],
    delivery: ["select status || ':' || attempts || ':' || coalesce(last_status_code, 0) as v from webhook_deliveries where endpoint_id = $1", [webhookId]],
  } as const;
  const out: Record<keyof typeof queries, unknown> = { device: null, calls: null, stats: null, delivery: null };
  if (db.engine === "sqlite") {
    const file = db.url.slice("sqlite:".length);
    const s = new Sqlite(file, { readonly: true, fileMustExist: true });
    try {
      for (const [k, [sql, params]] of Object.entries(queries)) {
        out[k as keyof typeof queries] = (s.prepare(sql.replace(/\$\d/g, "?")).get(...params) as { v: unknown } | undefined)?.v ?? null;
      }
    } finally {
      s.close();
    }
  } else {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      for (const [k, [sql, params]] of Object.entries(queries)) out[k as keyof typeof queries] = (await c.query(sql, [...params])).rows[0]?.v ?? null;
    } finally {
      await c.end();
    }
  }
  return out;
}

for (const engine of ENGINES) {
  describe(`graceful shutdown on SIGTERM [${engine}]`, () => {
    const arrivals: { at: number; answeredAt?: number }[] = [];
    const receiver = http.createServer((req, res) => {
      const arrival: { at: number; answeredAt?: number } = { at: Date.now() };
      arrivals.push(arrival);
      req.resume();
      req.on("end", () =>
        setTimeout(() => {
          arrival.answeredAt = Date.now();
          res.writeHead(204).end();
        }, RECEIVER_DELAY_MS),
      );
    });
    let db: TestDatabase | undefined;
    let server: ServeProcess | undefined;
    after(async () => {
      await stopServe(server, "SIGKILL");
      receiver.close();
      await db?.drop();
    });

    it("refuses new connections, finishes the in-flight request and webhook attempt, flushes the counters and exits 0 in time", async () => {
      await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
      const receiverPort = (receiver.address() as net.AddressInfo).port;
      db = await createTestDatabase(engine);
      server = await startServe(
        serveEnv(db.url, db.dir, {
          LICENSEKIT_WEBHOOK_ALLOW_PRIVATE: "true",
          LICENSEKIT_WEBHOOK_POLL_MS: "50",
          LICENSEKIT_SIDE_EFFECT_FLUSH_MS: "600000",
          LICENSEKIT_SHUTDOWN_TIMEOUT_MS: String(DEADLINE_MS),
        }),
      );
      const { base, port } = server;
      const lic = await setupLoadLicense(base);
      const admin = `Bearer ${TOKEN}`;
      const hook = await call(base, "POST", "/api/v1/webhooks", {
        auth: admin,
        body: { name: "slow", url: `http://127.0.0.1:${receiverPort}/hook`, event_types: ["product.created"] },
      });
      assert.equal(hook.status, 201, hook.text);

      // counters that only the shutdown flush will write
      const burst = await Promise.all(
        Array.from({ length: BURST }, () => call(base, "POST", "/api/v1/license/validate", { auth: `License ${lic.key}`, body: { fingerprint: lic.consumeFingerprint } })),
      );
      for (const r of burst) assert.equal(r.status, 200, r.text);
      const early = await storedAfterExit(db, lic.licenseId, lic.consumeFingerprint, hook.json.data.webhook.id);
      assert.equal(Number(early.calls), 0, "the validate counts are still batched in memory");

      // a webhook attempt in flight: the receiver holds it for 1 s
      const product = await call(base, "POST", "/api/v1/products", { auth: admin, body: { name: "Shutdown", code: `shutdown-${engine}` } });
      assert.equal(product.status, 201, product.text);
      const until = Date.now() + 5000;
      while (arrivals.length === 0 && Date.now() < until) await sleep(20);
      assert.equal(arrivals.length, 1, "the delivery attempt reached the receiver");

      // an HTTP request in flight: headers and half of the body sent
      const inflight = halfSentPost(
        port,
        "/api/v1/license/validate",
        { authorization: `License ${lic.key}`, "content-type": "application/json" },
        JSON.stringify({ fingerprint: lic.consumeFingerprint }),
      );
      await sleep(100);

      const signalledAt = Date.now();
      server.child.kill("SIGTERM");
      await sleep(300);
      assert.equal(await tryConnect(port), "ECONNREFUSED", "new connections are refused after the signal");
      assert.equal(server.child.exitCode, null, "still draining");
      const answer = await inflight.finish();
      assert.equal(answer.status, 200, `the in-flight request is answered: ${answer.text}`);

      const exit = await server.exited;
      const tookMs = exit.at - signalledAt;
      assert.equal(exit.code, 0, server.stderr().slice(-2000));
      assert.ok(tookMs < DEADLINE_MS, `exited ${tookMs} ms after SIGTERM (deadline ${DEADLINE_MS} ms)`);
      assert.ok(arrivals[0]!.answeredAt !== undefined && arrivals[0]!.answeredAt <= exit.at, "the webhook attempt finished before the exit");
      assert.ok(server.lines().some((l) => l.msg === "licensekit stopped"));

      const stored = await storedAfterExit(db, lic.licenseId, lic.consumeFingerprint, hook.json.data.webhook.id);
      assert.equal(stored.delivery, "delivered:1:204", "the in-flight attempt was recorded, not aborted");
      assert.ok(Number(stored.device) >= signalledAt - 10_000, `last_validated_at flushed (${stored.device})`);
      assert.equal(Number(stored.calls), BURST + 1, "every validate counted, the in-flight one included");
      assert.equal(Number(stored.stats), BURST + 1, "request statistics flushed");
      process.stdout.write(`# shutdown figures [${engine}]: ${JSON.stringify({ exit_ms_after_sigterm: tookMs, deadline_ms: DEADLINE_MS, receiver_delay_ms: RECEIVER_DELAY_MS })}\n`);
    });
  });
}

describe("graceful shutdown: a request that never completes [sqlite]", () => {
  let db: TestDatabase | undefined;
  let server: ServeProcess | undefined;
  after(async () => {
    await stopServe(server, "SIGKILL");
    await db?.drop();
  });

  it("loses its connection at the end of the grace; the process still flushes and exits 0 before the deadline", async () => {
    const deadlineMs = 3000;
    const graceMs = shutdownGraceMs(deadlineMs);
    db = await createTestDatabase("sqlite");
    server = await startServe(serveEnv(db.url, db.dir, { LICENSEKIT_SIDE_EFFECT_FLUSH_MS: "600000", LICENSEKIT_SHUTDOWN_TIMEOUT_MS: String(deadlineMs) }));
    const lic = await setupLoadLicense(server.base);
    const ok = await call(server.base, "POST", "/api/v1/license/validate", { auth: `License ${lic.key}`, body: { fingerprint: lic.consumeFingerprint } });
    assert.equal(ok.status, 200, ok.text);
    // headers and half a body, and the rest never comes
    const stuck = halfSentPost(
      server.port,
      "/api/v1/license/validate",
      { authorization: `License ${lic.key}`, "content-type": "application/json" },
      JSON.stringify({ fingerprint: lic.consumeFingerprint }),
    );
    const outcome = stuck.answer.then(
      (a) => `answered ${a.status}`,
      (err: NodeJS.ErrnoException) => `failed ${err.code ?? err.message}`,
    );
    await sleep(100);
    const signalledAt = Date.now();
    server.child.kill("SIGTERM");
    const exit = await server.exited;
    const tookMs = exit.at - signalledAt;
    assert.equal(exit.code, 0, server.stderr().slice(-2000));
    assert.ok(tookMs >= graceMs - 100 && tookMs < deadlineMs, `exited ${tookMs} ms after SIGTERM (grace ${graceMs}, deadline ${deadlineMs})`);
    assert.match(await outcome, /^failed /, "the stuck request's connection was closed");
    assert.ok(server.lines().some((l) => l.msg === "requests still running at the end of the shutdown grace; closing their connections"));
    const stored = await storedAfterExit(db, lic.licenseId, lic.consumeFingerprint, "none");
    assert.equal(Number(stored.calls), 1, "the completed validate's count was still flushed");
  });
});
