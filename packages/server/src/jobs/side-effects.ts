// Batched side effects of the read-only hot path (D7): last-used stamps of API keys, last-seen and
// last-validated stamps of devices, per-license hourly counts of successful validate/check calls,
// and recorded runtime denials. They are collected in memory and written together every few seconds
// (and on shutdown), so a validation costs no write of its own.
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

  async #write(): Promise<void> {
    const apiKeys = this.#apiKeys;
    const devices = this.#devices;
    const events = this.#events;
    const counts = this.#counts;
    this.#apiKeys = new Map();
    this.#devices = new Map();
    this.#events = [];
    this.#counts = new Map();
    try {
      await this.store.db.transaction().execute(async (trx) => {
        for (const [id, at] of apiKeys) {
          await trx
            .updateTable("api_keys")
            .set({ last_used_at: at })
            .where("id", "=", id)
            .where((eb) => eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<", at)]))
            .execute();
        }
        for (const [id, s] of devices) {
          await trx
            .updateTable("devices")
            .set({ last_seen_at: s.seenAt, ...(s.ip ? { ip_address: s.ip } : {}) })
            .where("id", "=", id)
            .where("last_seen_at", "<", s.seenAt)
            .execute();
          if (s.validatedAt !== null) {
            const at = s.validatedAt;
            await trx
              .updateTable("devices")
              .set({ last_validated_at: at })
              .where("id", "=", id)
              .where((eb) => eb.or([eb("last_validated_at", "is", null), eb("last_validated_at", "<", at)]))
              .execute();
          }
        }
        await addCallCounts(trx, counts);
        for (const e of events) await recordEvent(trx, e);
      });
      this.onFlush("ok");
    } catch (err) {
      // Put the stamps back (newest wins) so the next flush retries them.
      for (const [id, at] of apiKeys) this.apiKeyUsed(id, at);
      for (const [id, s] of devices) {
        this.deviceSeen(id, s.seenAt, false, s.ip);
        if (s.validatedAt !== null) this.deviceSeen(id, s.validatedAt, true, s.ip);
      }
      for (const e of events) this.event(e);
      // Counts are added back to whatever arrived meanwhile (the transaction wrote none of them).
      for (const c of counts.values()) this.#addBack(c);
      this.onFlush("error", err);
    }
  }

  #addBack(c: CallCount): void {
    const key = countKey(c);
    const prev = this.#counts.get(key);
    if (prev) prev.calls += c.calls;
    else this.#counts.set(key, { ...c });
  }
}

/**
 * Adds the counts to runtime_call_counts: multi-row upserts that add to an existing row, so flushes
 * of several processes on one database sum up. Rows go in key order, so two processes upserting the
 * same keys at once lock them in the same order (no deadlock on PostgreSQL).
 */
async function addCallCounts(trx: Tx, counts: Map<string, CallCount>): Promise<void> {
  const rows = [...counts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, c]) => ({ license_id: c.licenseId, hour_start: c.hourStart, operation: c.operation, calls: c.calls }));
  for (let i = 0; i < rows.length; i += COUNT_ROWS_PER_STATEMENT) {
    await trx
      .insertInto("runtime_call_counts")
      .values(rows.slice(i, i + COUNT_ROWS_PER_STATEMENT))
      .onConflict((oc) =>
        oc.columns(["license_id", "hour_start", "operation"]).doUpdateSet((eb) => ({ calls: eb("runtime_call_counts.calls", "+", eb.ref("excluded.calls")) })),
      )
      .execute();
  }
}
