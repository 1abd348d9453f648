// The outbox survives a hard kill: a real `licensekit serve` process writes an event whose delivery is
// due, is killed with SIGKILL before its worker polls again, and a new process on the same database
// delivers it, signed, to a real receiver on 127.0.0.1. Both engines.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import http, { type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { createTestDatabase, ENGINES, type TestDatabase } from "./helpers/engines.js";
import { call, type ServeProcess, serveEnv, startServe, stopServe, TOKEN } from "./reliability/process.js";

/** A management POST with the test token. */
const post = (base: string, url: string, body: unknown) => call(base, "POST", url, { auth: `Bearer ${TOKEN}`, body });

/** A real `licensekit serve` on `db` that may send to loopback receivers, polling its outbox every `pollMs`. */
const serve = (db: TestDatabase, pollMs: number) =>
  startServe(serveEnv(db.url, db.dir, { LICENSEKIT_WEBHOOK_ALLOW_PRIVATE: "true", LICENSEKIT_WEBHOOK_POLL_MS: String(pollMs) }));

for (const engine of ENGINES) {
  describe(`webhook outbox across SIGKILL [${engine}]`, () => {
    const received: { headers: IncomingHttpHeaders; raw: Buffer }[] = [];
    const receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ headers: req.headers, raw: Buffer.concat(chunks) });
        res.writeHead(204).end();
      });
    });
    let db: TestDatabase | undefined;
    const running: ServeProcess[] = [];
    after(async () => {
      for (const r of running) await stopServe(r, "SIGKILL");
      receiver.close();
      await db?.drop();
    });

    it("an event committed just before SIGKILL is delivered by the next process", async () => {
      await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
      const port = (receiver.address() as AddressInfo).port;
      db = await createTestDatabase(engine);

      // First process: its worker polls once at start, then not for 10 minutes.
      const first = await serve(db, 600_000);
      running.push(first);
      const hook = await post(first.base, "/api/v1/webhooks", { name: "kill", url: `http://127.0.0.1:${port}/hook`, event_types: ["product.created"] });
      assert.equal(hook.status, 201);
      const secret = hook.json.data.secret as string;
      const product = await post(first.base, "/api/v1/products", { name: "Killed", code: "killed" });
      assert.equal(product.status, 201);
      await stopServe(first, "SIGKILL");
      assert.equal(received.length, 0, "nothing was delivered before the kill");

      // Second process on the same database: polls often and sends what the first left pending.
      const second = await serve(db, 100);
      running.push(second);
      const deadline = Date.now() + 15_000;
      while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(received.length, 1, "the pending delivery arrived once");
      const got = received[0]!;
      const body = JSON.parse(got.raw.toString("utf8"));
      assert.equal(body.event.event_type, "product.created");
      assert.equal(body.event.resource_id, product.json.data.id);
      const ts = String(got.headers["x-locksmith-timestamp"]);
      const want = `v1=${createHmac("sha256", secret).update(`${ts}.${body.delivery_id}.`).update(got.raw).digest("hex")}`;
      assert.equal(got.headers["x-locksmith-signature"], want);
      await stopServe(second, "SIGTERM");
    });
  });
}
