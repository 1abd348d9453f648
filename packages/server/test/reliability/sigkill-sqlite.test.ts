// SIGKILL under write load on SQLite (issue 9 item 2): a real `licensekit serve` process on a SQLite
// file takes concurrent activations (new fingerprints) and consumes (new event_ids) and is killed with
// SIGKILL mid-load. Opened read-only before any restart, the file passes PRAGMA integrity_check and
// holds every write that was answered 2xx (and nothing that was never asked for); a new process on the
// same file starts, serves, and still sees all of it.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import Sqlite from "better-sqlite3";
import { is2xx, type LoadResult, loadRequest, type ServeProcess, serveEnv, setupLoadLicense, sleep, startServe, stopServe } from "./process.js";

const CLIENTS = 6;
const LOAD_MS = 2500;

describe("SIGKILL under write load (real serve process, SQLite file)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-sigkill-"));
  const file = path.join(dir, "licensekit.db");
  const env = serveEnv(`sqlite:${file}`, dir);
  const running: ServeProcess[] = [];
  after(async () => {
    for (const p of running) await stopServe(p, "SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** What the file holds for the license, read through a read-only connection. */
  function stored(licenseId: string, consumer: string) {
    const db = new Sqlite(file, { readonly: true, fileMustExist: true });
    try {
      const integrity = db.pragma("integrity_check") as { integrity_check: string }[];
      const devices = db.prepare("select fingerprint from devices where license_id = ? and fingerprint <> ?").all(licenseId, consumer) as { fingerprint: string }[];
      const events = db.prepare("select event_id, amount from consumption_events where license_id = ?").all(licenseId) as { event_id: string; amount: number }[];
      const feature = db.prepare("select sum(total_consumptions) as t from license_features where license_id = ?").get(licenseId) as { t: number };
      const license = db.prepare("select total_consumptions as t from licenses where id = ?").get(licenseId) as { t: number };
      return {
        integrity: integrity.map((r) => r.integrity_check),
        devices: new Set(devices.map((d) => d.fingerprint)),
        events: new Set(events.map((e) => e.event_id)),
        units: events.reduce((s, e) => s + e.amount, 0),
        featureTotal: feature.t,
        licenseTotal: license.t,
      };
    } finally {
      db.close();
    }
  }

  it("keeps the file intact and every acknowledged write after a SIGKILL mid-load, and serves again on restart", async () => {
    const first = await startServe(env);
    running.push(first);
    const lic = await setupLoadLicense(first.base);

    const results: LoadResult[] = [];
    let loading = true;
    let seq = 0;
    const client = async (c: number) => {
      while (loading) {
        const i = seq++;
        const kind = i % 2 === 0 ? "activate" : "consume";
        const r = await loadRequest(first.base, lic, kind, kind === "activate" ? `fp-${c}-${i}` : `ev-${c}-${i}`, `k-${i}`);
        results.push(r);
        if (r.transportError) return; // the server is gone
      }
    };
    const load = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    await sleep(LOAD_MS);
    const killedAt = Date.now();
    first.child.kill("SIGKILL");
    const exit = await first.exited;
    loading = false;
    await load;
    assert.equal(exit.signal, "SIGKILL");

    const acked = results.filter(is2xx);
    const cutOff = results.filter((r) => r.transportError !== null);
    assert.ok(acked.length >= 20, `enough load before the kill (${acked.length} acknowledged)`);
    // anything else than a 2xx or a cut connection would be a bug of its own
    const other = results.filter((r) => !is2xx(r) && r.transportError === null);
    assert.deepEqual(other.map((r) => `${r.kind} ${r.ref}: ${r.status} ${r.code}`), []);

    // before any restart: the file as the killed process left it
    const s = stored(lic.licenseId, lic.consumeFingerprint);
    assert.deepEqual(s.integrity, ["ok"], "PRAGMA integrity_check");
    const ackedDevices = acked.filter((r) => r.kind === "activate").map((r) => r.ref);
    const ackedEvents = acked.filter((r) => r.kind === "consume").map((r) => r.ref);
    for (const fp of ackedDevices) assert.ok(s.devices.has(fp), `acknowledged activation ${fp} survived`);
    for (const ev of ackedEvents) assert.ok(s.events.has(ev), `acknowledged consume ${ev} survived`);
    // beyond the acknowledged, only requests cut off by the kill may have committed
    const cutRefs = new Set(cutOff.map((r) => r.ref));
    const extraDevices = [...s.devices].filter((fp) => !ackedDevices.includes(fp));
    const extraEvents = [...s.events].filter((ev) => !ackedEvents.includes(ev));
    for (const ref of [...extraDevices, ...extraEvents]) assert.ok(cutRefs.has(ref), `stored ${ref} was in flight at the kill`);
    assert.equal(s.featureTotal, s.units, "the feature counter equals its ledger");
    assert.equal(s.licenseTotal, s.units, "the license total equals its ledger");

    // a new process on the same file starts and serves; the data is all there
    const second = await startServe(env);
    running.push(second);
    const again = await loadRequest(second.base, lic, "activate", "after-restart", "k-after-restart");
    assert.ok(is2xx(again), `activation after restart: ${again.status} ${again.code}`);
    const consumed = await loadRequest(second.base, lic, "consume", "ev-after-restart", "k-ev-after-restart");
    assert.ok(is2xx(consumed), `consume after restart: ${consumed.status} ${consumed.code}`);
    const s2 = stored(lic.licenseId, lic.consumeFingerprint);
    assert.deepEqual(s2.integrity, ["ok"]);
    for (const fp of ackedDevices) assert.ok(s2.devices.has(fp));
    for (const ev of ackedEvents) assert.ok(s2.events.has(ev));
    assert.equal(s2.devices.size, s.devices.size + 1);
    assert.equal(s2.units, s.units + 1);
    await stopServe(second, "SIGTERM");
    assert.equal((await second.exited).code, 0);

    process.stdout.write(
      `# sigkill-sqlite figures: ${JSON.stringify({
        requests: results.length,
        acknowledged: acked.length,
        acked_activations: ackedDevices.length,
        acked_consumes: ackedEvents.length,
        cut_by_kill: cutOff.length,
        committed_but_unacknowledged: extraDevices.length + extraEvents.length,
        load_ms_before_kill: killedAt - Math.min(...results.map((r) => r.startedAt)),
      })}\n`,
    );
  });
});
