// Keeps this process's runtime cache (cache/runtime-cache.ts) in step with the database: every
// change recorded in runtime_changes (by the triggers of migration 0006) reaches the cache within
// one second, and the cache is trusted only while that holds.
//
// - SQLite: the feed is polled every LICENSEKIT_RUNTIME_CHANGES_POLL_MS (200 ms) for rows with
//   seq > the last seen. One writer at a time means seq order is commit order, so nothing is
//   skipped. The cache is served only while a poll started within the last STALE_AFTER_MS; a
//   stalled poll makes every call read the database until the feed is caught up again.
// - PostgreSQL: a dedicated connection LISTENs on `licensekit_runtime_changes` (NOTIFY is sent by
//   the triggers and delivered at commit). The cache is trusted only while that connection is up;
//   when it drops the cache is cleared and bypassed, and it reconnects with back-off (100 ms
//   doubling to 5 s), clearing the cache again once listening. The poll runs too, as a safety net:
//   sequence values are taken before commit, so a later commit can carry a smaller seq; the poll
//   therefore also re-reads rows created in the last OVERLAP_MS (by the database's clock) and
//   skips those it has already applied.
// - This process's own writes invalidate at once, before the answer is sent (`afterWrite`): a
//   runtime write makes its license stale, a management write catches the feed up (a poll, and on
//   PostgreSQL a marker notification sent and awaited, so every notification committed before it
//   has been handled). Changes are thus often applied twice (locally, then by the feed); that only
//   costs one more miss.
// - PostgreSQL caveat: a transaction that commits more than OVERLAP_MS after its trigger ran, at a
//   moment the LISTEN connection is down, can be missed by the poll; the cache is bypassed while
//   the connection is down and cleared when it is back, so it is never served stale from that.
// - Rows older than an hour are purged (by any process; deleting twice is harmless).
import { performance } from "node:perf_hooks";
import type { FastifyReply, FastifyRequest } from "fastify";
import { sql } from "kysely";
import pg from "pg";
import type { RuntimeCache } from "../cache/runtime-cache.js";
import type { DatabaseConfig } from "../config.js";
import type { Store } from "../store/db.js";

export const NOTIFY_CHANNEL = "licensekit_runtime_changes";
/** application_name of the LISTEN connection (visible in pg_stat_activity). */
export const LISTENER_APPLICATION_NAME = "licensekit-runtime-listener";
/** A poll older than this (SQLite) stops the cache from being served; < 1 s minus a poll's run time. */
export const STALE_AFTER_MS = 750;
/** PostgreSQL: rows created this recently are read again on every poll (commit order ≠ seq order). */
export const OVERLAP_MS = 2000;
const PURGE_EVERY_MS = 5 * 60_000;
const RETAIN_MS = 60 * 60_000;
const BATCH = 5000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
/** A catch-up marker that does not come back within this is given up on (the poll already ran). */
const BARRIER_TIMEOUT_MS = 1000;

export type InvalidationErrorSink = (err: unknown, what: string) => void;

export interface InvalidationOptions {
  pollMs: number;
  /** Reports failures (poll, listen, purge); they never stop the job. */
  onError?: InvalidationErrorSink;
}

interface ChangeRow {
  seq: number;
  scope: string;
  license_id: string | null;
}

/** A request that only reads (validate/check answered without a transaction): nothing to invalidate. */
export function markReadOnly(req: FastifyRequest): void {
  req.runtimeReadOnly = true;
}

export function unmarkReadOnly(req: FastifyRequest): void {
  req.runtimeReadOnly = false;
}

export class RuntimeInvalidation {
  readonly #cache: RuntimeCache;
  readonly #store: Store;
  readonly #database: DatabaseConfig;
  readonly #opts: InvalidationOptions;
  #running = false;
  #last = 0;
  /** PostgreSQL: seqs already applied that the overlap window may return again → when seen. */
  readonly #applied = new Map<number, number>();
  #lastPollStart = Number.NEGATIVE_INFINITY;
  #polling: Promise<void> | null = null;
  #pollTimer: NodeJS.Timeout | null = null;
  #lastPurge = 0;
  // PostgreSQL listener
  #client: pg.Client | null = null;
  #listening = false;
  #backoff = BACKOFF_MIN_MS;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #barrierSeq = 0;
  readonly #barriers = new Map<string, () => void>();
  /** Backend pid of the LISTEN connection (tests terminate it). */
  listenerPid: number | null = null;
  /** Times the LISTEN connection was (re)established. */
  listens = 0;

  constructor(cache: RuntimeCache, store: Store, database: DatabaseConfig, opts: InvalidationOptions) {
    this.#cache = cache;
    this.#store = store;
    this.#database = database;
    this.#opts = { ...opts };
    cache.setTrust(() => this.live());
  }

  /** Whether every change committed more than a moment ago has reached the cache. */
  live(): boolean {
    if (!this.#running) return false;
    if (this.#store.engine === "postgres") return this.#listening;
    return performance.now() - this.#lastPollStart < STALE_AFTER_MS;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Starts the feed: reads where it ends now, then polls (and LISTENs on PostgreSQL). */
  async start(onError?: InvalidationErrorSink): Promise<void> {
    if (this.#running || this.#cache.capacity === 0) return;
    if (onError) this.#opts.onError = onError;
    this.#running = true;
    this.#cache.invalidateAll();
    try {
      const top = await this.#store.db
        .selectFrom("runtime_changes")
        .select((eb) => eb.fn.max("seq").as("top"))
        .executeTakeFirst();
      this.#last = Number(top?.top ?? 0);
      this.#lastPollStart = performance.now();
    } catch (err) {
      // The first poll then reads the whole feed (an hour at most); until it succeeds nothing is trusted.
      this.#opts.onError?.(err, "runtime change feed start");
    }
    this.#lastPurge = Date.now();
    if (this.#store.engine === "postgres") await this.#listen();
    this.#schedulePoll();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#listening = false;
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#pollTimer = null;
    this.#reconnectTimer = null;
    await this.#polling?.catch(() => {});
    const client = this.#client;
    this.#client = null;
    if (client) await client.end().catch(() => {});
    this.#cache.invalidateAll();
  }

  /**
   * onSend hook: a request that may have written invalidates before its answer leaves, so the same
   * client reading through this process next sees its own change.
   */
  afterWrite = (req: FastifyRequest, _reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void): void => {
    if (!this.#running || req.method === "GET" || req.method === "HEAD" || req.runtimeReadOnly) {
      done(null, payload);
      return;
    }
    if (req.runtime) {
      // Runtime writes change only their own license's rows.
      this.#cache.invalidateLicense(req.runtime.license.id);
    } else if (req.principal) {
      // An authenticated management write (unauthenticated requests cannot have written anything).
      // The answer leaves in every case; only the cache's state depends on how the catch-up went.
      const send = () => done(null, payload);
      this.catchUp()
        .catch((err) => {
          // The feed could not be read: drop everything rather than risk serving the old state.
          this.#cache.invalidateAll();
          this.#opts.onError?.(err, "runtime change catch-up");
        })
        .then(send, send);
      return;
    }
    done(null, payload);
  };

  /**
   * Applies every change committed so far: one poll (after any poll already running), and on
   * PostgreSQL a round trip of a marker notification, so that every notification of a transaction
   * committed before it has been handled too (NOTIFY delivers in commit order).
   */
  async catchUp(): Promise<void> {
    if (this.#polling) await this.#polling.catch(() => {});
    await this.#pollOnce();
    if (this.#listening) await this.#barrier();
  }

  async #barrier(): Promise<void> {
    const token = `!${process.pid}-${++this.#barrierSeq}`;
    const arrived = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#barriers.delete(token);
        resolve();
      }, BARRIER_TIMEOUT_MS);
      timer.unref();
      this.#barriers.set(token, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    await sql`select pg_notify(${NOTIFY_CHANNEL}, ${token})`.execute(this.#store.db);
    await arrived;
  }

  #schedulePoll(): void {
    if (!this.#running) return;
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = null;
      (this.#polling ?? this.#pollOnce())
        .catch((err) => this.#opts.onError?.(err, "runtime change poll"))
        .finally(() => this.#schedulePoll());
    }, this.#opts.pollMs);
    this.#pollTimer.unref();
  }

  #pollOnce(): Promise<void> {
    const run = this.#poll().finally(() => {
      if (this.#polling === run) this.#polling = null;
    });
    this.#polling = run;
    return run;
  }

  async #poll(): Promise<void> {
    const started = performance.now();
    const db = this.#store.db;
    let rows: ChangeRow[];
    if (this.#store.engine === "postgres") {
      // The overlap is measured on the database's clock, the one the triggers stamp rows with.
      const since = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint - ${OVERLAP_MS}`;
      rows = await db
        .selectFrom("runtime_changes")
        .select(["seq", "scope", "license_id"])
        .where((eb) => eb.or([eb("seq", ">", this.#last), eb("created_at", ">", since)]))
        .orderBy("seq")
        .limit(BATCH)
        .execute();
    } else {
      rows = await db.selectFrom("runtime_changes").select(["seq", "scope", "license_id"]).where("seq", ">", this.#last).orderBy("seq").limit(BATCH).execute();
    }
    if (rows.length < BATCH) this.#apply(rows);
    else {
      // A backlog this large: dropping everything is cheaper than applying it, and always safe.
      this.#cache.invalidateAll();
      const top = await db
        .selectFrom("runtime_changes")
        .select((eb) => eb.fn.max("seq").as("top"))
        .executeTakeFirst();
      this.#last = Math.max(this.#last, Number(top?.top ?? 0));
    }
    if (!this.#running) return;
    this.#lastPollStart = started;
    if (Date.now() - this.#lastPurge > PURGE_EVERY_MS) {
      this.#lastPurge = Date.now();
      await purgeRuntimeChanges(this.#store, Date.now() - RETAIN_MS).catch((err) => this.#opts.onError?.(err, "runtime change purge"));
    }
  }

  #apply(rows: ChangeRow[]): void {
    const now = performance.now();
    for (const r of rows) {
      const seq = Number(r.seq);
      if (this.#store.engine === "postgres") {
        if (this.#applied.has(seq)) continue;
        this.#applied.set(seq, now);
      }
      if (seq > this.#last) this.#last = seq;
      if (r.scope === "license" && r.license_id !== null) this.#cache.invalidateLicense(r.license_id);
      else this.#cache.invalidateAll();
    }
    // Applied seqs are needed only while the overlap window can still return them.
    if (this.#applied.size > 0) {
      for (const [seq, at] of this.#applied) {
        if (now - at < OVERLAP_MS * 3) break;
        this.#applied.delete(seq);
      }
    }
  }

  // ---- PostgreSQL LISTEN --------------------------------------------------------------------

  async #listen(): Promise<void> {
    if (!this.#running || this.#database.engine !== "postgres") return;
    const client = new pg.Client({ connectionString: this.#database.url, keepAlive: true, connectionTimeoutMillis: 5000, application_name: LISTENER_APPLICATION_NAME });
    this.#client = client;
    let dropped = false;
    const drop = (err?: unknown) => {
      if (dropped) return;
      dropped = true;
      this.#listening = false;
      this.listenerPid = null;
      // Notifications sent while we were away are lost: nothing cached may be trusted any more.
      this.#cache.invalidateAll();
      if (err) this.#opts.onError?.(err, "runtime change listener");
      client.end().catch(() => {});
      if (this.#client === client) this.#client = null;
      this.#scheduleReconnect();
    };
    client.on("error", (err) => drop(err));
    client.on("end", () => drop());
    client.on("notification", (msg) => {
      if (msg.channel !== NOTIFY_CHANNEL) return;
      if (msg.payload?.startsWith("!")) {
        // a catch-up marker (ours or another process's)
        this.#barriers.get(msg.payload)?.();
        this.#barriers.delete(msg.payload);
        return;
      }
      if (!msg.payload || msg.payload === "*") this.#cache.invalidateAll();
      else this.#cache.invalidateLicense(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
      const r = await client.query<{ pid: number }>("select pg_backend_pid() as pid");
      if (dropped || !this.#running) return;
      this.listenerPid = r.rows[0]?.pid ?? null;
      // Changes committed before LISTEN took effect may not have been seen: start from empty.
      this.#cache.invalidateAll();
      this.#listening = true;
      this.listens++;
      this.#backoff = BACKOFF_MIN_MS;
    } catch (err) {
      drop(err);
    }
  }

  #scheduleReconnect(): void {
    if (!this.#running || this.#reconnectTimer) return;
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, BACKOFF_MAX_MS);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      void this.#listen();
    }, delay);
    this.#reconnectTimer.unref();
  }
}

/**
 * Deletes the feed's rows stamped before `cutoff` (epoch ms); returns how many. On SQLite the feed
 * has no index on created_at (migration 0007): the rows are read in seq order up to the first one
 * to keep, and everything before it goes. Writers take turns on SQLite and each stamps its row as it
 * writes, so created_at rises with seq; a row out of that order is at worst kept until a later purge.
 */
export async function purgeRuntimeChanges(store: Store, cutoff: number): Promise<number> {
  const db = store.db;
  let del = db.deleteFrom("runtime_changes").where("created_at", "<", cutoff);
  if (store.engine === "sqlite") {
    const keep = await db.selectFrom("runtime_changes").select("seq").where("created_at", ">=", cutoff).orderBy("seq").limit(1).executeTakeFirst();
    // Without a row to keep, every row is older than the cutoff (rows written since are not).
    if (keep) del = del.where("seq", "<", keep.seq);
  }
  const res = await del.executeTakeFirst();
  return Number(res.numDeletedRows);
}
