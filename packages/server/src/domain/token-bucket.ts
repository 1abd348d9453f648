// Token-bucket arithmetic for the rate limits (D10), free of storage and clocks: callers pass `now`.
// A bucket holds up to `capacity` tokens and gains `refillTokens` every `refillPeriodMs`, continuously;
// a request takes one token or is refused. A bucket that is absent is full.

export interface BucketSpec {
  /** Most tokens the bucket holds (the burst); also the `RateLimit-Limit` answered. */
  capacity: number;
  /** Tokens gained per `refillPeriodMs`. */
  refillTokens: number;
  refillPeriodMs: number;
}

export interface BucketState {
  tokens: number;
  /** Epoch ms of the last change. */
  updatedAt: number;
}

/** What the `RateLimit-*` (and on refusal `Retry-After`) headers say, in whole units. */
export interface BucketQuote {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
  /** Seconds until one more request would be allowed (0 while allowed now). */
  retryAfterSeconds: number;
}

/** Float slack so a refill that lands a hair under a whole token still counts as one. */
const EPSILON = 1e-9;

/** Tokens the bucket holds at `now`: the stored count plus what has refilled since, capped. */
export function tokensAt(spec: BucketSpec, state: BucketState | undefined, now: number): number {
  if (!state) return spec.capacity;
  const elapsed = Math.max(0, now - state.updatedAt);
  // Multiply before dividing: 50 ms * 20 / 1000 is exactly 1.
  return Math.min(spec.capacity, state.tokens + (elapsed * spec.refillTokens) / spec.refillPeriodMs);
}

/** Whether `cost` tokens can be taken from a bucket holding `tokens`. */
export function canTake(tokens: number, cost = 1): boolean {
  return tokens + EPSILON >= cost;
}

/**
 * Takes `cost` tokens at `now` if the bucket holds them. A refusal leaves the state unchanged.
 * The clock never runs backwards for a bucket: a caller whose `now` is behind `updatedAt` (another
 * process's clock) gets no refill and does not move `updatedAt` back.
 */
export function take(spec: BucketSpec, state: BucketState | undefined, now: number, cost = 1): { state: BucketState; quote: BucketQuote } {
  const available = tokensAt(spec, state, now);
  if (!canTake(available, cost)) {
    return { state: state ?? { tokens: available, updatedAt: now }, quote: quote(spec, available, false, cost) };
  }
  const tokens = Math.max(0, available - cost);
  return { state: { tokens, updatedAt: Math.max(now, state?.updatedAt ?? now) }, quote: quote(spec, tokens, true, cost) };
}

/** Headers for a bucket now holding `tokens` (after the take when `allowed`). */
export function quote(spec: BucketSpec, tokens: number, allowed: boolean, cost = 1): BucketQuote {
  const msPerToken = spec.refillPeriodMs / spec.refillTokens;
  const seconds = (missingTokens: number) => Math.max(0, Math.ceil((missingTokens * msPerToken - EPSILON) / 1000));
  return {
    allowed,
    limit: spec.capacity,
    remaining: Math.max(0, Math.floor(tokens + EPSILON)),
    resetSeconds: seconds(spec.capacity - tokens),
    retryAfterSeconds: allowed ? 0 : Math.max(1, seconds(cost - tokens)),
  };
}

/** Milliseconds an emptied bucket needs to fill up again; a bucket untouched this long is full. */
export function msToFull(spec: BucketSpec): number {
  return Math.ceil((spec.capacity * spec.refillPeriodMs) / spec.refillTokens);
}
