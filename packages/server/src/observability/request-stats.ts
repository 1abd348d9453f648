// Per-minute request statistics for the operations view (GET /api/v1/ops/summary). Every answer is
// counted in memory under (UTC minute, surface, operation, status, code, latency bucket) — one Map
// increment on the hot path — and the counts are added to `ops_request_minutes` every few seconds
// with an additive upsert, so the rows of every process on one database sum up to the cluster's
// traffic. Rows older than RETENTION_MS are purged.
import type { Clock } from "../clock.js";
import type { Store, Tx } from "../store/db.js";
import type { OpsRequestMinutesTable } from "../store/schema.js";

export type Surface = OpsRequestMinutesTable["surface"];
export const SURFACES: readonly Surface[] = ["management", "runtime", "system"];

/**
 * Upper bounds (milliseconds) of the latency buckets; `latency_bucket` is an index into this list.
 * The last bucket also holds every answer slower than its bound.
 */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000] as const;

/** Code recorded for an idempotent replay (the stored answer is not counted again under its own code). */
export const REPLAY_CODE = "replay";

/** How long per-minute rows are kept. */
export const RETENTION_MS = 8 * 86_400_000;
const PURGE_EVERY_MS = 10 * 60_000;
/** Distinct keys held before a flush is started early. */
const EARLY_FLUSH_KEYS = 10_000;
/** Distinct keys held at most (while the database is unreachable); counts for new keys past it are dropped. */
const MAX_KEYS = 200_000;
/** Rows per upsert statement: 7 parameters each, far below either engine's parameter limit. */
const ROWS_PER_STATEMENT = 500;

export const MINUTE_MS = 60_000;

export function minuteStart(ms: number): number {
  return Math.floor(ms / MINUTE_MS) * MINUTE_MS;
}

export function latencyBucket(ms: number): number {
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) if (ms <= LATENCY_BUCKETS_MS[i]!) return i;
  return LATENCY_BUCKETS_MS.length - 1;
}

interface MinuteCount {
  minute_start: number;
  surface: Surface;
  operation: string;
  status: number;
  code: string;
  latency_bucket: number;
  count: number;
}

export class RequestStats {
  #counts = new Map<string, MinuteCount>();
  #flushing: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #lastPurge = 0;
  /** Counts dropped because MAX_KEYS was reached (the database was unreachable for long). */
  dropped = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Counts one answer. `code` is the error code, '' on success, REPLAY_CODE for a replay. */
  record(surface: Surface, operation: string, status: number, code: string, latencyMs: number): void {
    const minute = minuteStart(this.clock.now());
    const bucket = latencyBucket(latencyMs);
    const key = `${minute}\u0000${surface}\u0000${operation}\u0000${status}\u0000${code}\u0000${bucket}`;
    const prev = this.#counts.get(key);
    if (prev) {
      prev.count += 1;
      return;
    }
    if (this.#counts.size >= MAX_KEYS) {
      this.dropped += 1;
      return;
    }
    this.#counts.set(key, { minute_start: minute, surface, operation, status, code, latency_bucket: bucket, count: 1 });
    if (this.#counts.size >= EARLY_FLUSH_KEYS && !this.#flushing) void this.flush().catch(() => {});
  }

  get pending(): number {
    return this.#counts.size;
  }

  /** Flushes every `intervalMs` (and purges old rows every few minutes) until stop(). */
  start(intervalMs: number, onError: (err: unknown, what: "flush" | "purge") => void = () => {}): void {
    this.stop();
    this.#timer = setInterval(() => {
      this.flush().catch((err) => onError(err, "flush"));
      const now = this.clock.now();
      if (now - this.#lastPurge >= PURGE_EVERY_MS) {
        this.#lastPurge = now;
        this.purge().catch((err) => onError(err, "purge"));
      }
    }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /**
   * Adds everything counted so far to ops_request_minutes. Concurrent calls share one flush. A
   * statement that fails puts its rows and every later one back (added to what arrived meanwhile)
   * and rejects; rows already committed stay written, so each count is written exactly once.
   */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing.catch(() => {});
    if (this.#counts.size === 0) return;
    this.#flushing = this.#write().finally(() => {
      this.#flushing = null;
    });
    await this.#flushing;
  }

  /** Deletes rows older than the retention; returns how many. */
  async purge(): Promise<number> {
    const res = await this.store.db
      .deleteFrom("ops_request_minutes")
      .where("minute_start", "<", this.clock.now() - RETENTION_MS)
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  async #write(): Promise<void> {
    // Key order, so two processes upserting the same rows lock them in the same order (no deadlock).
    const rows = [...this.#counts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, c]) => c);
    this.#counts = new Map();
    for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
      const part = rows.slice(i, i + ROWS_PER_STATEMENT);
      try {
        await this.store.db.transaction().execute((trx) => addMinuteCounts(trx, part));
      } catch (err) {
        for (const c of rows.slice(i)) this.#addBack(c);
        throw err;
      }
      if (i + ROWS_PER_STATEMENT < rows.length) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  #addBack(c: MinuteCount): void {
    const key = `${c.minute_start}\u0000${c.surface}\u0000${c.operation}\u0000${c.status}\u0000${c.code}\u0000${c.latency_bucket}`;
    const prev = this.#counts.get(key);
    if (prev) prev.count += c.count;
    else if (this.#counts.size < MAX_KEYS) this.#counts.set(key, { ...c });
    else this.dropped += c.count;
  }
}

async function addMinuteCounts(trx: Tx, rows: MinuteCount[]): Promise<void> {
  await trx
    .insertInto("ops_request_minutes")
    .values(rows)
    .onConflict((oc) =>
      oc
        .columns(["minute_start", "surface", "operation", "status", "code", "latency_bucket"])
        .doUpdateSet((eb) => ({ count: eb("ops_request_minutes.count", "+", eb.ref("excluded.count")) })),
    )
    .execute();
}
