// The batched side effects on a serving SQLite process (store/sqlite-batch-writer.ts): device stamps,
// API key stamps and call counts are written by a thread with its own connection. What it commits
// is what the event loop's flush would have written; a chunk it cannot commit (the write lock held
// past the wait) is put back and written once by a later flush; after the thread stops, flushes
// write through the serving connection again.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Sqlite from "better-sqlite3";
import { SideEffects } from "../src/jobs/side-effects.js";
import { openStore } from "../src/store/db.js";
import { callCountsFor, hourStart } from "../src/store/runtime-call-counts.js";
import { deviceRow } from "./helpers/device-rows.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";

describe("the SQLite batch thread [sqlite]", () => {
  let h: Harness;
  let licenseId: string;
  let file: string;
  before(async () => {
    // A short lock wait, so the test that holds the lock sees the thread give up quickly.
    h = await startHarness("sqlite", { env: { LICENSEKIT_SQLITE_LOCK_WAIT_MS: "100" } });
    licenseId = (await issueLicense(h, { max_activations: 10_000 })).licenseId;
    const db = h.config.database;
    assert.equal(db.engine, "sqlite");
    file = db.engine === "sqlite" ? db.file : "";
    h.lk.store.batchWriter!.start();
  });
  after(async () => h?.close());

  async function device(seenAt: number): Promise<string> {
    const row = deviceRow(licenseId, seenAt, null, "10.0.0.1");
    await h.lk.store.db.insertInto("devices").values(row).execute();
    return row.id;
  }
  const stamps = (id: string) =>
    h.lk.store.db.selectFrom("devices").select(["last_seen_at", "last_validated_at", "ip_address"]).where("id", "=", id).executeTakeFirstOrThrow();
  const calls = async (from: number) => (await callCountsFor(h.lk.store.db, licenseId, from, from + 3_600_000)).map((c) => [c.operation, Number(c.calls)]);

  it("a file store has a batch writer, :memory: has none; it runs only once started", async () => {
    const mem = await openStore({ engine: "sqlite", url: "sqlite::memory:", file: ":memory:" });
    assert.equal(mem.batchWriter, undefined);
    await mem.close();
    assert.ok(h.lk.store.batchWriter);
    assert.equal(h.lk.store.batchWriter.running, true);
  });

  it("stamps and counts are committed by the thread, newest stamp winning", async () => {
    const writer = h.lk.store.batchWriter!;
    const before = writer.stats.committed;
    const dev = await device(1_000);
    const at = Date.parse("2026-03-01T10:20:00Z");
    const se = new SideEffects(h.lk.store);
    se.deviceSeen(dev, 9_000, true, "10.0.0.9");
    se.deviceSeen(dev, 7_000, false, "10.0.0.7");
    se.callCounted(licenseId, "validate", at);
    se.callCounted(licenseId, "validate", at + 1);
    se.callCounted(licenseId, "check", at);
    await se.flush();
    assert.equal(se.pending, 0);
    // one chunk of device stamps and one of counts, both through the thread
    assert.equal(writer.stats.committed - before, 2);
    const row = await stamps(dev);
    assert.deepEqual([Number(row.last_seen_at), Number(row.last_validated_at), row.ip_address], [9_000, 9_000, "10.0.0.9"]);
    assert.deepEqual(await calls(hourStart(at)), [
      ["check", 1],
      ["validate", 2],
    ]);
  });

  it("a chunk the thread cannot commit is put back and written once by the next flush", async () => {
    const writer = h.lk.store.batchWriter!;
    const dev = await device(1_000);
    const at = Date.parse("2026-03-02T08:00:00Z");
    const errors: unknown[] = [];
    const se = new SideEffects(h.lk.store, (result, err) => result === "error" && errors.push(err));
    se.deviceSeen(dev, 5_000, true, "10.0.0.5");
    se.callCounted(licenseId, "validate", at, 3);
    // Another connection holds the write lock for longer than the thread waits (100 ms).
    const other = new Sqlite(file);
    other.prepare("BEGIN IMMEDIATE").run();
    const failedBefore = writer.stats.failed;
    try {
      await se.flush();
    } finally {
      other.prepare("ROLLBACK").run();
      other.close();
    }
    assert.equal(writer.stats.failed - failedBefore, 1, "the first chunk failed; the one after it was not sent");
    assert.equal(errors.length, 1);
    assert.match(String((errors[0] as { code?: string }).code), /^SQLITE_BUSY/);
    assert.equal(se.pending, 2, "the stamp and the count are back in the buffers");
    assert.equal(Number((await stamps(dev)).last_seen_at), 1_000);
    assert.deepEqual(await calls(hourStart(at)), []);

    await se.flush();
    assert.equal(se.pending, 0);
    assert.equal(Number((await stamps(dev)).last_seen_at), 5_000);
    assert.deepEqual(await calls(hourStart(at)), [["validate", 3]]);
  });

  it("a flush under way when the thread stops finishes; later flushes use the serving connection", async () => {
    const writer = h.lk.store.batchWriter!;
    const at = Date.parse("2026-03-03T08:00:00Z");
    const devices: string[] = [];
    for (let i = 0; i < 600; i++) devices.push(await device(1_000));
    const se = new SideEffects(h.lk.store);
    // 600 stamps: three chunks, the thread stops after the first is sent
    for (const d of devices) se.deviceSeen(d, 2_000, false, null);
    se.callCounted(licenseId, "check", at);
    const sent = writer.stats.committed;
    const flushing = se.flush();
    const stopping = writer.stop();
    await Promise.all([flushing, stopping]);
    assert.equal(writer.running, false);
    assert.equal(writer.stats.committed - sent, 1, "the first chunk went to the thread before it stopped");
    assert.equal(se.pending, 0);
    for (const d of devices) assert.equal(Number((await stamps(d)).last_seen_at), 2_000, d);
    assert.deepEqual(await calls(hourStart(at)), [["check", 1]]);

    const committed = writer.stats.committed;
    se.callCounted(licenseId, "check", at);
    await se.flush();
    assert.equal(writer.stats.committed, committed, "not through the stopped thread");
    assert.deepEqual(await calls(hourStart(at)), [["check", 2]]);
  });
});
