// PostgreSQL stopped and started again under a steady load (issue 9 item 2). A real `licensekit serve`
// process runs on a private PostgreSQL cluster that this test creates (pg_createcluster, trust auth,
// loopback) and drops at the end — the shared cluster other tests use is never touched. Four loopback
// clients send activations (new fingerprints) and consumes (new event_ids) while the cluster is
// stopped for ~3 s and started again. Every answer must be a 2xx or a 503 SERVICE_UNAVAILABLE envelope with
// Retry-After, no request may hit the 5 s client timeout, /readyz must say not_ready during the outage
// and ready after, 2xx must come back within 5 s of the database being up, and what was acknowledged
// must be exactly what the database holds. Skipped only where pg_createcluster is not installed.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import { type Answer, call, is2xx, type LoadLicense, type LoadResult, loadRequest, type ServeProcess, serveEnv, setupLoadLicense, sleep, startServe, stopServe } from "./process.js";

const run = promisify(execFile);

const CLIENTS = 4;
const LOAD_BEFORE_MS = 3000;
const OUTAGE_MS = 3000;
const LOAD_AFTER_MS = 6000;

function postgresVersion(): string | null {
  try {
    const versions = fs.readdirSync("/etc/postgresql").filter((v) => /^\d+(\.\d+)?$/.test(v));
    versions.sort((a, b) => Number(a) - Number(b));
    return versions.at(-1) ?? null;
  } catch {
    return null;
  }
}

const hasCreateCluster = spawnSync("sh", ["-c", "command -v pg_createcluster"], { encoding: "utf8" }).status === 0;
const version = postgresVersion();
const skip = !hasCreateCluster
  ? "pg_createcluster is not installed (Debian/Ubuntu postgresql-common); this test needs a private cluster it may stop and start"
  : !version
    ? "no PostgreSQL version under /etc/postgresql"
    : false;
if (skip) process.stdout.write(`# skipping PostgreSQL restart test: ${skip}\n`);

/** A port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** The port of an existing cluster of that name, or null. */
function existingClusterPort(ver: string, name: string): number | null {
  const out = spawnSync("pg_lsclusters", ["-h"], { encoding: "utf8" }).stdout ?? "";
  for (const line of out.split("\n")) {
    const [v, n, port] = line.trim().split(/\s+/);
    if (v === ver && n === name) return Number(port);
  }
  return null;
}

describe("PostgreSQL restart under steady load (real serve process, private cluster)", { skip }, () => {
  const ver = version ?? "";
  // One cluster per test process: concurrent runs of the suite must not stop each other's database.
  const name = `lkfault_${process.pid}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-pgfault-"));
  let port = 0;
  let url = "";
  let server: ServeProcess | undefined;
  let lic: LoadLicense;

  const ctl = (action: string, ...extra: string[]) => run("pg_ctlcluster", [ver, name, action, ...extra], { timeout: 60_000 });

  before(async () => {
    const existing = existingClusterPort(ver, name);
    if (existing === null) {
      port = await freePort();
      await run("pg_createcluster", [ver, name, "-p", String(port), "--", "--auth=trust"], { timeout: 120_000 });
    } else {
      port = existing;
    }
    await ctl("start").catch((err: { stderr?: string }) => {
      // already running is fine (a reused cluster)
      if (!/already running/i.test(err.stderr ?? "")) throw err;
    });
    url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    server = await startServe(serveEnv(url, dataDir, { LICENSEKIT_DB_POOL_SIZE: "10" }));
    lic = await setupLoadLicense(server.base);
  });

  after(async () => {
    await stopServe(server, "SIGKILL");
    if (version) await run("pg_dropcluster", [ver, name, "--stop"], { timeout: 60_000 }).catch(() => {});
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("answers 2xx or 503 + Retry-After, never hangs, reports not_ready, recovers within 5 s and loses no acknowledged write", async () => {
    const base = server!.base;
    const results: LoadResult[] = [];
    const ready: { at: number; status: number | null; state: string | null; ms: number }[] = [];
    let loading = true;
    let seq = 0;

    const client = async (c: number) => {
      while (loading) {
        const i = seq++;
        const kind = i % 2 === 0 ? "activate" : "consume";
        const ref = kind === "activate" ? `fp-${c}-${i}` : kind === "consume" ? `ev-${c}-${i}` : `val-${c}-${i}`;
        results.push(await loadRequest(base, lic, kind, ref, `load-${i}`));
        // a client that was refused waits a little, as Retry-After asks (shortened so the load stays steady)
        if (!is2xx(results.at(-1)!)) await sleep(100);
      }
    };
    const readiness = async () => {
      while (loading) {
        const at = Date.now();
        try {
          const a: Answer = await call(base, "GET", "/readyz", { timeoutMs: 5000 });
          ready.push({ at, status: a.status, state: a.json?.data?.status ?? null, ms: a.ms });
        } catch {
          ready.push({ at, status: null, state: null, ms: Date.now() - at });
        }
        await sleep(200);
      }
    };

    const load = Promise.all([...Array.from({ length: CLIENTS }, (_, c) => client(c)), readiness()]);
    await sleep(LOAD_BEFORE_MS);
    const stopAt = Date.now();
    await ctl("stop", "-m", "fast");
    const downAt = Date.now();
    await sleep(OUTAGE_MS);
    const startAt = Date.now();
    await ctl("start");
    const upAt = Date.now();
    await sleep(LOAD_AFTER_MS);
    loading = false;
    await load;

    // 1. every answer is a 2xx or the 503 envelope; nothing timed out or failed at the transport
    const transport = results.filter((r) => r.transportError !== null);
    const crashed = server!.child.exitCode !== null || server!.child.signalCode !== null;
    assert.ok(!crashed, `the server process died: ${server!.stderr().slice(-3000)} ${server!.stdout().slice(-3000)}`);
    assert.deepEqual(transport.slice(0, 20).map((r) => `${r.kind} ${r.ref}: ${r.transportError}`), [], "no request hung or lost its connection");
    const bad = results.filter((r) => !is2xx(r) && !(r.status === 503 && r.code === "SERVICE_UNAVAILABLE" && r.retryAfter !== null));
    const internal = server!
      .lines()
      .filter((l) => l.level === 50 && server!.lines().some((r) => r.request_id === l.request_id && r.msg === "request" && r.status === 500))
      .slice(0, 3)
      .map((l) => JSON.stringify(l.err ?? l).slice(0, 1500));
    assert.deepEqual(
      bad.map((r) => `${r.kind} ${r.ref}: ${r.status} ${r.code} retry-after=${r.retryAfter}`),
      [],
      `only 2xx or 503 SERVICE_UNAVAILABLE with Retry-After; server errors: ${internal.join("\n")}`,
    );
    const unavailable = results.filter((r) => r.status === 503);
    assert.ok(unavailable.length > 0, "the outage was seen by the clients");
    const slowest = Math.max(...results.map((r) => r.endedAt - r.startedAt));
    assert.ok(slowest < 5000, `slowest answer ${slowest} ms`);

    // 2. /readyz: not_ready while the database was down, ready again afterwards
    const readyDuring = ready.filter((r) => r.at >= downAt && r.at + r.ms <= startAt);
    assert.ok(readyDuring.length > 0, "readyz was polled during the outage");
    for (const r of readyDuring) assert.deepEqual([r.status, r.state], [503, "not_ready"], "readyz during the outage");
    const lastReady = ready.at(-1)!;
    assert.deepEqual([lastReady.status, lastReady.state], [200, "ready"], "readyz after the database is back");
    assert.ok(
      ready.every((r) => r.status !== null && r.ms < 5000),
      "readyz never hung",
    );

    // 3. 2xx again within 5 s of the database accepting connections, and from then on only 2xx
    const firstOk = results.filter((r) => r.startedAt >= upAt && is2xx(r)).sort((a, b) => a.endedAt - b.endedAt)[0];
    assert.ok(firstOk, "some request succeeded after the restart");
    const recoveryMs = firstOk.endedAt - upAt;
    assert.ok(recoveryMs < 5000, `first 2xx ${recoveryMs} ms after the database was back`);
    const lateFailures = results.filter((r) => r.startedAt >= upAt + 5000 && !is2xx(r));
    assert.deepEqual(lateFailures.map((r) => `${r.kind} ${r.ref}: ${r.status} ${r.code}`), [], "fully recovered 5 s after the restart");

    // 4. reconciliation: what was acknowledged is what the database holds
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const stored = async () => {
        const devices = (await db.query("select fingerprint from devices where license_id = $1 and fingerprint <> $2", [lic.licenseId, lic.consumeFingerprint])).rows.map(
          (r) => r.fingerprint as string,
        );
        const events = (await db.query("select event_id, amount from consumption_events where license_id = $1", [lic.licenseId])).rows as { event_id: string; amount: number }[];
        const feature = (await db.query("select total_consumptions from license_features where license_id = $1 and feature_id = $2", [lic.licenseId, lic.featureId])).rows[0];
        const license = (await db.query("select total_consumptions from licenses where id = $1", [lic.licenseId])).rows[0];
        return { devices: new Set(devices), events: new Map(events.map((e) => [e.event_id, Number(e.amount)])), featureTotal: Number(feature.total_consumptions), licenseTotal: Number(license.total_consumptions) };
      };
      const acked = (kind: LoadResult["kind"]) => new Set(results.filter((r) => r.kind === kind && is2xx(r)).map((r) => r.ref));
      const refused = (kind: LoadResult["kind"]) => new Set(results.filter((r) => r.kind === kind && !is2xx(r)).map((r) => r.ref));
      const before = await stored();
      const ackedDevices = acked("activate");
      const ackedEvents = acked("consume");
      for (const fp of ackedDevices) assert.ok(before.devices.has(fp), `acknowledged activation ${fp} is stored`);
      for (const ev of ackedEvents) assert.ok(before.events.has(ev), `acknowledged consume ${ev} is stored`);
      // Anything stored beyond the acknowledged is a 503 whose commit went through as the connection
      // dropped (in doubt): the client cannot know, which is why it retries with the same event_id.
      const inDoubtDevices = [...before.devices].filter((fp) => !ackedDevices.has(fp));
      const inDoubtEvents = [...before.events.keys()].filter((ev) => !ackedEvents.has(ev));
      for (const fp of inDoubtDevices) assert.ok(refused("activate").has(fp), `stored device ${fp} was at least requested`);
      for (const ev of inDoubtEvents) assert.ok(refused("consume").has(ev), `stored consume ${ev} was at least requested`);
      assert.equal(before.featureTotal, [...before.events.values()].reduce((s, a) => s + a, 0), "the feature counter equals its ledger");
      assert.equal(before.licenseTotal, before.featureTotal, "the license total equals the feature counter");

      // The clients retry what was refused (same fingerprint / event_id, new Idempotency-Key: the old
      // key may still be held by a claim the outage kept from being released); then acknowledged = stored.
      let retried = 0;
      for (const r of results.filter((x) => !is2xx(x) && x.kind !== "validate")) {
        const again = await loadRequest(base, lic, r.kind, r.ref, `retry-${r.idempotencyKey}`);
        assert.ok(is2xx(again), `retry of ${r.kind} ${r.ref}: ${again.status} ${again.code}`);
        retried++;
      }
      const afterRetry = await stored();
      const allDevices = new Set(results.filter((r) => r.kind === "activate").map((r) => r.ref));
      const allEvents = new Set(results.filter((r) => r.kind === "consume").map((r) => r.ref));
      assert.equal(afterRetry.devices.size, allDevices.size, "one device per acknowledged activation");
      assert.deepEqual([...afterRetry.devices].sort(), [...allDevices].sort());
      assert.equal(afterRetry.events.size, allEvents.size, "one ledger row per acknowledged consume");
      assert.equal(afterRetry.featureTotal, allEvents.size, "acknowledged units = stored total");
      assert.equal(afterRetry.licenseTotal, allEvents.size);

      const summary = {
        requests: results.length,
        ok: results.filter(is2xx).length,
        unavailable: unavailable.length,
        acked_activations: ackedDevices.size,
        acked_consumes: ackedEvents.size,
        in_doubt_stored: inDoubtDevices.length + inDoubtEvents.length,
        retried,
        stop_ms: downAt - stopAt,
        outage_ms: upAt - stopAt,
        start_ms: upAt - startAt,
        first_2xx_after_up_ms: recoveryMs,
        slowest_answer_ms: slowest,
        slowest_503_ms: Math.max(0, ...unavailable.map((r) => r.endedAt - r.startedAt)),
        readyz_not_ready: ready.filter((r) => r.status === 503).length,
        readyz_polls: ready.length,
      };
      process.stdout.write(`# pg-restart figures: ${JSON.stringify(summary)}\n`);
    } finally {
      await db.end();
    }
  });
});
