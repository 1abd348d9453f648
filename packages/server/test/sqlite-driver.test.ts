// The SQLite driver (store/sqlite-driver.ts): rows are read as arrays and turned into objects by a
// function written for each statement's columns; they must be exactly the rows better-sqlite3 would
// have built (every type, duplicate names, odd names), follow a change of the table's columns made
// through this handle or by another connection, and prepared queries inside a transaction run on
// the transaction's connection at once (seeing its uncommitted writes, undone by its rollback,
// serialised with other transactions), while a root handle or a handle with a plugin still goes
// through Kysely's executor.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import Sqlite from "better-sqlite3";
import { type Kysely, sql } from "kysely";
import { isDatabaseUnavailable, openStore, type Q, type Store } from "../src/store/db.js";
import { prepare } from "../src/store/prepared.js";
import { rowMaker, sqliteTransactionConnection } from "../src/store/sqlite-driver.js";
import { CountingPlugin } from "./helpers/counting-plugin.js";

interface TestTables {
  t: { id: number; name: string; score: number | null; data: Buffer | null; n: number };
}
const typed = (q: Q) => q as unknown as Kysely<TestTables>;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-driver-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("rowMaker", () => {
  it("builds an object with the names in order, the later of two equal names winning", () => {
    const make = rowMaker(["id", "name", "id", "weird \" name\\\n", "x"]);
    const row = make([1, "a", 2, "q", null]);
    assert.deepEqual(Object.keys(row), ["id", "name", 'weird " name\\\n', "x"]);
    assert.deepEqual(row, { id: 2, name: "a", 'weird " name\\\n': "q", x: null });
  });

  it("reads a column name as a name, never as code", () => {
    const evil = 'a": globalThis.__lkInjected = 1, "b';
    const row = rowMaker([evil, "}) || (globalThis.__lkInjected = 2); ({"])(["v1", "v2"]);
    assert.equal((globalThis as Record<string, unknown>).__lkInjected, undefined);
    assert.deepEqual(Object.values(row), ["v1", "v2"]);
    assert.equal(row[evil], "v1");
  });

  it("makes __proto__ an own property and leaves the prototype alone", () => {
    const row = rowMaker(["__proto__", "id"])([{ polluted: true }, 7]);
    assert.equal(Object.getPrototypeOf(row), Object.prototype);
    assert.ok(Object.hasOwn(row, "__proto__"));
    assert.equal((row as { polluted?: boolean }).polluted, undefined);
    assert.equal(row.id, 7);
  });
});

describe("SQLite driver rows", () => {
  let store: Store;
  let file: string;
  before(async () => {
    file = path.join(dir, "rows.db");
    store = await openStore({ engine: "sqlite", url: `sqlite:${file}`, file });
    await sql`create table t (id integer primary key, name text not null, score real, data blob, n integer not null)`.execute(store.db);
    await sql`insert into t values (1, 'one', 1.5, x'00ff', 10), (2, 'two', null, null, 20), (3, '', -0.25, x'', 30)`.execute(store.db);
  });
  after(async () => store?.close());

  it("gives exactly better-sqlite3's own rows, for every type and for joins with repeated names", async () => {
    const other = new Sqlite(file, { readonly: true });
    try {
      for (const text of ["select * from t order by id", "select a.*, b.id, b.name from t a join t b on b.id = a.id + 1 order by a.id", "select count(*) as c, max(score) from t"]) {
        const ours = (await sql.raw(text).execute(store.db)).rows;
        assert.deepEqual(ours, other.prepare(text).all(), text);
      }
      assert.deepEqual((await sql.raw("select * from t where id = 99").execute(store.db)).rows, []);
    } finally {
      other.close();
    }
  });

  it("follows columns changed through this handle, even when their number stays the same", async () => {
    const all = prepare(0, (q) => typed(q).selectFrom("t").selectAll().orderBy("id"));
    assert.deepEqual(Object.keys((await all.first(store.db))!), ["id", "name", "score", "data", "n"]);
    await sql`alter table t drop column data`.execute(store.db);
    await sql`alter table t add column extra text default 'e'`.execute(store.db);
    const row = (await all.first(store.db)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(row), ["id", "name", "score", "n", "extra"]);
    assert.equal(row.extra, "e");
  });

  it("follows a column added by another connection", async () => {
    const all = prepare(0, (q) => typed(q).selectFrom("t").selectAll().orderBy("id"));
    const before = Object.keys((await all.first(store.db))!);
    const other = new Sqlite(file);
    try {
      other.exec("alter table t add column later integer default 5");
    } finally {
      other.close();
    }
    const row = (await all.first(store.db)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(row), [...before, "later"]);
    assert.equal(row.later, 5);
  });
});

describe("prepared queries inside a SQLite transaction", () => {
  let store: Store;
  const byId = prepare(1, (q, id: number) => typed(q).selectFrom("t").select(["id", "n"]).where("id", "=", id));
  const setN = prepare(2, (q, id: number, n: number) => typed(q).updateTable("t").set({ n }).where("id", "=", id));
  const insert = prepare(2, (q, id: number, name: string) => typed(q).insertInto("t").values({ id, name, score: null, data: null, n: 0 }).returning("id"));
  before(async () => {
    const file = path.join(dir, "tx.db");
    store = await openStore({ engine: "sqlite", url: `sqlite:${file}`, file });
    await sql`create table t (id integer primary key, name text not null, score real, data blob, n integer not null)`.execute(store.db);
    await sql`insert into t values (1, 'one', null, null, 0)`.execute(store.db);
  });
  after(async () => store?.close());

  it("runs at once on the transaction's connection only for a transaction without plugins", async () => {
    assert.equal(sqliteTransactionConnection(store.db), undefined, "a root handle waits for the driver's mutex");
    await store.db.transaction().execute(async (trx) => {
      const connection = sqliteTransactionConnection(trx);
      assert.ok(connection);
      const pending = setN.execute(trx, 1, 77);
      // The UPDATE has run by the time its promise is handed back, before anything is awaited.
      assert.deepEqual(connection.run(typed(trx).selectFrom("t").select("n").where("id", "=", 1).compile()).rows, [{ n: 77 }]);
      await pending;
      await setN.execute(trx, 1, 0);
    });
    const plugin = new CountingPlugin();
    await store.db.withPlugin(plugin).transaction().execute(async (trx) => {
      assert.equal(sqliteTransactionConnection(trx), undefined);
      await byId.first(trx, 1);
    });
    assert.equal(plugin.seen, 1, "the plugin saw the prepared query");
  });

  it("sees the transaction's own writes, and a rollback undoes them", async () => {
    await assert.rejects(
      store.db.transaction().execute(async (trx) => {
        await setN.execute(trx, 1, 41);
        assert.equal((await byId.first(trx, 1))?.n, 41);
        assert.deepEqual(await insert.execute(trx, 2, "two"), [{ id: 2 }]);
        await insert.execute(trx, 2, "again"); // primary key violation: the transaction rolls back
      }),
      (e: { code?: string }) => e.code === "SQLITE_CONSTRAINT_PRIMARYKEY",
    );
    assert.equal((await byId.first(store.db, 1))?.n, 0);
    assert.equal(await byId.first(store.db, 2), undefined);
  });

  it("keeps concurrent read-modify-write transactions serialised", async () => {
    const rounds = 25;
    await Promise.all(
      Array.from({ length: rounds }, () =>
        store.db.transaction().execute(async (trx) => {
          const n = (await byId.first(trx, 1))!.n;
          await new Promise((r) => setImmediate(r)); // other transactions try to run here
          await setN.execute(trx, 1, n + 1);
        }),
      ),
    );
    assert.equal((await byId.first(store.db, 1))?.n, rounds);
  });
});

describe("waiting for another connection's write lock", () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** `p`'s outcome, or "pending" if it has none within `ms`. */
  const settledWithin = <T>(p: Promise<T>, ms: number) => Promise.race([p.then((v) => ({ value: v })), sleep(ms).then(() => "pending" as const)]);
  const table = async (db: Q) => {
    await sql`create table t (id integer primary key, name text not null, score real, data blob, n integer not null)`.execute(db);
    await sql`insert into t values (1, 'one', null, null, 0)`.execute(db);
  };
  const count = async (db: Q) => Number((await sql<{ c: number }>`select count(*) as c from t`.execute(db)).rows[0]!.c);

  it("waits without blocking the event loop, lets reads run meanwhile, then runs every waiting write in turn", async () => {
    const file = path.join(dir, "lock-wait.db");
    const store = await openStore({ engine: "sqlite", url: `sqlite:${file}`, file });
    const other = new Sqlite(file);
    try {
      await table(store.db);
      other.exec("begin immediate");
      // Two transactions and one autocommit write of this process, all finding the lock taken.
      const first = store.db.transaction().execute(async (trx) => {
        const seen = await count(trx);
        await typed(trx).insertInto("t").values({ id: 10, name: "ten", score: null, data: null, n: seen }).execute();
        return seen;
      });
      const second = store.db.transaction().execute(async (trx) => {
        await typed(trx).insertInto("t").values({ id: 11, name: "eleven", score: null, data: null, n: await count(trx) }).execute();
      });
      const autocommit = sql`update t set n = n + 1 where id = 1`.execute(store.db);

      const t0 = performance.now();
      await sleep(50);
      assert.ok(performance.now() - t0 < 1000, "timers fire while the writes wait (SQLite's own busy handler would sleep on this thread)");
      const read = await settledWithin(count(store.db), 1000);
      assert.deepEqual(read, { value: 1 }, "a read of this process runs while its writes wait, and sees the committed state");
      assert.equal(store.lockWaits?.acquired, 0);
      assert.ok((store.lockWaits?.retries ?? 0) >= 3, `every waiting write was tried again (${store.lockWaits?.retries})`);
      assert.equal(await settledWithin(first, 100), "pending", "no write got past the lock");

      other.prepare("insert into t values (5, 'five', null, null, 0)").run();
      other.exec("commit");
      assert.equal(await first, 2, "the first transaction began after the other connection's commit and saw its row");
      await Promise.all([second, autocommit]);
      assert.deepEqual(await typed(store.db).selectFrom("t").select(["id", "n"]).orderBy("id").execute(), [
        { id: 1, n: 1 },
        { id: 5, n: 0 },
        { id: 10, n: 2 },
        { id: 11, n: 3 },
      ]);
      assert.deepEqual({ acquired: store.lockWaits?.acquired, timeouts: store.lockWaits?.timeouts }, { acquired: 3, timeouts: 0 });
    } finally {
      if (other.inTransaction) other.exec("rollback");
      other.close();
      await store.close();
    }
  });

  it("gives up after LICENSEKIT_SQLITE_LOCK_WAIT_MS with SQLITE_BUSY (an unavailable database, 503), and the handle works on afterwards", async () => {
    const file = path.join(dir, "lock-timeout.db");
    const store = await openStore({ engine: "sqlite", url: `sqlite:${file}`, file, lockWaitMs: 200 });
    const other = new Sqlite(file);
    try {
      await table(store.db);
      other.exec("begin immediate");
      const t0 = performance.now();
      const outcomes = await Promise.allSettled([
        store.db.transaction().execute((trx) => sql`update t set n = 1`.execute(trx)),
        store.db.transaction().execute((trx) => sql`update t set n = 2`.execute(trx)),
        sql`update t set n = 3`.execute(store.db),
      ]);
      const waited = performance.now() - t0;
      for (const o of outcomes) {
        assert.equal(o.status, "rejected");
        const err = (o as PromiseRejectedResult).reason as { code?: string };
        assert.equal(err.code, "SQLITE_BUSY");
        assert.ok(isDatabaseUnavailable(err), "answered 503 with Retry-After, like any unavailable database");
      }
      assert.ok(waited >= 190 && waited < 2000, `gave up after the wait (${Math.round(waited)} ms)`);
      assert.equal(store.lockWaits?.timeouts, 3);
      assert.equal(await count(store.db), 1, "reads still run");
      other.exec("rollback");
      await store.db.transaction().execute((trx) => sql`update t set n = 4`.execute(trx));
      assert.deepEqual(await typed(store.db).selectFrom("t").select("n").execute(), [{ n: 4 }]);
    } finally {
      if (other.inTransaction) other.exec("rollback");
      other.close();
      await store.close();
    }
  });
});
