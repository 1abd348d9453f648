// The purges of the two tables that lost a time index on SQLite (migration 0007), on both engines:
// - the runtime change feed (purgeRuntimeChanges): rows stamped before the cutoff go, later ones
//   stay; on SQLite it cuts by seq at the first row to keep, so a row stamped out of seq order is
//   kept rather than a newer one lost;
// - idempotency records (purgeExpiredIdempotencyRecords): completed records past retention go,
//   retained and unfinished ones stay; on SQLite it cuts by rowid at the first retained record.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CompiledQuery } from "kysely";
import { ManualClock } from "../src/clock.js";
import { purgeExpiredIdempotencyRecords } from "../src/jobs/idempotency-purge.js";
import { purgeRuntimeChanges } from "../src/jobs/runtime-invalidation.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, startHarness } from "./helpers/harness.js";

for (const engine of ENGINES) {
  describe(`purges [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => h?.close());

    const db = () => h.lk.store.db;
    /** Replaces the feed with rows stamped at these times (in seq order); returns their seqs. */
    async function feed(stamps: number[]): Promise<number[]> {
      await db().deleteFrom("runtime_changes").execute();
      const seqs: number[] = [];
      for (const at of stamps) {
        const r = await db().insertInto("runtime_changes").values({ scope: "license", license_id: `lic-${at}`, created_at: at }).returning("seq").executeTakeFirstOrThrow();
        seqs.push(Number(r.seq));
      }
      return seqs;
    }
    const left = async () => (await db().selectFrom("runtime_changes").select("seq").orderBy("seq").execute()).map((r) => Number(r.seq));

    it("drops the rows before the cutoff and keeps the rest", async () => {
      const seqs = await feed([1_000, 2_000, 3_000, 4_000, 5_000]);
      assert.equal(await purgeRuntimeChanges(h.lk.store, 3_000), 2);
      assert.deepEqual(await left(), seqs.slice(2));
      assert.equal(await purgeRuntimeChanges(h.lk.store, 3_000), 0, "nothing more to drop");
    });

    it("drops every row when all are older than the cutoff, and nothing from an empty feed", async () => {
      await feed([1_000, 2_000]);
      assert.equal(await purgeRuntimeChanges(h.lk.store, 10_000), 2);
      assert.deepEqual(await left(), []);
      assert.equal(await purgeRuntimeChanges(h.lk.store, 10_000), 0);
    });

    it("never drops a row stamped at or after the cutoff, even one out of seq order", async () => {
      const seqs = await feed([1_000, 6_000, 2_000, 7_000]);
      const dropped = await purgeRuntimeChanges(h.lk.store, 5_000);
      const kept = await left();
      assert.ok(kept.includes(seqs[1]!) && kept.includes(seqs[3]!), `rows at 6,000 and 7,000 stay: ${kept}`);
      assert.ok(!kept.includes(seqs[0]!), "the first row, older than the cutoff, goes");
      // PostgreSQL drops the row at 2,000 too; SQLite keeps it until a later purge passes it
      assert.equal(dropped, engine === "postgres" ? 2 : 1);
    });

    /** Replaces the idempotency records with these, in insertion order; returns their ids. */
    async function records(rows: { state: "completed" | "in_progress"; expiresAt: number }[]): Promise<string[]> {
      await db().deleteFrom("idempotency_records").execute();
      const ids = rows.map((_, i) => `rec-${i}`);
      for (const [i, r] of rows.entries()) {
        await db()
          .insertInto("idempotency_records")
          .values({ id: ids[i]!, credential_id: "cred", request_hash: "h", state: r.state, response_status: 200, response_body: "x", created_at: 0, expires_at: r.expiresAt })
          .execute();
      }
      return ids;
    }
    const recordsLeft = async () => (await db().selectFrom("idempotency_records").select("id").orderBy("id").execute()).map((r) => r.id);
    const purgeRecordsAt = (now: number) => purgeExpiredIdempotencyRecords(h.lk.store, new ManualClock(now));

    it("idempotency: completed records past retention go; retained and unfinished ones stay", async () => {
      const ids = await records([
        { state: "completed", expiresAt: 1_000 },
        { state: "in_progress", expiresAt: 500 },
        { state: "completed", expiresAt: 2_000 },
        { state: "completed", expiresAt: 9_000 },
        { state: "completed", expiresAt: 9_500 },
      ]);
      assert.equal(await purgeRecordsAt(5_000), 2);
      assert.deepEqual(await recordsLeft(), [ids[1], ids[3], ids[4]], "the abandoned claim is not purged, and does not stop the purge");
      assert.equal(await purgeRecordsAt(9_000), 1, "expiry at the instant counts as past");
      assert.equal(await purgeRecordsAt(100_000), 1);
      assert.deepEqual(await recordsLeft(), [ids[1]]);
    });

    it("idempotency: a retained record is never purged, even one out of insertion order", async () => {
      const ids = await records([
        { state: "completed", expiresAt: 1_000 },
        { state: "completed", expiresAt: 8_000 },
        { state: "completed", expiresAt: 2_000 },
      ]);
      const dropped = await purgeRecordsAt(5_000);
      const kept = await recordsLeft();
      assert.ok(kept.includes(ids[1]!) && !kept.includes(ids[0]!), kept.join(", "));
      // PostgreSQL drops the record at 2,000 too; SQLite keeps it until a later purge passes it
      assert.equal(dropped, engine === "postgres" ? 2 : 1);
    });

    it(engine === "sqlite" ? "SQLite: neither table carries its time index, and the purges do not sort" : "PostgreSQL: both tables keep their time indexes", async () => {
      const indexNames = async (table: string) =>
        engine === "sqlite"
          ? (await db().selectFrom("sqlite_master" as never).select("name" as never).where("type" as never, "=", "index" as never).where("tbl_name" as never, "=", table as never).execute()).map((r) => (r as { name: string }).name)
          : (await db().selectFrom("pg_indexes" as never).select("indexname" as never).where("tablename" as never, "=", table as never).execute()).map((r) => (r as { indexname: string }).indexname);
      const feedIndexes = await indexNames("runtime_changes");
      const recordIndexes = await indexNames("idempotency_records");
      assert.equal(feedIndexes.includes("runtime_changes_created"), engine === "postgres", feedIndexes.join(", "));
      assert.equal(recordIndexes.includes("idempotency_expires"), engine === "postgres", recordIndexes.join(", "));
      if (engine !== "sqlite") return;
      // the reads that find where to cut walk the table in its own order: no temporary b-tree to sort
      for (const q of [
        "select seq from runtime_changes where created_at >= 1 order by seq limit 1",
        "select rowid as at from idempotency_records where expires_at > 1 order by rowid limit 1",
        "delete from idempotency_records where state = 'completed' and expires_at <= 1 and rowid < 5",
      ]) {
        const plan = (await h.lk.store.db.executeQuery<{ detail: string }>(CompiledQuery.raw(`EXPLAIN QUERY PLAN ${q}`))).rows.map((r) => r.detail).join(" | ");
        assert.doesNotMatch(plan, /TEMP B-TREE/, `${q}: ${plan}`);
        if (q.startsWith("delete")) assert.match(plan, /rowid<\?/, `${q}: ${plan}`);
      }
    });
  });
}
