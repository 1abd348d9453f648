// D7: successful validate/check calls are no audit events; they are counted per license, UTC hour and
// operation in memory and added to runtime_call_counts by the batched side-effect flush (an upsert,
// so flushes and processes add up). Denials are not counted (they are recorded as events).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/app.js";
import { MINUTE_MS } from "../src/clock.js";
import { SideEffects } from "../src/jobs/side-effects.js";
import { createServices, type Services } from "../src/services.js";
import type { Store, Tx } from "../src/store/db.js";
import { callCountsFor, hourStart } from "../src/store/runtime-call-counts.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, listen, postRuntime, startHarness } from "./helpers/harness.js";
import { type PublicKeyEntry, sdkVerify } from "./helpers/verify.js";

const HOUR_MS = 3_600_000;

for (const engine of ENGINES) {
  describe(`runtime call counters (D7) [${engine}]`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(engine);
    });
    after(async () => h?.close());

    let idem = 0;
    const runtime = (op: "activate" | "validate" | "check", key: string, fingerprint: string) =>
      h.request({ url: `/api/v1/license/${op}`, licenseKey: key, body: { fingerprint }, ...(op === "activate" ? { idempotencyKey: `rcc-${engine}-${++idem}` } : {}) });
    const validate = (key: string, fingerprint: string) => runtime("validate", key, fingerprint);
    const check = (key: string, fingerprint: string) => runtime("check", key, fingerprint);
    const keys = async (): Promise<PublicKeyEntry[]> => (await h.request({ url: "/api/v1/system/public-keys", token: null })).json.data;
    const countRows = (licenseId: string) =>
      h.lk.store.db.selectFrom("runtime_call_counts").selectAll().where("license_id", "=", licenseId).orderBy("hour_start").orderBy("operation").execute();
    const counts = async (licenseId: string) =>
      (await countRows(licenseId)).map((r) => ({ hour_start: Number(r.hour_start), operation: r.operation, calls: Number(r.calls) }));
    const events = (licenseId: string) => h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", licenseId).orderBy("sequence").execute();
    /** A license with one device bound by an explicit activation, so later validates are read-only. */
    const boundLicense = async (fingerprint: string, policy: Record<string, unknown> = {}) => {
      const lic = await issueLicense(h, { max_activations: 2, ...policy });
      const act = await runtime("activate", lic.key, fingerprint);
      assert.equal(act.status, 200, act.text);
      return lic;
    };
    /** Moves the clock forward to `minutes` past the start of a later hour. */
    const toNextHour = (minutes: number) => h.clock.set(hourStart(h.clock.now()) + HOUR_MS + minutes * MINUTE_MS);

    it("30 validations and 5 checks write no audit rows; after the flush the hour holds 30 and 5", async () => {
      toNextHour(20);
      const lic = await boundLicense("fp-30");
      const eventsBefore = (await events(lic.licenseId)).map((e) => e.event_type);
      assert.deepEqual(eventsBefore, ["license.created", "license.activated"]);

      const hour = hourStart(h.clock.now());
      for (let i = 0; i < 30; i++) {
        const r = await validate(lic.key, "fp-30");
        assert.equal(r.status, 200, r.text);
        h.clock.advance(1000);
      }
      for (let i = 0; i < 5; i++) {
        const r = await check(lic.key, "fp-30");
        assert.equal(r.status, 200, r.text);
        if (i === 0) assert.equal(await sdkVerify(r.json, await keys()), true);
      }
      // The hot path wrote nothing: no counter row and no event yet.
      assert.deepEqual(await counts(lic.licenseId), []);
      assert.ok(h.lk.sideEffects.pending > 0);

      await h.lk.sideEffects.flush();
      assert.deepEqual(await counts(lic.licenseId), [
        { hour_start: hour, operation: "check", calls: 5 },
        { hour_start: hour, operation: "validate", calls: 30 },
      ]);
      assert.equal(new Date(hour).toISOString().slice(13), ":00:00.000Z", "the start of a UTC hour");
      assert.deepEqual(
        (await events(lic.licenseId)).map((e) => e.event_type),
        eventsBefore,
        "successful validate/check calls are not audit events",
      );
      // The read function answers the same.
      assert.deepEqual(await callCountsFor(h.lk.store.db, lic.licenseId, hour, hour + HOUR_MS), [
        { hour_start: hour, operation: "check", calls: 5 },
        { hour_start: hour, operation: "validate", calls: 30 },
      ]);
      assert.equal(h.lk.sideEffects.pending, 0);
    });

    it("calls on both sides of an hour boundary land in two rows; callCountsFor selects hours by range", async () => {
      toNextHour(0);
      const lic = await boundLicense("fp-edge");
      const second = hourStart(h.clock.now()) + HOUR_MS;
      h.clock.set(second - 1);
      const first = hourStart(h.clock.now());
      assert.equal(first, second - HOUR_MS);
      assert.equal((await validate(lic.key, "fp-edge")).status, 200);
      assert.equal((await validate(lic.key, "fp-edge")).status, 200);
      h.clock.advance(1);
      assert.equal((await validate(lic.key, "fp-edge")).status, 200);
      assert.equal((await validate(lic.key, "fp-edge")).status, 200);
      assert.equal((await validate(lic.key, "fp-edge")).status, 200);
      assert.equal((await check(lic.key, "fp-edge")).status, 200);
      await h.lk.sideEffects.flush();

      assert.deepEqual(await counts(lic.licenseId), [
        { hour_start: first, operation: "validate", calls: 2 },
        { hour_start: second, operation: "check", calls: 1 },
        { hour_start: second, operation: "validate", calls: 3 },
      ]);
      const read = (from: number, to: number) => callCountsFor(h.lk.store.db, lic.licenseId, from, to);
      assert.deepEqual(await read(first, second), [{ hour_start: first, operation: "validate", calls: 2 }]);
      // A range starting inside an hour includes that hour; `to` is exclusive.
      assert.deepEqual(
        (await read(first + 30 * MINUTE_MS, second + 1)).map((r) => r.hour_start),
        [first, second, second],
      );
      assert.deepEqual(await read(second, second + HOUR_MS), [
        { hour_start: second, operation: "check", calls: 1 },
        { hour_start: second, operation: "validate", calls: 3 },
      ]);
      assert.deepEqual(await read(second + HOUR_MS, second + 5 * HOUR_MS), []);
      // Another license's counts are its own.
      const other = await issueLicense(h);
      assert.deepEqual(await callCountsFor(h.lk.store.db, other.licenseId, first, second + HOUR_MS), []);
    });

    it("two flushes of the same hour add up (upsert), they do not overwrite", async () => {
      toNextHour(5);
      const lic = await boundLicense("fp-twice");
      for (let i = 0; i < 4; i++) assert.equal((await validate(lic.key, "fp-twice")).status, 200);
      await h.lk.sideEffects.flush();
      assert.deepEqual(
        (await counts(lic.licenseId)).map((r) => [r.operation, r.calls]),
        [["validate", 4]],
      );
      h.clock.advance(10 * MINUTE_MS);
      for (let i = 0; i < 3; i++) assert.equal((await validate(lic.key, "fp-twice")).status, 200);
      assert.equal((await check(lic.key, "fp-twice")).status, 200);
      await h.lk.sideEffects.flush();
      assert.deepEqual(
        (await counts(lic.licenseId)).map((r) => [r.operation, r.calls]),
        [
          ["check", 1],
          ["validate", 7],
        ],
      );
      // A flush with nothing new changes nothing.
      await h.lk.sideEffects.flush();
      assert.equal((await counts(lic.licenseId)).find((r) => r.operation === "validate")?.calls, 7);
    });

    it("a validate that binds the device implicitly counts as a successful validate", async () => {
      toNextHour(10);
      const lic = await issueLicense(h, { max_activations: 1 });
      const r = await validate(lic.key, "fp-implicit");
      assert.equal(r.status, 200, r.text);
      assert.equal(await sdkVerify(r.json, await keys()), true);
      await h.lk.sideEffects.flush();
      assert.deepEqual(await counts(lic.licenseId), [{ hour_start: hourStart(h.clock.now()), operation: "validate", calls: 1 }]);
      // Its one event is the activation, not the validation.
      assert.deepEqual(
        (await events(lic.licenseId)).map((e) => e.event_type),
        ["license.created", "license.activated"],
      );
    });

    it("denied validate and check calls are not counted; they are recorded as events instead", async () => {
      toNextHour(15);
      const lic = await boundLicense("fp-denied", { max_activations: 1 });
      // No free seat: the implicit binding is refused under the lock (409).
      const full = await validate(lic.key, "fp-other");
      assert.equal(full.status, 409, full.text);
      assert.equal(full.json.error.code, "ACTIVATION_LIMIT_EXCEEDED");
      // check on an unbound fingerprint (403).
      const unbound = await check(lic.key, "fp-other");
      assert.equal(unbound.status, 403, unbound.text);
      assert.equal(unbound.json.error.code, "DEVICE_NOT_ACTIVATED");
      // A suspended license (403) on the bound device.
      const s = await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/suspend` });
      assert.equal(s.status, 200, s.text);
      for (const op of [validate, check]) {
        const r = await op(lic.key, "fp-denied");
        assert.equal(r.status, 403, r.text);
        assert.equal(r.json.error.code, "LICENSE_INACTIVE");
      }
      await h.lk.sideEffects.flush();
      assert.deepEqual(await counts(lic.licenseId), []);
      const types = (await events(lic.licenseId)).map((e) => e.event_type);
      assert.equal(types.filter((t) => t === "license.activation_limit_exceeded").length, 1);
      assert.equal(types.filter((t) => t === "license.validation_denied").length, 3);

      // Reinstated, the same device counts again.
      assert.equal((await h.request({ method: "POST", url: `/api/v1/licenses/${lic.licenseId}/reinstate` })).status, 200);
      assert.equal((await validate(lic.key, "fp-denied")).status, 200);
      await h.lk.sideEffects.flush();
      assert.deepEqual(
        (await counts(lic.licenseId)).map((r) => [r.operation, r.calls]),
        [["validate", 1]],
      );
    });

    /**
     * The harness store, except that a transaction runs every statement and is then rolled back
     * (as when the commit fails) whenever `fails()` says so.
     */
    const storeFailingCommitWhen = (fails: () => boolean): Store =>
      ({
        ...h.lk.store,
        db: {
          transaction: () => ({
            execute: (fn: (trx: Tx) => Promise<unknown>) =>
              h.lk.store.db.transaction().execute(async (trx) => {
                const out = await fn(trx);
                if (fails()) throw new Error("commit failed");
                return out;
              }),
          }),
        },
      }) as unknown as Store;

    it("a failed flush loses no counts: they are written by the next flush, once", async () => {
      toNextHour(25);
      const lic = await issueLicense(h);
      const hour = hourStart(h.clock.now());
      let fail = true;
      const flaky = storeFailingCommitWhen(() => fail);
      const results: string[] = [];
      const se = new SideEffects(flaky, (result) => results.push(result));
      for (let i = 0; i < 3; i++) se.callCounted(lic.licenseId, "validate", h.clock.now());
      se.callCounted(lic.licenseId, "check", h.clock.now());
      await se.flush();
      assert.deepEqual(results, ["error"]);
      assert.deepEqual(await counts(lic.licenseId), [], "the failed transaction left nothing");
      assert.equal(se.pending, 2, "both counts are kept");

      // Calls that arrive before the retry are added to the kept counts.
      se.callCounted(lic.licenseId, "validate", h.clock.now());
      await se.flush();
      assert.deepEqual(results, ["error", "error"]);
      fail = false;
      se.callCounted(lic.licenseId, "validate", h.clock.now());
      await se.flush();
      assert.deepEqual(results, ["error", "error", "ok"]);
      assert.deepEqual(await counts(lic.licenseId), [
        { hour_start: hour, operation: "check", calls: 1 },
        { hour_start: hour, operation: "validate", calls: 5 },
      ]);
      assert.equal(se.pending, 0);
    });

    it("a large flush is written in chunks: a failing chunk keeps what committed before it and puts the rest back, once", async () => {
      toNextHour(5);
      const hour = hourStart(h.clock.now());
      // 1,200 distinct keys → three count chunks (500, 500, 200); the second transaction fails once.
      let transactions = 0;
      const flaky = storeFailingCommitWhen(() => ++transactions === 2);
      const results: string[] = [];
      const se = new SideEffects(flaky, (result) => results.push(result), { maxCountKeys: 100_000 });
      const ids = Array.from({ length: 1200 }, (_, i) => `lic_chunk${String(i).padStart(5, "0")}`);
      for (const id of ids) se.callCounted(id, "validate", h.clock.now());
      const rows = () =>
        h.lk.store.db.selectFrom("runtime_call_counts").select(["license_id", "calls"]).where("license_id", "like", "lic_chunk%").where("hour_start", "=", hour).execute();
      await se.flush();
      assert.deepEqual(results, ["error"]);
      assert.equal((await rows()).length, 500, "the first chunk committed");
      assert.equal(se.pending, 700, "the failed chunk and the one after it are kept");
      await se.flush();
      assert.deepEqual(results, ["error", "ok"]);
      const all = await rows();
      assert.equal(all.length, 1200);
      assert.ok(all.every((r) => Number(r.calls) === 1), "every count written exactly once");
      assert.equal(se.pending, 0);
    });

    it("past the cap on distinct keys the counts are flushed early, not dropped", async () => {
      toNextHour(0);
      const lic = await issueLicense(h);
      const base = hourStart(h.clock.now());
      let flushed!: () => void;
      const firstFlush = new Promise<void>((resolve) => {
        flushed = resolve;
      });
      const se = new SideEffects(h.lk.store, (result) => result === "ok" && flushed(), { maxCountKeys: 3 });
      se.callCounted(lic.licenseId, "validate", base);
      se.callCounted(lic.licenseId, "validate", base + 1);
      se.callCounted(lic.licenseId, "check", base + HOUR_MS);
      assert.equal(se.pending, 2, "under the cap nothing is written");
      // The third distinct key reaches the cap: a flush starts without anyone asking.
      se.callCounted(lic.licenseId, "validate", base + 2 * HOUR_MS);
      await firstFlush;
      assert.deepEqual(await counts(lic.licenseId), [
        { hour_start: base, operation: "validate", calls: 2 },
        { hour_start: base + HOUR_MS, operation: "check", calls: 1 },
        { hour_start: base + 2 * HOUR_MS, operation: "validate", calls: 1 },
      ]);
      assert.equal(se.pending, 0);
    });

    describe("two apps on the same database", () => {
      let second: FastifyInstance;
      let services2: Services;
      before(async () => {
        ({ services: services2 } = await createServices(h.config, { clock: h.clock }));
        second = await buildApp(services2, { logger: false });
        await second.ready();
      });
      after(async () => second?.close());

      it("parallel calls through both apps, both flushing: the rows hold the sum", async () => {
        toNextHour(30);
        const lic = await boundLicense("fp-two");
        const hour = hourStart(h.clock.now());
        const base1 = await listen(h);
        await second.listen({ host: "127.0.0.1", port: 0 });
        const addr = second.server.address();
        assert.ok(addr && typeof addr === "object");
        const base2 = `http://127.0.0.1:${addr.port}`;

        const calls = (n: number) =>
          Promise.all(
            Array.from({ length: n }, (_, i) =>
              postRuntime(i % 2 ? base1 : base2, i % 5 === 4 ? "/api/v1/license/check" : "/api/v1/license/validate", lic.key, { fingerprint: "fp-two" }),
            ),
          );
        const round1 = await calls(25);
        assert.deepEqual(
          round1.map((r) => r.status),
          Array(25).fill(200),
        );
        // Both processes hold part of the counts; on PostgreSQL they flush at the same time. (Two
        // SQLite connections in one process would wait on each other's write lock, so one by one there.)
        assert.ok(h.lk.sideEffects.pending > 0 && services2.sideEffects.pending > 0);
        const flushBoth = async () => {
          if (engine === "postgres") await Promise.all([h.lk.sideEffects.flush(), services2.sideEffects.flush()]);
          else {
            await h.lk.sideEffects.flush();
            await services2.sideEffects.flush();
          }
        };
        await flushBoth();
        assert.deepEqual(await counts(lic.licenseId), [
          { hour_start: hour, operation: "check", calls: 5 },
          { hour_start: hour, operation: "validate", calls: 20 },
        ]);

        const round2 = await calls(10);
        assert.deepEqual(
          round2.map((r) => r.status),
          Array(10).fill(200),
        );
        await flushBoth();
        assert.deepEqual(await counts(lic.licenseId), [
          { hour_start: hour, operation: "check", calls: 7 },
          { hour_start: hour, operation: "validate", calls: 28 },
        ]);
      });
    });
  });
}
