// The batched device stamps (D7, jobs/side-effects.ts): last_seen_at, ip_address and
// last_validated_at of many devices are written by one UPDATE … FROM VALUES per chunk of the flush.
// Newest wins per column, whatever order the stamps arrived in and whatever the row already holds;
// a stamp that is not a validation leaves last_validated_at alone; the address moves only with a
// newer last_seen_at; and a flush spanning several chunks writes every device.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CompiledQuery } from "kysely";
import { type DeviceStamp, deviceStampsStatement, SideEffects } from "../src/jobs/side-effects.js";
import { deviceRow } from "./helpers/device-rows.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";

for (const engine of ENGINES) {
  describe(`batched device stamps [${engine}]`, () => {
    let h: Harness;
    let licenseId: string;
    before(async () => {
      h = await startHarness(engine);
      licenseId = (await issueLicense(h, { max_activations: 10_000 })).licenseId;
    });
    after(async () => h?.close());

    /** Inserts `n` devices with the given stamps; returns their ids. */
    async function devices(n: number, seenAt: number, validatedAt: number | null, ip: string | null): Promise<string[]> {
      const rows = Array.from({ length: n }, () => deviceRow(licenseId, seenAt, validatedAt, ip));
      for (let i = 0; i < rows.length; i += 200) await h.lk.store.db.insertInto("devices").values(rows.slice(i, i + 200)).execute();
      return rows.map((r) => r.id);
    }
    const read = async (id: string) =>
      h.lk.store.db.selectFrom("devices").select(["last_seen_at", "last_validated_at", "ip_address"]).where("id", "=", id).executeTakeFirstOrThrow();
    const plain = (r: { last_seen_at: number; last_validated_at: number | null; ip_address: string | null }) => ({
      seen: Number(r.last_seen_at),
      validated: r.last_validated_at === null ? null : Number(r.last_validated_at),
      ip: r.ip_address,
    });

    it("newest wins per column, in any arrival order, against what the row holds", async () => {
      const [older, newer, validatedOnly, untouched] = await devices(4, 5_000, 5_000, "10.0.0.1");
      const se = new SideEffects(h.lk.store);
      // arrives newest first, then an older stamp with another address: the older one loses
      se.deviceSeen(older!, 9_000, true, "10.0.0.9");
      se.deviceSeen(older!, 7_000, false, "10.0.0.7");
      // stamps older than the row: nothing moves
      se.deviceSeen(newer!, 4_000, true, "10.0.0.4");
      // a check (not a validation) newer than the row: seen and address move, validated stays
      se.deviceSeen(validatedOnly!, 8_000, false, "10.0.0.8");
      await se.flush();
      assert.deepEqual(plain(await read(older!)), { seen: 9_000, validated: 9_000, ip: "10.0.0.9" });
      assert.deepEqual(plain(await read(newer!)), { seen: 5_000, validated: 5_000, ip: "10.0.0.1" });
      assert.deepEqual(plain(await read(validatedOnly!)), { seen: 8_000, validated: 5_000, ip: "10.0.0.8" });
      assert.deepEqual(plain(await read(untouched!)), { seen: 5_000, validated: 5_000, ip: "10.0.0.1" });
    });

    it("a first validation sets last_validated_at on a row that had none; a stamp without an address keeps the row's", async () => {
      const [never, noIp] = await devices(2, 5_000, null, "10.0.0.1");
      const se = new SideEffects(h.lk.store);
      se.deviceSeen(never!, 4_000, true, "10.0.0.4"); // older seen, but the first validation
      se.deviceSeen(noIp!, 6_000, false, null);
      await se.flush();
      assert.deepEqual(plain(await read(never!)), { seen: 5_000, validated: 4_000, ip: "10.0.0.1" });
      assert.deepEqual(plain(await read(noIp!)), { seen: 6_000, validated: null, ip: "10.0.0.1" });
    });

    it("a full chunk looks each device up by its primary key (no scan of the devices table)", async (t) => {
      if (engine !== "sqlite") return t.skip("SQLite's planner only");
      const stamps: [string, DeviceStamp][] = Array.from({ length: 250 }, (_, i) => [`dev_plan_${i}`, { seenAt: 1, validatedAt: 1, ip: "10.0.0.1" }]);
      const statement = deviceStampsStatement("sqlite", stamps);
      const plan = await h.lk.store.db.executeQuery<{ detail: string }>(CompiledQuery.raw(`EXPLAIN QUERY PLAN ${statement.sql}`, statement.params));
      const details = plan.rows.map((r) => r.detail);
      assert.ok(details.some((d) => /SEARCH devices USING (COVERING )?INDEX/.test(d)), details.join(" | "));
      assert.ok(!details.some((d) => /^SCAN devices/.test(d)), details.join(" | "));
    });

    it("a flush of 1,100 devices (5 chunks) writes every one of them", async () => {
      const ids = await devices(1_100, 1_000, null, null);
      const se = new SideEffects(h.lk.store);
      for (const [i, id] of ids.entries()) se.deviceSeen(id, 2_000 + i, i % 2 === 0, `10.1.${i >> 8}.${i & 255}`);
      await se.flush();
      assert.equal(se.pending, 0);
      const rows = await h.lk.store.db
        .selectFrom("devices")
        .select(["id", "last_seen_at", "last_validated_at", "ip_address"])
        .where("id", "in", ids)
        .execute();
      const byId = new Map(rows.map((r) => [r.id, plain(r)]));
      ids.forEach((id, i) => {
        assert.deepEqual(byId.get(id), { seen: 2_000 + i, validated: i % 2 === 0 ? 2_000 + i : null, ip: `10.1.${i >> 8}.${i & 255}` }, `device ${i}`);
      });
    });
  });
}
