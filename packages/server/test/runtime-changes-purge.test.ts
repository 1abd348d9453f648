// The runtime change feed's purge (jobs/runtime-invalidation.ts, purgeRuntimeChanges): rows stamped
// before the cutoff go, later ones stay, on both engines. On SQLite the feed has no index on
// created_at (migration 0007) and the purge cuts by seq at the first row to keep; a row stamped out
// of seq order is kept rather than a newer one lost.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { purgeRuntimeChanges } from "../src/jobs/runtime-invalidation.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, startHarness } from "./helpers/harness.js";

for (const engine of ENGINES) {
  describe(`runtime change purge [${engine}]`, () => {
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

    it(engine === "sqlite" ? "SQLite: the feed carries no index on created_at" : "PostgreSQL: the feed keeps its index on created_at", async () => {
      const indexes =
        engine === "sqlite"
          ? (await db().selectFrom("sqlite_master" as never).select("name" as never).where("type" as never, "=", "index" as never).where("tbl_name" as never, "=", "runtime_changes" as never).execute()).map((r) => (r as { name: string }).name)
          : (await db().selectFrom("pg_indexes" as never).select("indexname" as never).where("tablename" as never, "=", "runtime_changes" as never).execute()).map((r) => (r as { indexname: string }).indexname);
      assert.equal(indexes.includes("runtime_changes_created"), engine === "postgres", indexes.join(", "));
    });
  });
}
