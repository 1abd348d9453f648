// Queries compiled once and run with new arguments (store/prepared.ts): the same rows as the
// builder for different arguments on both engines, constants of the query (a LIMIT) kept, an
// argument used twice filled twice, a mistake in the definition refused, and a handle with a
// plugin compiling every time so the plugin sees every query.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { prepare } from "../src/store/prepared.js";
import { CountingPlugin } from "./helpers/counting-plugin.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";

for (const engine of ENGINES) {
  describe(`prepared queries [${engine}]`, () => {
    let h: Harness;
    let ids: string[];
    before(async () => {
      h = await startHarness(engine);
      ids = [];
      for (let i = 0; i < 3; i++) ids.push((await issueLicense(h)).licenseId);
    });
    after(async () => h?.close());

    const byId = prepare(1, (q, id: string) => q.selectFrom("licenses").selectAll().where("id", "=", id));
    const eitherWithLimit = prepare(2, (q, a: string, b: string) =>
      q.selectFrom("licenses").select("id").where((eb) => eb.or([eb("id", "=", a), eb("id", "=", b)])).orderBy("id").limit(1),
    );
    const sameTwice = prepare(1, (q, id: string) => q.selectFrom("licenses").select("id").where("id", "=", id).where("key_prefix", "is not", null).where("id", "<=", id));

    it("gives the builder's rows for each new argument", async () => {
      const db = h.lk.store.db;
      for (const id of ids) {
        assert.deepEqual(await byId.first(db, id), await db.selectFrom("licenses").selectAll().where("id", "=", id).executeTakeFirst());
      }
      assert.equal(await byId.first(db, "lic_nothing"), undefined);
      // inside a transaction too (same dialect, compiled once)
      await db.transaction().execute(async (trx) => assert.equal((await byId.first(trx, ids[1]!))?.id, ids[1]));
    });

    it("keeps the query's own parameters and fills an argument wherever it appears", async () => {
      const db = h.lk.store.db;
      const sorted = [...ids].sort();
      assert.deepEqual(await eitherWithLimit.execute(db, sorted[2]!, sorted[1]!), [{ id: sorted[1] }], "LIMIT 1 still applies");
      assert.deepEqual(await eitherWithLimit.execute(db, sorted[0]!, "lic_nothing"), [{ id: sorted[0] }]);
      assert.equal((await sameTwice.first(db, ids[0]!))?.id, ids[0]);
    });

    it("refuses an argument that does not become a parameter", async () => {
      const wrong = prepare(1, (q, _unused: string) => q.selectFrom("licenses").select("id").limit(1));
      await assert.rejects(wrong.execute(h.lk.store.db, "x"), /argument 0 is not a parameter/);
    });

    it("a handle with a plugin compiles every time, so the plugin sees every query", async () => {
      const plugin = new CountingPlugin();
      const db = h.lk.store.db.withPlugin(plugin);
      await byId.first(db, ids[0]!);
      await byId.first(db, ids[1]!);
      assert.equal(plugin.seen, 2);
    });
  });
}
