// Background WAL checkpoints of the embedded SQLite database (store/wal-checkpointer.ts): a thread
// with its own connection copies the write-ahead log into the database file, the serving
// connection's own automatic checkpoint is pushed back to a fallback threshold while the thread
// runs and restored when it stops or dies, nothing written is lost across it, and /metrics shows
// what the thread did.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import Sqlite from "better-sqlite3";
import { sql } from "kysely";
import { openStore, type Store } from "../src/store/db.js";
import { FALLBACK_AUTOCHECKPOINT_PAGES, WalCheckpointer } from "../src/store/wal-checkpointer.js";
import { issueLicense, startHarness } from "./helpers/harness.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-wal-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function fileStore(name: string): Promise<{ store: Store; file: string }> {
  const file = path.join(dir, name);
  const store = await openStore({ engine: "sqlite", url: `sqlite:${file}`, file });
  await sql`create table t (id integer primary key, body text not null)`.execute(store.db);
  return { store, file };
}

/** Writes `n` rows in `n` transactions of ~1 page each. */
async function writeRows(store: Store, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i++) await sql`insert into t (id, body) values (${i}, ${"x".repeat(3000)})`.execute(store.db);
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const autocheckpoint = (file: string, store: Store) => {
  // the serving connection's setting, read through the store itself
  void file;
  return sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(store.db).then((r) => r.rows[0]!.wal_autocheckpoint);
};

describe("background WAL checkpoints [sqlite]", () => {
  it("a file store has a checkpointer, :memory: has none", async () => {
    const mem = await openStore({ engine: "sqlite", url: "sqlite::memory:", file: ":memory:" });
    assert.equal(mem.checkpointer, undefined);
    await mem.close();
    const { store } = await fileStore("has.db");
    assert.ok(store.checkpointer);
    assert.equal(store.checkpointer.running, false);
    await store.close();
  });

  it("the thread checkpoints the WAL the serving connection writes; the commits themselves no longer do", async () => {
    const { store, file } = await fileStore("runs.db");
    const cp = store.checkpointer!;
    assert.equal(await autocheckpoint(file, store), 1000);
    // Thread started but idle for now (a long interval): 1,500 one-page commits pass SQLite's
    // default threshold of 1,000 pages, yet the serving connection does not checkpoint them.
    cp.start(60_000);
    assert.equal(cp.running, true);
    assert.equal(await autocheckpoint(file, store), FALLBACK_AUTOCHECKPOINT_PAGES);
    await writeRows(store, 0, 1500);
    const walPages = fs.statSync(`${file}-wal`).size / 4096;
    assert.ok(walPages > 1500, `WAL holds ${walPages} pages: the commits did not checkpoint`);
    await cp.stop();
    assert.equal(cp.running, false);
    assert.equal(await autocheckpoint(file, store), 1000, "stopping gives checkpoints back to the serving connection");

    // A short interval: the thread copies everything into the database file.
    cp.start(20);
    await writeRows(store, 1500, 50);
    await until("a complete checkpoint", () => cp.stats.runs > 0 && cp.stats.lastLog > 0 && cp.stats.lastCheckpointed === cp.stats.lastLog);
    assert.equal(cp.stats.failures, 0);
    await store.close();
    assert.equal(cp.running, false, "closing the store ends the thread");

    // Everything is there, read by a new connection.
    const check = new Sqlite(file, { readonly: true });
    try {
      assert.equal((check.prepare("select count(*) as n from t").get() as { n: number }).n, 1550);
    } finally {
      check.close();
    }
  });

  it("writes keep going while the thread checkpoints, and the WAL stops growing", async () => {
    const { store, file } = await fileStore("busy.db");
    store.checkpointer!.start(20);
    // 3,000 commits in bursts with pauses: the WAL restarts from its start after each complete
    // checkpoint, so the file stays far below the 3,000 pages these commits wrote.
    for (let b = 0; b < 30; b++) {
      await writeRows(store, b * 100, 100);
      await new Promise((r) => setTimeout(r, 30));
    }
    const walPages = fs.statSync(`${file}-wal`).size / 4096;
    assert.ok(walPages < 1500, `WAL grew to ${walPages} pages`);
    assert.ok(store.checkpointer!.stats.runs > 0);
    assert.equal(((await sql<{ n: number }>`select count(*) as n from t`.execute(store.db)).rows[0]!).n, 3000);
    await store.close();
  });

  it("a thread that cannot open the database reports it and leaves checkpoints to the commits", async () => {
    const { store, file } = await fileStore("dies.db");
    const raw = new Sqlite(file);
    const errors: Error[] = [];
    const cp = new WalCheckpointer(raw, path.join(dir, "missing", "nothing.db"));
    cp.start(20, (err) => errors.push(err));
    await until("the thread to end", () => !cp.running);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /unable to open|does not exist|directory/i);
    assert.equal((raw.pragma("wal_autocheckpoint") as { wal_autocheckpoint: number }[])[0]!.wal_autocheckpoint, 1000);
    await cp.stop();
    raw.close();
    await store.close();
  });

  it("/metrics shows the thread's checkpoints and the WAL size it found", async () => {
    const h = await startHarness("sqlite");
    try {
      const cp = h.lk.store.checkpointer!;
      const metric = async (line: RegExp) => {
        const text = (await h.request({ method: "GET", url: "/metrics" })).text;
        const m = line.exec(text);
        return m ? Number(m[1]) : Number.NaN;
      };
      assert.equal(await metric(/^licensekit_sqlite_wal_checkpoints_total\{result="ok"\} (\d+)$/m), 0, "not started yet");
      cp.start(20);
      for (let i = 0; i < 5; i++) await issueLicense(h);
      await until("a checkpoint that found pages", () => cp.stats.runs - cp.stats.busy - cp.stats.failures > 0 && cp.stats.lastLog > 0);
      const ok = await metric(/^licensekit_sqlite_wal_checkpoints_total\{result="ok"\} (\d+)$/m);
      assert.ok(ok >= 1 && ok <= cp.stats.runs, `ok checkpoints: ${ok}`);
      assert.equal(await metric(/^licensekit_sqlite_wal_checkpoints_total\{result="failed"\} (\d+)$/m), 0);
      assert.ok((await metric(/^licensekit_sqlite_wal_pages (\d+)$/m)) >= 0);
      await cp.stop();
    } finally {
      await h.close();
    }
  });
});
