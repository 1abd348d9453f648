// Batched side effects of the read-only hot path (D7): last-used stamps of API keys, last-seen and
// last-validated stamps of devices, per-license hourly counts of successful validate/check calls,
// and recorded runtime denials. They are collected in memory and written together every few seconds
// (and on shutdown), so a validation costs no write of its own. On a serving SQLite process the
// stamps and counts are written by a thread with its own connection (store/sqlite-batch-writer.ts),
// so the serving thread pays only for collecting them.
import { CompiledQuery } from "kysely";
import { type EventInput, recordEvent } from "../store/audit-events.js";
import type { Engine, Store, Tx } from "../store/db.js";
import type { BatchStatement } from "../store/sqlite-batch-writer.js";
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
   * written exactly once either way). On a serving SQLite process the stamps and counts go to the
   * batch thread, still one chunk at a time, so a failed chunk is never followed by one that ran.
   */
  async #write(): Promise<void> {
    const chunks = this.#takeChunks();
    for (let i = 0; i < chunks.length; i++) {
      try {
        await writeChunk(this.store, chunks[i]!);
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
        statements: (engine) => apiKeyStampStatements(engine, part),
        putBack: () => {
          for (const [id, at] of part) this.apiKeyUsed(id, at);
        },
      });
    }
    for (const part of slices(devices, FLUSH_CHUNK)) {
      chunks.push({
        statements: (engine) => [deviceStampsStatement(engine, part)],
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
        statements: (engine) => [callCountsStatement(engine, part)],
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

/**
 * A chunk writes itself in a transaction (`write`), or is a list of statements (`statements`),
 * which on a serving SQLite process the batch thread runs (store/sqlite-batch-writer.ts).
 */
type FlushChunk = ({ write(trx: Tx): Promise<void>; statements?: undefined } | { statements(engine: Engine): BatchStatement[]; write?: undefined }) & {
  putBack(): void;
};

/** Writes a chunk in one transaction: on the batch thread when it runs, else through `store.db`. */
async function writeChunk(store: Store, chunk: FlushChunk): Promise<void> {
  if (chunk.statements) {
    const writer = store.batchWriter;
    if (writer?.running) return writer.write(chunk.statements("sqlite"));
    const statements = chunk.statements(store.engine);
    await store.db.transaction().execute(async (trx) => {
      for (const s of statements) await trx.executeQuery(CompiledQuery.raw(s.sql, s.params));
    });
    return;
  }
  const write = chunk.write;
  await store.db.transaction().execute((trx) => write(trx));
}

function* slices<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** Placeholder i (0-based) of a statement: SQLite's `?`, PostgreSQL's `$n`. */
function placeholder(engine: Engine, i: number): string {
  return engine === "postgres" ? `$${i + 1}` : "?";
}

/** `rows` tuples of `width` placeholders each, written by `tuple`. */
function tuples(engine: Engine, rows: number, width: number, tuple: (p: string[]) => string): string {
  const out = new Array<string>(rows);
  for (let r = 0; r < rows; r++) {
    const p = new Array<string>(width);
    for (let c = 0; c < width; c++) p[c] = placeholder(engine, r * width + c);
    out[r] = tuple(p);
  }
  return out.join(", ");
}

/** Statement texts for a full chunk, made once per engine (a last, shorter chunk's text is made each time). */
const fullChunkTexts = new Map<string, string>();
function chunkText(name: string, engine: Engine, rows: number, full: number, make: () => string): string {
  if (rows !== full) return make();
  const key = `${name} ${engine}`;
  let text = fullChunkTexts.get(key);
  if (text === undefined) {
    text = make();
    fullChunkTexts.set(key, text);
  }
  return text;
}

/** One guarded UPDATE per API key: only a newer stamp moves last_used_at. */
function apiKeyStampStatements(engine: Engine, stamps: [string, number][]): BatchStatement[] {
  const [at, id, prev] = [0, 1, 2].map((i) => placeholder(engine, i));
  const text = `UPDATE api_keys SET last_used_at = ${at} WHERE id = ${id} AND (last_used_at IS NULL OR last_used_at < ${prev})`;
  return stamps.map(([keyId, stamp]) => ({ sql: text, params: [stamp, keyId, stamp] }));
}

/**
 * A chunk of device stamps as one UPDATE … FROM a VALUES list (SQLite ≥ 3.33 and PostgreSQL),
 * newest wins per column. One statement per chunk, not per device: the flush of a busy process
 * holds thousands of stamps.
 * Each device row is updated at most once per transaction (its id appears once in the chunk) and in
 * id order: on PostgreSQL a second UPDATE of a row this transaction already updated would re-run
 * the foreign-key check (FOR KEY SHARE on the license row), which waits for a runtime transaction
 * holding that license FOR UPDATE while it waits for this device row — a deadlock (seen in
 * `npm run soak`). Column references in SET read the old values on both engines.
 * The `id IN (SELECT id FROM v)` is for SQLite's planner: with only the join condition it scans
 * the whole devices table against an automatic index on v once the list is long (250 rows took
 * 200 ms at 1,000,000 devices); the IN list makes it look each device up by its primary key.
 */
export function deviceStampsStatement(engine: Engine, stamps: [string, DeviceStamp][]): BatchStatement {
  const sorted = [...stamps].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const params = new Array<unknown>(sorted.length * 4);
  sorted.forEach(([id, s], i) => {
    params[i * 4] = id;
    params[i * 4 + 1] = s.seenAt;
    params[i * 4 + 2] = s.validatedAt;
    params[i * 4 + 3] = s.ip;
  });
  const sql = chunkText("device stamps", engine, sorted.length, FLUSH_CHUNK, () => {
    const values = tuples(engine, sorted.length, 4, (p) => `(CAST(${p[0]} AS TEXT), CAST(${p[1]} AS BIGINT), CAST(${p[2]} AS BIGINT), CAST(${p[3]} AS TEXT))`);
    return `WITH v(id, seen, validated, ip) AS (VALUES ${values})
UPDATE devices SET
  last_seen_at = CASE WHEN devices.last_seen_at < v.seen THEN v.seen ELSE devices.last_seen_at END,
  ip_address = CASE WHEN v.ip IS NOT NULL AND devices.last_seen_at < v.seen THEN v.ip ELSE devices.ip_address END,
  last_validated_at = CASE WHEN v.validated IS NOT NULL AND (devices.last_validated_at IS NULL OR devices.last_validated_at < v.validated)
    THEN v.validated ELSE devices.last_validated_at END
FROM v
WHERE devices.id IN (SELECT id FROM v) AND devices.id = v.id
  AND (devices.last_seen_at < v.seen OR (v.validated IS NOT NULL AND (devices.last_validated_at IS NULL OR devices.last_validated_at < v.validated)))`;
  });
  return { sql, params };
}

/**
 * Counts (at most COUNT_ROWS_PER_STATEMENT) added to runtime_call_counts: a multi-row upsert that
 * adds to an existing row, so flushes of several processes on one database sum up.
 */
function callCountsStatement(engine: Engine, counts: CallCount[]): BatchStatement {
  const params = new Array<unknown>(counts.length * 4);
  counts.forEach((c, i) => {
    params[i * 4] = c.licenseId;
    params[i * 4 + 1] = c.hourStart;
    params[i * 4 + 2] = c.operation;
    params[i * 4 + 3] = c.calls;
  });
  const sql = chunkText("call counts", engine, counts.length, COUNT_ROWS_PER_STATEMENT, () => {
    const values = tuples(engine, counts.length, 4, (p) => `(${p.join(", ")})`);
    return `INSERT INTO runtime_call_counts (license_id, hour_start, operation, calls) VALUES ${values}
ON CONFLICT (license_id, hour_start, operation) DO UPDATE SET calls = runtime_call_counts.calls + excluded.calls`;
  });
  return { sql, params };
}
