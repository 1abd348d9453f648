// Batched side effects of the read-only hot path (D7): last-used stamps of API keys, last-seen and
// last-validated stamps of devices, per-license hourly counts of successful validate/check calls,
// and recorded runtime denials. They are collected in memory and written together every few seconds
// (and on shutdown), so a validation costs no write of its own.
import { sql } from "kysely";
import { type EventInput, recordEvent } from "../store/audit-events.js";
import type { Store, Tx } from "../store/db.js";
import { hourStart } from "../store/runtime-call-counts.js";
import type { RuntimeCallCountsTable } from "../store/schema.js";

export interface DeviceStamp {
  seenAt: number;
  validatedAt: number | null;
  ip: string | null;
}

export type CountedOperation = RuntimeCallCountsTable["operation"];

interface CallCount {
  licenseId: string;
  hourStart: number;
  operation: CountedOperation;
  calls: number;
}

/** Distinct (license, hour, operation) keys held before a flush is started early (nothing is dropped). */
const DEFAULT_MAX_COUNT_KEYS = 10_000;
/** Stamps or events per flush transaction: short enough that requests run between chunks. */
const FLUSH_CHUNK = 250;
/** Rows per multi-row upsert: 4 parameters each, far below either engine's parameter limit. */
const COUNT_ROWS_PER_STATEMENT = 500;

/** Flush order of counts: two processes upserting the same counts lock them in the same order (no deadlock). */
function countOrder(a: CallCount, b: CallCount): number {
  if (a.licenseId !== b.licenseId) return a.licenseId < b.licenseId ? -1 : 1;
  if (a.hourStart !== b.hourStart) return a.hourStart - b.hourStart;
  return a.operation < b.operation ? -1 : a.operation > b.operation ? 1 : 0;
}

export class SideEffects {
  #apiKeys = new Map<string, number>();
  #devices = new Map<string, DeviceStamp>();
  #events: EventInput[] = [];
  /** Per license (its id string is the cached row's, so the lookup is cheap): its few (hour, operation) counts. */
  #counts = new Map<string, CallCount[]>();
  #countKeys = 0;
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;

  readonly #maxCountKeys: number;

  constructor(
    private readonly store: Store,
    private readonly onFlush: (result: "ok" | "error", err?: unknown) => void = () => {},
    opts: { maxCountKeys?: number } = {},
  ) {
    this.#maxCountKeys = opts.maxCountKeys ?? DEFAULT_MAX_COUNT_KEYS;
  }

  apiKeyUsed(id: string, at: number): void {
    const prev = this.#apiKeys.get(id);
    if (prev === undefined || prev < at) this.#apiKeys.set(id, at);
  }

  deviceSeen(id: string, at: number, validated: boolean, ip: string | null): void {
    const prev = this.#devices.get(id);
    if (prev === undefined) {
      this.#devices.set(id, { seenAt: at, validatedAt: validated ? at : null, ip });
      return;
    }
    // The address goes with the newest sighting (stamps of one device may arrive out of order).
    if (at >= prev.seenAt) {
      prev.seenAt = at;
      prev.ip = ip ?? prev.ip;
    } else if (prev.ip === null) prev.ip = ip;
    if (validated && (prev.validatedAt === null || prev.validatedAt < at)) prev.validatedAt = at;
  }

  /** One successful runtime call of `operation` on the license at `at`, added to its UTC hour's count. */
  callCounted(licenseId: string, operation: CountedOperation, at: number, calls = 1): void {
    const hour = hourStart(at);
    const list = this.#counts.get(licenseId);
    if (list === undefined) {
      // The usual case between two flushes: the license's first call. A one-element literal, not an
      // empty array grown by push (which allocates room for 16).
      this.#counts.set(licenseId, [{ licenseId, hourStart: hour, operation, calls }]);
    } else {
      for (const c of list) {
        if (c.hourStart === hour && c.operation === operation) {
          c.calls += calls;
          return;
        }
      }
      list.push({ licenseId, hourStart: hour, operation, calls });
    }
    this.#countKeys += 1;
    // Bounded like the events buffer, but counts are never dropped: past the cap, write them now.
    if (this.#countKeys >= this.#maxCountKeys && !this.#flushing) void this.flush();
  }

  event(e: EventInput): void {
    // Bounded: a flood of denials must not grow memory without limit between flushes.
    if (this.#events.length < 10_000) this.#events.push(e);
  }

  get pending(): number {
    return this.#apiKeys.size + this.#devices.size + this.#events.length + this.#countKeys;
  }

  start(intervalMs: number): void {
    this.stop();
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Writes everything collected so far. Concurrent calls share one flush. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.pending === 0) return;
    this.#flushing = this.#write().finally(() => {
      this.#flushing = null;
    });
    await this.#flushing;
  }

  /**
   * Writes what was collected in chunks, one short transaction each, yielding to the event loop
   * between them: better-sqlite3 runs statements synchronously, so one transaction holding thousands
   * of stamps would stall every request for its whole duration. A chunk that fails is put back, with
   * every chunk after it, for the next flush; chunks already committed stay written (each item is
   * written exactly once either way).
   */
  async #write(): Promise<void> {
    const chunks = this.#takeChunks();
    for (let i = 0; i < chunks.length; i++) {
      try {
        await this.store.db.transaction().execute((trx) => chunks[i]!.write(trx));
      } catch (err) {
        for (const c of chunks.slice(i)) c.putBack();
        this.onFlush("error", err);
        return;
      }
      if (i < chunks.length - 1) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.onFlush("ok");
  }

  /** Empties the buffers into chunks of at most FLUSH_CHUNK items, each able to write or put itself back. */
  #takeChunks(): FlushChunk[] {
    const apiKeys = [...this.#apiKeys];
    const devices = [...this.#devices];
    const events = this.#events;
    const counts = [...this.#counts.values()].flat().sort(countOrder);
    this.#apiKeys = new Map();
    this.#devices = new Map();
    this.#events = [];
    this.#counts = new Map();
    this.#countKeys = 0;
    const chunks: FlushChunk[] = [];
    for (const part of slices(apiKeys, FLUSH_CHUNK)) {
      chunks.push({
        write: (trx) => writeApiKeyStamps(trx, part),
        putBack: () => {
          for (const [id, at] of part) this.apiKeyUsed(id, at);
        },
      });
    }
    for (const part of slices(devices, FLUSH_CHUNK)) {
      chunks.push({
        write: (trx) => writeDeviceStamps(trx, part),
        // Newest wins when put back next to stamps that arrived meanwhile.
        putBack: () => {
          for (const [id, st] of part) {
            this.deviceSeen(id, st.seenAt, false, st.ip);
            if (st.validatedAt !== null) this.deviceSeen(id, st.validatedAt, true, st.ip);
          }
        },
      });
    }
    for (const part of slices(counts, COUNT_ROWS_PER_STATEMENT)) {
      chunks.push({
        write: (trx) => addCallCounts(trx, part),
        // Added back to whatever arrived meanwhile (the failed transaction wrote none of them).
        putBack: () => {
          for (const c of part) this.callCounted(c.licenseId, c.operation, c.hourStart, c.calls);
        },
      });
    }
    for (const part of slices(events, FLUSH_CHUNK)) {
      chunks.push({
        write: async (trx) => {
          for (const e of part) await recordEvent(trx, e);
        },
        putBack: () => {
          for (const e of part) this.event(e);
        },
      });
    }
    return chunks;
  }
}

interface FlushChunk {
  write(trx: Tx): Promise<void>;
  putBack(): void;
}

function* slices<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

async function writeApiKeyStamps(trx: Tx, stamps: [string, number][]): Promise<void> {
  for (const [id, at] of stamps) {
    await trx
      .updateTable("api_keys")
      .set({ last_used_at: at })
      .where("id", "=", id)
      .where((eb) => eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<", at)]))
      .execute();
  }
}

/**
 * Writes a chunk of device stamps with one UPDATE … FROM a VALUES list (SQLite ≥ 3.33 and
 * PostgreSQL), newest wins per column. One statement per chunk, not per device: the flush of a busy
 * process holds thousands of stamps, and on SQLite every statement runs on the event loop.
 * Each device row is updated at most once per transaction (its id appears once in the chunk) and in
 * id order: on PostgreSQL a second UPDATE of a row this transaction already updated would re-run
 * the foreign-key check (FOR KEY SHARE on the license row), which waits for a runtime transaction
 * holding that license FOR UPDATE while it waits for this device row — a deadlock (seen in
 * `npm run soak`). Column references in SET read the old values on both engines.
 * The `id IN (SELECT id FROM v)` is for SQLite's planner: with only the join condition it scans
 * the whole devices table against an automatic index on v once the list is long (250 rows took
 * 200 ms at 1,000,000 devices); the IN list makes it look each device up by its primary key.
 */
async function writeDeviceStamps(trx: Tx, stamps: [string, DeviceStamp][]): Promise<void> {
  if (stamps.length === 0) return;
  await deviceStampsStatement(stamps).execute(trx);
}

/** The statement writeDeviceStamps runs (exported for the query-plan test). */
export function deviceStampsStatement(stamps: [string, DeviceStamp][]) {
  const sorted = [...stamps].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const rows = sorted.map(
    ([id, s]) => sql`(CAST(${id} AS TEXT), CAST(${s.seenAt} AS BIGINT), CAST(${s.validatedAt} AS BIGINT), CAST(${s.ip} AS TEXT))`,
  );
  return sql`WITH v(id, seen, validated, ip) AS (VALUES ${sql.join(rows)})
UPDATE devices SET
  last_seen_at = CASE WHEN devices.last_seen_at < v.seen THEN v.seen ELSE devices.last_seen_at END,
  ip_address = CASE WHEN v.ip IS NOT NULL AND devices.last_seen_at < v.seen THEN v.ip ELSE devices.ip_address END,
  last_validated_at = CASE WHEN v.validated IS NOT NULL AND (devices.last_validated_at IS NULL OR devices.last_validated_at < v.validated)
    THEN v.validated ELSE devices.last_validated_at END
FROM v
WHERE devices.id IN (SELECT id FROM v) AND devices.id = v.id
  AND (devices.last_seen_at < v.seen OR (v.validated IS NOT NULL AND (devices.last_validated_at IS NULL OR devices.last_validated_at < v.validated)))`;
}

/**
 * Adds counts (one statement of at most COUNT_ROWS_PER_STATEMENT rows) to runtime_call_counts: a
 * multi-row upsert that adds to an existing row, so flushes of several processes on one database
 * sum up.
 */
async function addCallCounts(trx: Tx, counts: CallCount[]): Promise<void> {
  if (counts.length === 0) return;
  await trx
    .insertInto("runtime_call_counts")
    .values(counts.map((c) => ({ license_id: c.licenseId, hour_start: c.hourStart, operation: c.operation, calls: c.calls })))
    .onConflict((oc) =>
      oc.columns(["license_id", "hour_start", "operation"]).doUpdateSet((eb) => ({ calls: eb("runtime_call_counts.calls", "+", eb.ref("excluded.calls")) })),
    )
    .execute();
}
