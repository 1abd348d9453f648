// The runtime cache across real server processes (issue 8 item 3, issue 9 item 1): a suspend sent
// to one process is answered LICENSE_INACTIVE by another that had the license cached, within one
// second — two `licensekit serve` processes on one PostgreSQL database (LISTEN/NOTIFY, also after
// their LISTEN connections were killed), and `serve --workers 2` on one SQLite file (the polled
// change feed). Loopback only; every loop is bounded in count and time.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { LISTENER_APPLICATION_NAME } from "../../src/jobs/runtime-invalidation.js";
import { createTestDatabase, ENGINES, type TestDatabase } from "../helpers/engines.js";
import { type Answer, call as callOnce, ServeProcess, sleep } from "./processes.js";

const TOKEN = `lkm_${"R".repeat(40)}`;
const MASTER_KEY = randomBytes(32).toString("hex");

/** One request on its own connection (processes.ts), so that under `--workers 2` consecutive calls may reach either worker. */
const call = (port: number, method: string, url: string, auth: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> =>
  callOnce(`http://127.0.0.1:${port}`, url, { method, auth, body, headers, timeoutMs: 10_000 });

function env(db: TestDatabase): Record<string, string> {
  return {
    LICENSEKIT_DATABASE_URL: db.url,
    LICENSEKIT_DATA_DIR: db.dir,
    LICENSEKIT_MASTER_KEY: MASTER_KEY,
    LICENSEKIT_BOOTSTRAP_TOKEN: TOKEN,
    LICENSEKIT_LOG_LEVEL: "info",
    LICENSEKIT_RATE_LIMIT_RUNTIME_PER_SECOND: "0",
    LICENSEKIT_RATE_LIMIT_MANAGEMENT_PER_SECOND: "0",
    LICENSEKIT_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "0",
  };
}

let writes = 0;
const admin = (port: number, method: string, url: string, body?: unknown) =>
  call(port, method, url, `Bearer ${TOKEN}`, body, method === "GET" ? {} : { "idempotency-key": `rcp-${process.pid}-${writes++}` });

/** A product, a policy and a license created through `port`, with one device activated. */
async function issue(port: number, fingerprint: string): Promise<{ id: string; key: string }> {
  const n = randomBytes(4).toString("hex");
  const product = await admin(port, "POST", "/api/v1/products", { name: `P ${n}`, code: `p-${n}` });
  assert.equal(product.status, 201, JSON.stringify(product.json));
  const policy = await admin(port, "POST", `/api/v1/products/${product.json.data.id}/policies`, { name: "P", code: `pol-${n}`, license_type: "perpetual", max_activations: 5 });
  assert.equal(policy.status, 201, JSON.stringify(policy.json));
  const lic = await admin(port, "POST", "/api/v1/licenses", { product_id: product.json.data.id, policy_id: policy.json.data.id });
  assert.equal(lic.status, 201, JSON.stringify(lic.json));
  const key = lic.json.data.license_key as string;
  const act = await call(port, "POST", "/api/v1/license/activate", `License ${key}`, { fingerprint }, { "idempotency-key": `act-${n}` });
  assert.equal(act.status, 200, JSON.stringify(act.json));
  return { id: lic.json.data.license.id, key };
}

/**
 * Validates through `port` every 5 ms from now until `want` answers; returns the milliseconds it
 * took. Bounded: gives up after 3 s.
 */
async function msUntilStatus(port: number, key: string, fingerprint: string, want: number, since: number): Promise<number> {
  for (let i = 0; i < 600; i++) {
    const r = await call(port, "POST", "/api/v1/license/validate", `License ${key}`, { fingerprint });
    if (r.status === want) {
      if (want === 403) assert.equal(r.json.error.code, "LICENSE_INACTIVE");
      return Date.now() - since;
    }
    assert.ok(r.status === 200 || r.status === 403, JSON.stringify(r.json));
    if (Date.now() - since > 3000) break;
    await sleep(5);
  }
  throw new Error(`status ${want} not answered within 3 s`);
}

/** Lets every process apply the setup's own changes (well past a poll), then reads the license into their caches. */
async function warm(port: number, key: string, fingerprint: string, times: number): Promise<void> {
  await sleep(600);
  for (let i = 0; i < times; i++) {
    const r = await call(port, "POST", "/api/v1/license/validate", `License ${key}`, { fingerprint });
    assert.equal(r.status, 200, JSON.stringify(r.json));
  }
}

if (ENGINES.includes("postgres")) {
  describe("runtime cache: two `licensekit serve` processes on one PostgreSQL database", () => {
    let db: TestDatabase;
    let a: ServeProcess;
    let b: ServeProcess;

    before(async () => {
      db = await createTestDatabase("postgres");
      a = await ServeProcess.start({ env: env(db) });
      b = await ServeProcess.start({ env: env(db) });
    });
    after(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
      await db?.drop();
    });

    it("a suspend through one process is answered LICENSE_INACTIVE by the other within one second, and a reinstate likewise", async () => {
      const lic = await issue(a.port, "pg-fp");
      await warm(b.port, lic.key, "pg-fp", 5);
      const suspended = await admin(a.port, "POST", `/api/v1/licenses/${lic.id}/suspend`, {});
      assert.equal(suspended.status, 200, JSON.stringify(suspended.json));
      const ms = await msUntilStatus(b.port, lic.key, "pg-fp", 403, Date.now());
      assert.ok(ms < 1000, `the other process answered LICENSE_INACTIVE after ${ms} ms`);
      const reinstated = await admin(b.port, "POST", `/api/v1/licenses/${lic.id}/reinstate`, {});
      assert.equal(reinstated.status, 200, JSON.stringify(reinstated.json));
      const back = await msUntilStatus(a.port, lic.key, "pg-fp", 200, Date.now());
      assert.ok(back < 1000, `reinstate seen after ${back} ms`);
      console.log(`# postgres, two processes: suspend seen after ${ms} ms, reinstate after ${back} ms`);
    });

    it("with every LISTEN connection killed, a suspend is still honoured within one second, and the listeners come back", async () => {
      const lic = await issue(a.port, "kill-fp");
      await warm(b.port, lic.key, "kill-fp", 5);
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        const listeners = async () =>
          Number(
            (await c.query("select count(*) as n from pg_stat_activity where datname = current_database() and application_name = $1", [LISTENER_APPLICATION_NAME])).rows[0]
              .n,
          );
        assert.equal(await listeners(), 2);
        await c.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = $1", [LISTENER_APPLICATION_NAME]);
        const suspended = await admin(a.port, "POST", `/api/v1/licenses/${lic.id}/suspend`, {});
        assert.equal(suspended.status, 200, JSON.stringify(suspended.json));
        const ms = await msUntilStatus(b.port, lic.key, "kill-fp", 403, Date.now());
        assert.ok(ms < 1000, `answered after ${ms} ms while the listeners were down`);
        // Both processes listen again (back-off starts at 100 ms).
        for (let i = 0; i < 100 && (await listeners()) < 2; i++) await sleep(100);
        assert.equal(await listeners(), 2, "both listeners reconnected");
        const reinstated = await admin(a.port, "POST", `/api/v1/licenses/${lic.id}/reinstate`, {});
        assert.equal(reinstated.status, 200);
        await msUntilStatus(b.port, lic.key, "kill-fp", 200, Date.now());
        await warm(b.port, lic.key, "kill-fp", 5);
        const again = await admin(a.port, "POST", `/api/v1/licenses/${lic.id}/suspend`, {});
        assert.equal(again.status, 200);
        const ms2 = await msUntilStatus(b.port, lic.key, "kill-fp", 403, Date.now());
        assert.ok(ms2 < 1000, `answered after ${ms2} ms after the reconnect`);
        console.log(`# postgres, listeners killed: suspend seen after ${ms} ms; after reconnect ${ms2} ms`);
      } finally {
        await c.end();
      }
    });
  });
}

describe("runtime cache: `serve --workers 2` on one SQLite file", () => {
  let db: TestDatabase;
  let cluster: ServeProcess;

  before(async () => {
    db = await createTestDatabase("sqlite");
    cluster = await ServeProcess.start({ env: env(db), workers: 2 });
  });
  after(async () => {
    await cluster?.stop();
    await db?.drop();
  });

  it("a suspend through one worker is answered LICENSE_INACTIVE by every worker within one second", async () => {
    const lic = await issue(cluster.port, "sq-fp");
    // Each call opens its own connection, so the cluster's round-robin lets both workers cache it.
    await warm(cluster.port, lic.key, "sq-fp", 8);
    const suspended = await admin(cluster.port, "POST", `/api/v1/licenses/${lic.id}/suspend`, {});
    assert.equal(suspended.status, 200, JSON.stringify(suspended.json));
    const t0 = Date.now();
    // Keep asking (alternating workers) for 1.3 s: the last 200 must come before 1 s.
    let lastOk = -1;
    let after1s = 0;
    for (let i = 0; i < 500 && Date.now() - t0 < 1300; i++) {
      const r = await call(cluster.port, "POST", "/api/v1/license/validate", `License ${lic.key}`, { fingerprint: "sq-fp" });
      const at = Date.now() - t0;
      if (r.status === 200) lastOk = at;
      else assert.equal(r.json.error.code, "LICENSE_INACTIVE", JSON.stringify(r.json));
      if (at >= 1000) after1s++;
      await sleep(5);
    }
    assert.ok(lastOk < 1000, `a worker still answered 200 after ${lastOk} ms`);
    assert.ok(after1s > 0, "the loop ran past one second");
    await sleep(300); // the last request log lines
    const answeredInactive = cluster
      .logLines()
      .filter((l) => (l.time as number) >= t0 && l.msg === "request" && l.route === "/api/v1/license/validate" && l.status === 403);
    const pids = new Set(answeredInactive.map((l) => l.pid));
    assert.equal(pids.size, 2, "both workers answered LICENSE_INACTIVE");
    console.log(`# sqlite, serve --workers 2: last 200 after the suspend at ${lastOk} ms (-1: none)`);
  });
});
