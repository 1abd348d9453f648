// Where rate-limit token buckets (D10) live. In memory: a Map for one process (the SQLite case — one
// process owns the file). In the database: the `rate_limit_buckets` table, shared by every process on
// it, where refill-and-take is ONE atomic upsert, so concurrent processes never hand out more tokens
// than the bucket holds. Both forget buckets that have filled up again (an absent bucket is full).
import { sql } from "kysely";
import { type BucketSpec, type BucketState, canTake, quote, take, tokensAt, type BucketQuote } from "../domain/token-bucket.js";
import type { Store } from "./db.js";

export interface BucketStore {
  /** Refills the bucket, then takes one token if it holds one. */
  take(key: string, spec: BucketSpec, now: number): Promise<BucketQuote>;
  /** The bucket's state without taking: `allowed` says whether a token is available. */
  peek(key: string, spec: BucketSpec, now: number): Promise<BucketQuote>;
}

/** How often (clock time) buckets that have filled up again are dropped. */
export const SWEEP_INTERVAL_MS = 60_000;
/** A memory store this big is swept early (at most once a second) so a flood of keys stays bounded. */
const MEMORY_SWEEP_SIZE = 100_000;

interface MemoryEntry extends BucketState {
  /** When the bucket is full again, i.e. when the entry can be dropped. */
  fullAt: number;
}

export class MemoryBucketStore implements BucketStore {
  private readonly buckets = new Map<string, MemoryEntry>();
  private lastSweep = Number.NEGATIVE_INFINITY;

  async take(key: string, spec: BucketSpec, now: number): Promise<BucketQuote> {
    this.maybeSweep(now);
    const r = take(spec, this.buckets.get(key), now);
    if (r.quote.allowed) {
      const fullAt = r.state.updatedAt + ((spec.capacity - r.state.tokens) * spec.refillPeriodMs) / spec.refillTokens;
      this.buckets.set(key, { ...r.state, fullAt });
    }
    return r.quote;
  }

  async peek(key: string, spec: BucketSpec, now: number): Promise<BucketQuote> {
    const tokens = tokensAt(spec, this.buckets.get(key), now);
    return quote(spec, tokens, canTake(tokens));
  }

  /** Entries held now (for tests). */
  get size(): number {
    return this.buckets.size;
  }

  sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, entry] of this.buckets) if (entry.fullAt <= now) this.buckets.delete(key);
  }

  private maybeSweep(now: number): void {
    const due = now - this.lastSweep >= SWEEP_INTERVAL_MS || (this.buckets.size >= MEMORY_SWEEP_SIZE && now - this.lastSweep >= 1000);
    if (due) this.sweep(now);
  }
}

interface BucketRow {
  tokens: number;
  updated_at: number;
}

export class DatabaseBucketStore implements BucketStore {
  private lastSweep = Number.NEGATIVE_INFINITY;

  /** `retainMs`: how long an untouched bucket can take to fill up (the slowest configured limit). */
  constructor(
    private readonly store: Store,
    private readonly retainMs: number,
  ) {}

  async take(key: string, spec: BucketSpec, now: number): Promise<BucketQuote> {
    await this.maybeSweep(now);
    const row = await takeFromTable(this.store, key, spec, now);
    if (row) return quote(spec, Number(row.tokens), true);
    // Refused: the upsert left the row as it was; read it for Remaining/Retry-After.
    const tokens = tokensAt(spec, await readBucket(this.store, key), now);
    return quote(spec, tokens, false);
  }

  async peek(key: string, spec: BucketSpec, now: number): Promise<BucketQuote> {
    const tokens = tokensAt(spec, await readBucket(this.store, key), now);
    return quote(spec, tokens, canTake(tokens));
  }

  /** Deletes buckets untouched for longer than any bucket needs to fill up. */
  async sweep(now: number): Promise<number> {
    this.lastSweep = now;
    const res = await this.store.db.deleteFrom("rate_limit_buckets").where("updated_at", "<", now - this.retainMs).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  private async maybeSweep(now: number): Promise<void> {
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    // Housekeeping must never fail the request that happened to trigger it.
    await this.sweep(now).catch(() => {});
  }
}

async function readBucket(store: Store, key: string): Promise<BucketState | undefined> {
  const row = await store.db.selectFrom("rate_limit_buckets").select(["tokens", "updated_at"]).where("bucket", "=", key).executeTakeFirst();
  return row ? { tokens: Number(row.tokens), updatedAt: Number(row.updated_at) } : undefined;
}

/**
 * One statement, the same on PostgreSQL and SQLite: a new bucket starts full minus the token taken;
 * an existing one is refilled for the time since `updated_at` (never backwards), capped at capacity,
 * and loses one token — but only WHERE it holds one, so a refusal updates nothing and returns no row.
 * The row lock of the upsert serialises concurrent takers across processes.
 */
async function takeFromTable(store: Store, key: string, spec: BucketSpec, now: number): Promise<BucketRow | undefined> {
  const at = sql`cast(${now} as bigint)`;
  const float = (n: number) => sql`cast(${n} as double precision)`;
  const elapsed = sql`(case when ${at} > rate_limit_buckets.updated_at then ${at} - rate_limit_buckets.updated_at else 0 end)`;
  const raw = sql`(rate_limit_buckets.tokens + ${elapsed} * ${float(spec.refillTokens)} / ${float(spec.refillPeriodMs)})`;
  const refilled = sql`(case when ${raw} > ${float(spec.capacity)} then ${float(spec.capacity)} else ${raw} end)`;
  const res = await sql<BucketRow>`
    insert into rate_limit_buckets (bucket, tokens, updated_at)
    values (${key}, ${float(spec.capacity - 1)}, ${at})
    on conflict (bucket) do update set
      tokens = ${refilled} - 1,
      updated_at = case when rate_limit_buckets.updated_at > ${at} then rate_limit_buckets.updated_at else ${at} end
    where ${refilled} + ${float(1e-9)} >= 1
    returning tokens, updated_at`.execute(store.db);
  return res.rows[0];
}
