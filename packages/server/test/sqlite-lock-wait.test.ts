// A SQLite server whose writes find another process's write lock taken (the other workers of
// `serve --workers N`, a CLI command, a second server on the file), over real HTTP: while its
// activate waits for the lock it still answers validations and management reads at once; the
// activate runs when the lock comes free; a write that waits longer than
// LICENSEKIT_SQLITE_LOCK_WAIT_MS is answered 503 SERVICE_UNAVAILABLE with Retry-After, wrote
// nothing, and its retry with the same Idempotency-Key then binds the device exactly once. The
// other process is played by a second better-sqlite3 connection holding BEGIN IMMEDIATE.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import Sqlite from "better-sqlite3";
import { type Harness, type HttpAnswer, issueLicense, listen, postRuntime, startHarness } from "./helpers/harness.js";

const LOCK_WAIT_MS = 1500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** `p`'s value, or "pending" if it has none within `ms`. */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, sleep(ms).then(() => "pending" as const)]);

describe("sqlite: a write waiting for another process's write lock", () => {
  let h: Harness;
  let base: string;
  let other: Sqlite.Database;
  let lic: Awaited<ReturnType<typeof issueLicense>>;
  let known: string;

  before(async () => {
    h = await startHarness("sqlite", { env: { LICENSEKIT_SQLITE_LOCK_WAIT_MS: String(LOCK_WAIT_MS) } });
    base = await listen(h);
    lic = await issueLicense(h, { max_activations: 5 });
    const first = await postRuntime(base, "/api/v1/license/activate", lic.key, { fingerprint: "fp-known" }, "known-1");
    assert.equal(first.status, 200, first.text);
    known = first.json.data.device_id;
    other = new Sqlite(path.join(h.db.dir, "licensekit.db"));
  });
  after(async () => {
    if (other?.inTransaction) other.exec("rollback");
    other?.close();
    await h?.close();
  });

  /** Runs `body` while the other connection holds the write lock; lets it go whatever happens. */
  const holdingLock = async (body: () => Promise<void>) => {
    other.exec("begin immediate");
    try {
      await body();
    } finally {
      if (other.inTransaction) other.exec("rollback");
    }
  };

  const devices = async () => {
    const r = await h.request({ method: "GET", url: `/api/v1/licenses/${lic.licenseId}/devices` });
    assert.equal(r.status, 200, r.text);
    return (r.json.data as { fingerprint: string }[]).map((d) => d.fingerprint).sort();
  };

  it("answers validations and management reads while its activate waits, and runs the activate once the lock is free", async () => {
    assert.equal(h.config.database.engine === "sqlite" && h.config.database.lockWaitMs, LOCK_WAIT_MS);
    let activate!: Promise<HttpAnswer>;
    await holdingLock(async () => {
      activate = postRuntime(base, "/api/v1/license/activate", lic.key, { fingerprint: "fp-waiting" }, "wait-1");
      await sleep(100);
      const t0 = performance.now();
      const validate = await postRuntime(base, "/api/v1/license/validate", lic.key, { fingerprint: "fp-known" });
      const read = await fetch(`${base}/api/v1/licenses/${lic.licenseId}`, { headers: { authorization: `Bearer ${h.env.LICENSEKIT_BOOTSTRAP_TOKEN}` } });
      const took = performance.now() - t0;
      assert.equal(validate.status, 200, validate.text);
      assert.equal(validate.json.data.license_id, lic.licenseId);
      assert.equal(validate.json.data.device_id, known);
      assert.equal(read.status, 200);
      assert.ok(took < 1000, `answered while the activate waited (${Math.round(took)} ms)`);
      assert.equal(await within(activate, 50), "pending", "the activate waits for the lock");
      other.exec("commit");
    });
    const done = await activate;
    assert.equal(done.status, 200, done.text);
    assert.deepEqual(await devices(), ["fp-known", "fp-waiting"]);
  });

  it("answers 503 SERVICE_UNAVAILABLE with Retry-After past the lock wait, writes nothing, and a retry with the same key binds once", async () => {
    let refused!: HttpAnswer;
    let waited = 0;
    await holdingLock(async () => {
      const t0 = performance.now();
      refused = await postRuntime(base, "/api/v1/license/activate", lic.key, { fingerprint: "fp-late" }, "late-1");
      waited = performance.now() - t0;
    });
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.json.error.code, "SERVICE_UNAVAILABLE");
    assert.match(refused.headers.get("retry-after") ?? "", /^\d+$/);
    assert.match(refused.json.meta.request_id, /\S/);
    assert.ok(waited >= LOCK_WAIT_MS - 50 && waited < LOCK_WAIT_MS + 3000, `waited the configured time (${Math.round(waited)} ms)`);
    assert.deepEqual(await devices(), ["fp-known", "fp-waiting"], "nothing was written");

    const retried = await postRuntime(base, "/api/v1/license/activate", lic.key, { fingerprint: "fp-late" }, "late-1");
    assert.equal(retried.status, 200, retried.text);
    assert.equal(retried.headers.get("idempotent-replayed"), null, "the 503 was not stored as the key's answer");
    const replayed = await postRuntime(base, "/api/v1/license/activate", lic.key, { fingerprint: "fp-late" }, "late-1");
    assert.equal(replayed.headers.get("idempotent-replayed"), "true");
    assert.equal(replayed.json.data.device_id, retried.json.data.device_id);
    assert.deepEqual(await devices(), ["fp-known", "fp-late", "fp-waiting"]);

    // /metrics counts the waits (a batched flush may have waited as well, hence at least).
    const metrics = await h.request({ method: "GET", url: "/metrics", token: null });
    const series = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(metrics.text)?.[1]);
    assert.ok(series('licensekit_sqlite_lock_waits_total\\{outcome="acquired"\\}') >= 1, "the first test's activate waited, then ran");
    assert.ok(series('licensekit_sqlite_lock_waits_total\\{outcome="timed_out"\\}') >= 1, "this test's activate gave up");
    assert.ok(series("licensekit_sqlite_lock_retries_total") >= 2);
  });
});
