// Batched side effects of the read-only hot path (D7): last-used stamps of API keys, last-seen and
// last-validated stamps of devices, per-license hourly counts of successful validate/check calls,
// and recorded runtime denials. They are collected in memory and written together every few seconds
// (and on shutdown), so a validation costs no write of its own.
import { sql } from "kysely";
import { type EventInput, recordEvent } from "../store/audit-events.js";
import type { Store, Tx } from "../store/db.js";
import { hourStart } from "../store/runtime-call-counts.js";
import type { RuntimeCallCountsTable } from "../store/schema.js";

interface DeviceStamp {
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

/** The in-memory key of a count; it also orders the rows of a flush. */
function countKey(c: Omit<CallCount, "calls">): string {
  return `${c.licenseId} ${String(c.hourStart).padStart(16, "0")} ${c.operation}`;
}

export class SideEffects {
  #apiKeys = new Map<string, number>();
  #devices = new Map<string, DeviceStamp>();
  #events: EventInput[] = [];
  #counts = new Map<string, CallCount>();
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
    this.#devices.set(id, {
      seenAt: Math.max(prev?.seenAt ?? 0, at),
      validatedAt: validated ? Math.max(prev?.validatedAt ?? 0, at) : (prev?.validatedAt ?? null),
      ip: ip ?? prev?.ip ?? null,
    });
  }

  /** One successful runtime call of `operation` on the license at `at`, added to its UTC hour's count. */
  callCounted(licenseId: string, operation: CountedOperation, at: number): void {
    const c = { licenseId, hourStart: hourStart(at), operation, calls: 1 };
    const key = countKey(c);
    const prev = this.#counts.get(key);
    if (prev) {
      prev.calls += 1;
      return;
    }
    this.#counts.set(key, c);
    // Bounded like the events buffer, but counts are never dropped: past the cap, write them now.
    if (this.#counts.size >= this.#maxCountKeys && !this.#flushing) void this.flush();
  }

  event(e: EventInput): void {
    // Bounded: a flood of denials must not grow memory without limit between flushes.
    if (this.#events.length < 10_000) this.#events.push(e);
  }

  get pending(): number {
    return this.#apiKeys.size + this.#devices.size + this.#events.length + this.#counts.size;
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
    // Key order, so two processes upserting the same counts lock them in the same order (no deadlock).
    const counts = [...this.#counts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, c]) => c);
    this.#apiKeys = new Map();
    this.#devices = new Map();
    this.#events = [];
    this.#counts = new Map();
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
          for (const c of part) this.#addBack(c);
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

  #addBack(c: CallCount): void {
    const key = countKey(c);
    const prev = this.#counts.get(key);
    if (prev) prev.calls += c.calls;
    else this.#counts.set(key, { ...c });
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

async function writeDeviceStamps(trx: Tx, stamps: [string, DeviceStamp][]): Promise<void> {
  // One statement per device, never two: on PostgreSQL a second UPDATE of a row this transaction
  // already updated re-runs the foreign-key check (FOR KEY SHARE on the license row), which waits
  // for a runtime transaction holding that license FOR UPDATE while it waits for this device row —
  // a deadlock (seen in `npm run soak`). Column references in SET read the old values on both engines.
  for (const [id, s] of stamps) {
    const newer = sql<boolean>`last_seen_at < ${s.seenAt}`;
    const validated = s.validatedAt;
    await trx
      .updateTable("devices")
      .set({
        last_seen_at: sql<number>`CASE WHEN ${newer} THEN ${s.seenAt} ELSE last_seen_at END`,
        ...(s.ip ? { ip_address: sql<string>`CASE WHEN ${newer} THEN ${s.ip} ELSE ip_address END` } : {}),
        ...(validated !== null
          ? { last_validated_at: sql<number>`CASE WHEN last_validated_at IS NULL OR last_validated_at < ${validated} THEN ${validated} ELSE last_validated_at END` }
          : {}),
      })
      .where("id", "=", id)
      .where((eb) =>
        validated === null
          ? eb("last_seen_at", "<", s.seenAt)
          : eb.or([eb("last_seen_at", "<", s.seenAt), eb("last_validated_at", "is", null), eb("last_validated_at", "<", validated)]),
      )
      .execute();
  }
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
